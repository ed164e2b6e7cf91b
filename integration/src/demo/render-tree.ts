// The trace of one order as a tree for the terminal, and the span-tree model the HTML waterfall
// shares with it (hop, parent/child order, duration, status).
import { type HrTime, type Link, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** Which part of the pipeline a span belongs to: a broker hop, or the application itself. */
export type Hop = 'kafka' | 'rabbitmq' | 'bullmq' | 'app';

/** Every hop, in pipeline order (the order legends list them in). */
export const HOPS: readonly Hop[] = ['app', 'kafka', 'rabbitmq', 'bullmq'];

/** A span's status as the demo shows it. */
export type SpanStatusLabel = 'OK' | 'ERROR' | 'unset';

/** One span placed in its trace's tree. */
export interface SpanTreeNode {
  /** The finished span. */
  readonly span: ReadableSpan;
  /** 0 for a root or an orphan, parent's depth + 1 otherwise. */
  readonly depth: number;
  /** True when the span names a parent that is not among the spans given (shown at top level). */
  readonly orphan: boolean;
  /** Children, ordered by start time. */
  readonly children: readonly SpanTreeNode[];
}

/** Options of {@link renderTraceTree}. */
export interface RenderTreeOptions {
  /**
   * Colour hops and statuses with ANSI escape codes. Default `false` (plain text, safe for logs and
   * tests). Example: `{ color: process.stdout.isTTY }`.
   */
  readonly color?: boolean;
}

const MESSAGING_SYSTEM_ATTRIBUTES = ['messaging.system.name', 'messaging.system'] as const;

/**
 * The hop a span belongs to, from its `messaging.system.name` attribute (falling back to the older
 * `messaging.system`): `kafka`, `rabbitmq` or `bullmq`; anything else, or no attribute, is `app`.
 */
export function hopOf(span: ReadableSpan): Hop {
  for (const key of MESSAGING_SYSTEM_ATTRIBUTES) {
    const value = span.attributes[key];
    if (value === 'kafka' || value === 'rabbitmq' || value === 'bullmq') return value;
  }
  return 'app';
}

/** Milliseconds in an OpenTelemetry `HrTime` (`[seconds, nanoseconds]`). */
export function hrTimeToMs(time: HrTime): number {
  return time[0] * 1e3 + time[1] / 1e6;
}

/** The span's duration in milliseconds. */
export function spanDurationMs(span: ReadableSpan): number {
  return hrTimeToMs(span.duration);
}

/** `OK`, `ERROR` or `unset`, from the span's status code. */
export function spanStatusLabel(span: ReadableSpan): SpanStatusLabel {
  if (span.status.code === SpanStatusCode.ERROR) return 'ERROR';
  if (span.status.code === SpanStatusCode.OK) return 'OK';
  return 'unset';
}

/**
 * What went wrong on an ERROR span: its `error.type` attribute, else the type of a recorded exception
 * event, else the status message; undefined when none is there.
 */
export function spanErrorType(span: ReadableSpan): string | undefined {
  const fromAttribute = span.attributes['error.type'];
  if (fromAttribute !== undefined && fromAttribute !== null) return String(fromAttribute);
  for (const event of span.events) {
    const type = event.attributes?.['exception.type'];
    if (event.name === 'exception' && type !== undefined && type !== null) return String(type);
  }
  return span.status.message || undefined;
}

/** The span kind's name in capitals (`SERVER`, `PRODUCER`, ...). */
export function spanKindLabel(kind: SpanKind): string {
  return SpanKind[kind] ?? 'INTERNAL';
}

/** The span's parent span id (SDK 2.x `parentSpanContext`), or undefined for a root. */
export function parentSpanIdOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** Compares spans by start time, then name, then span id, so the order never depends on input order. */
export function compareByStart(a: ReadableSpan, b: ReadableSpan): number {
  return (
    a.startTime[0] - b.startTime[0] ||
    a.startTime[1] - b.startTime[1] ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
    (a.spanContext().spanId < b.spanContext().spanId ? -1 : 1)
  );
}

/**
 * Places the spans of one trace in a tree: children under their parent, roots and orphans (a parent
 * not among the spans) at top level, every level ordered by start time. Spans of other traces are
 * ignored; the input is never mutated.
 *
 * @returns the top-level nodes.
 */
export function buildSpanTree(spans: readonly ReadableSpan[], traceId: string): SpanTreeNode[] {
  const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
  const ids = new Set(inTrace.map((s) => s.spanContext().spanId));
  const childrenOf = new Map<string, ReadableSpan[]>();
  const top: ReadableSpan[] = [];
  for (const span of inTrace) {
    const parent = parentSpanIdOf(span);
    if (parent !== undefined && ids.has(parent) && parent !== span.spanContext().spanId) {
      const siblings = childrenOf.get(parent) ?? [];
      siblings.push(span);
      childrenOf.set(parent, siblings);
    } else {
      top.push(span);
    }
  }
  // A parent cycle (only possible with hand-made data) would leave spans unreachable from the top;
  // `placed` both stops the recursion and lets those spans be shown as orphans afterwards.
  const placed = new Set<string>();
  const place = (span: ReadableSpan, depth: number): SpanTreeNode => {
    placed.add(span.spanContext().spanId);
    const kids = (childrenOf.get(span.spanContext().spanId) ?? [])
      .filter((c) => !placed.has(c.spanContext().spanId))
      .sort(compareByStart);
    return {
      span,
      depth,
      orphan: depth === 0 && parentSpanIdOf(span) !== undefined,
      children: kids.map((c) => place(c, depth + 1)),
    };
  };
  const roots = top.sort(compareByStart).map((s) => place(s, 0));
  const unreachable = inTrace.filter((s) => !placed.has(s.spanContext().spanId)).sort(compareByStart);
  for (const span of unreachable) {
    if (!placed.has(span.spanContext().spanId)) roots.push(place(span, 0));
  }
  return roots;
}

/** The tree's nodes depth-first, each parent before its children (the order both renderers show). */
export function flattenSpanTree(roots: readonly SpanTreeNode[]): SpanTreeNode[] {
  const out: SpanTreeNode[] = [];
  const visit = (node: SpanTreeNode): void => {
    out.push(node);
    for (const child of node.children) visit(child);
  };
  for (const root of roots) visit(root);
  return out;
}

/** A duration for people: `0.42 ms`, `12.5 ms`, `1234 ms`. */
export function formatDurationMs(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/**
 * The marker shown for a span with links; undefined without links. One link names its target (the
 * span's name when it is among `spans`, else its id); a link that carries hoptrace's failure lineage
 * (`hoptrace.failure.error.type`) says what the span is: `↪ dead letter of process orders
 * (POISON_ORDER)`, or `↪ retry of …` when the failure was classified retryable. Several links:
 * `↪ linked to 3 span(s)`.
 */
export function linksMarker(links: readonly Link[], spans: readonly ReadableSpan[] = []): string | undefined {
  const [link] = links;
  if (!link) return undefined;
  if (links.length > 1) return `↪ linked to ${links.length} span(s)`;
  const { traceId, spanId } = link.context;
  const target = spans.find((s) => s.spanContext().spanId === spanId && s.spanContext().traceId === traceId);
  const what = target ? printable(target.name) : `span ${spanId}`;
  const errorType = link.attributes?.['hoptrace.failure.error.type'];
  if (typeof errorType !== 'string') return `↪ linked to ${what}`;
  const kind = link.attributes?.['hoptrace.failure.retryable'] === true ? 'retry' : 'dead letter';
  return `↪ ${kind} of ${what} (${printable(errorType)})`;
}

const ANSI = {
  reset: '\u001b[0m',
  dim: '\u001b[2m',
  bold: '\u001b[1m',
  red: '\u001b[31m',
  green: '\u001b[32m',
  hop: { app: '\u001b[90m', kafka: '\u001b[35m', rabbitmq: '\u001b[33m', bullmq: '\u001b[36m' },
} as const;

/** Drops control characters so that a span name from user data cannot move the cursor or recolour. */
function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '�');
}

/**
 * The trace `traceId` as a tree for the terminal: a header line, then one line per span with its hop,
 * the tree drawn with `├─`/`└─`, span name, kind, duration, status (with `error.type` when ERROR) and,
 * for spans with links, what they link to (see {@link linksMarker}). Orphans (parent not among the spans) are shown at
 * top level and marked. Lines are ordered by start time, so the same spans always render the same.
 * Control characters in span names are replaced; ANSI colours only with `options.color`.
 *
 * @returns the lines joined with `\n` (no trailing newline); a one-line note when the trace has no spans.
 */
export function renderTraceTree(
  spans: readonly ReadableSpan[],
  traceId: string,
  options: RenderTreeOptions = {},
): string {
  const paint = (code: string, text: string): string =>
    options.color ? `${code}${text}${ANSI.reset}` : text;
  const roots = buildSpanTree(spans, traceId);
  const nodes = flattenSpanTree(roots);
  if (nodes.length === 0) return `trace ${traceId}: no spans recorded`;

  // Tree prefixes: the guide for each ancestor level, then this node's connector.
  const prefixes = new Map<SpanTreeNode, string>();
  const walk = (node: SpanTreeNode, guides: string, isLast: boolean, isTop: boolean): void => {
    prefixes.set(node, isTop ? '' : `${guides}${isLast ? '└─ ' : '├─ '}`);
    const childGuides = isTop ? '' : `${guides}${isLast ? '   ' : '│  '}`;
    node.children.forEach((child, i) => {
      walk(child, childGuides, i === node.children.length - 1, false);
    });
  };
  for (const root of roots) walk(root, '', true, true);

  const starts = nodes.map((n) => hrTimeToMs(n.span.startTime));
  const ends = nodes.map((n) => hrTimeToMs(n.span.endTime));
  const traceMs = Math.max(...ends) - Math.min(...starts);
  const errors = nodes.filter((n) => spanStatusLabel(n.span) === 'ERROR').length;
  const header =
    `trace ${traceId} · ${nodes.length} span(s) · ${formatDurationMs(traceMs)}` +
    (errors > 0 ? ` · ${errors} error(s)` : '');

  const hopWidth = Math.max(...HOPS.map((h) => h.length));
  const labels = nodes.map((n) => `${prefixes.get(n) ?? ''}${printable(n.span.name)}`);
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const kindWidth = Math.max(...nodes.map((n) => spanKindLabel(n.span.kind).length));
  const durations = nodes.map((n) => formatDurationMs(spanDurationMs(n.span)));
  const durationWidth = Math.max(...durations.map((d) => d.length));

  const lines = nodes.map((node, i) => {
    const span = node.span;
    const hop = hopOf(span);
    const status = spanStatusLabel(span);
    let statusText: string;
    if (status === 'ERROR') {
      const type = spanErrorType(span);
      statusText = paint(ANSI.red + ANSI.bold, type ? `ERROR ${printable(type)}` : 'ERROR');
    } else if (status === 'OK') {
      statusText = paint(ANSI.green, 'OK');
    } else {
      statusText = paint(ANSI.dim, 'unset');
    }
    const parts = [
      paint(ANSI.hop[hop], hop.padEnd(hopWidth)),
      (labels[i] ?? '').padEnd(labelWidth),
      paint(ANSI.dim, spanKindLabel(span.kind).padEnd(kindWidth)),
      (durations[i] ?? '').padStart(durationWidth),
      statusText,
    ];
    const marker = linksMarker(span.links, spans);
    if (marker) parts.push(paint(ANSI.dim, marker));
    if (node.orphan) parts.push(paint(ANSI.dim, `(parent ${parentSpanIdOf(span)} not recorded)`));
    return parts.join('  ').trimEnd();
  });
  return [header, ...lines].join('\n');
}
