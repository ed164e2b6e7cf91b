// The traces as one self-contained HTML waterfall page, rendered on the server side: no script, no
// network access, everything (CSS included) inline, so the file opens anywhere, offline.
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  buildSpanTree,
  compareByStart,
  flattenSpanTree,
  formatDurationMs,
  HOPS,
  type Hop,
  hopOf,
  hrTimeToMs,
  linksMarker,
  type SpanTreeNode,
  spanDurationMs,
  spanErrorType,
  spanKindLabel,
  spanStatusLabel,
} from './render-tree.ts';

/** Options of {@link renderWaterfallHtml}. */
export interface WaterfallOptions {
  /** The page title and heading. Example: `'hoptrace demo: 20 orders'`. */
  readonly title: string;
  /**
   * The trace shown first and expanded (the others are listed collapsed, by start time). Default: the
   * earliest trace. Example: `{ highlightTraceId: orderTraceId }`.
   */
  readonly highlightTraceId?: string;
}

/** Bar colours per hop; also used by the legend. Error spans are drawn in {@link ERROR_COLOR}. */
export const HOP_COLORS: Readonly<Record<Hop, string>> = {
  app: '#64748b',
  kafka: '#6d5dfc',
  rabbitmq: '#f08c00',
  bullmq: '#0f9d8a',
};

/** The bar colour of an ERROR span. */
export const ERROR_COLOR = '#dc2626';

const HOP_LABELS: Readonly<Record<Hop, string>> = {
  app: 'application',
  kafka: 'Kafka',
  rabbitmq: 'RabbitMQ',
  bullmq: 'BullMQ',
};

/** Attributes shown in a row's tooltip, at most this many (the rest are counted). */
const MAX_TOOLTIP_ATTRIBUTES = 24;

/**
 * Escapes text for HTML element content and quoted attribute values (`&`, `<`, `>`, `"`, `'`).
 * Span names and attributes are user data and always pass through here.
 */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Wall-clock time of day (UTC, to the millisecond) of a moment given in ms since the epoch. */
function clockTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 23)} UTC`;
}

/** A percentage for inline CSS, rounded so that the page stays small and stable. */
function pct(value: number): string {
  return `${Math.round(value * 1000) / 1000}%`;
}

interface TraceView {
  readonly traceId: string;
  readonly nodes: readonly SpanTreeNode[];
  /** Every span given, so a link can name a target in another trace. */
  readonly spans: readonly ReadableSpan[];
  readonly startMs: number;
  readonly totalMs: number;
  readonly errors: number;
  readonly hops: readonly Hop[];
}

function viewOf(spans: readonly ReadableSpan[], traceId: string): TraceView {
  const nodes = flattenSpanTree(buildSpanTree(spans, traceId));
  const startMs = Math.min(...nodes.map((n) => hrTimeToMs(n.span.startTime)));
  const endMs = Math.max(...nodes.map((n) => hrTimeToMs(n.span.endTime)));
  const present = new Set(nodes.map((n) => hopOf(n.span)));
  return {
    traceId,
    nodes,
    spans,
    startMs,
    totalMs: Math.max(endMs - startMs, 0),
    errors: nodes.filter((n) => spanStatusLabel(n.span) === 'ERROR').length,
    hops: HOPS.filter((h) => present.has(h)),
  };
}

function tooltip(node: SpanTreeNode, offsetMs: number): string {
  const span = node.span;
  const ctx = span.spanContext();
  const lines = [
    span.name,
    `${spanKindLabel(span.kind)} · ${formatDurationMs(spanDurationMs(span))} · starts at +${formatDurationMs(offsetMs)}`,
    `span ${ctx.spanId}${span.parentSpanContext ? ` · parent ${span.parentSpanContext.spanId}` : ''}`,
  ];
  if (span.status.message) lines.push(`status: ${span.status.message}`);
  const entries = Object.entries(span.attributes).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [key, value] of entries.slice(0, MAX_TOOLTIP_ATTRIBUTES)) {
    lines.push(`${key} = ${Array.isArray(value) ? `[${value.join(', ')}]` : String(value)}`);
  }
  if (entries.length > MAX_TOOLTIP_ATTRIBUTES) {
    lines.push(`… ${entries.length - MAX_TOOLTIP_ATTRIBUTES} more attribute(s)`);
  }
  for (const link of span.links) {
    lines.push(`link → trace ${link.context.traceId} span ${link.context.spanId}`);
  }
  return lines.join('\n');
}

function renderRow(node: SpanTreeNode, view: TraceView): string {
  const span = node.span;
  const hop = hopOf(span);
  const status = spanStatusLabel(span);
  const durationMs = spanDurationMs(span);
  const offsetMs = hrTimeToMs(span.startTime) - view.startMs;
  const total = view.totalMs > 0 ? view.totalMs : 1;
  const left = Math.min(Math.max((offsetMs / total) * 100, 0), 100);
  const width = Math.min(Math.max((durationMs / total) * 100, 0.4), 100 - left);
  // The duration label sits right of the bar, or left of it when the bar ends near the right edge.
  const labelStyle =
    left + width > 78 ? `right:${pct(100 - left)};text-align:right` : `left:${pct(left + width)}`;
  const errorType = status === 'ERROR' ? spanErrorType(span) : undefined;
  const marker = linksMarker(span.links, view.spans);
  const badges = [
    status === 'ERROR' ? '<span class="badge error" data-testid="error-badge">ERROR</span>' : '',
    marker ? `<span class="links" data-testid="links-note">${escapeHtml(marker)}</span>` : '',
    node.orphan ? '<span class="links">parent not recorded</span>' : '',
  ].join('');
  return [
    `<div class="row status-${status.toLowerCase()}" data-testid="span-row"`,
    ` data-span-name="${escapeHtml(span.name)}" data-hop="${hop}" data-status="${status}"`,
    ` data-depth="${node.depth}" title="${escapeHtml(tooltip(node, offsetMs)).replace(/\n/g, '&#10;')}">`,
    `<div class="label" style="padding-left:${8 + node.depth * 16}px">`,
    `<span class="dot hop-${hop}"></span>`,
    `<span class="name">${escapeHtml(span.name)}</span>`,
    `<span class="kind">${spanKindLabel(span.kind).toLowerCase()}</span>`,
    badges,
    '</div>',
    '<div class="track">',
    `<div class="bar hop-${hop}" data-testid="span-bar" style="left:${pct(left)};width:${pct(width)}"></div>`,
    `<span class="duration" style="${labelStyle}">${formatDurationMs(durationMs)}`,
    // error.type sits by the bar, not in the label column, so that the span name keeps its room.
    errorType ? ` <span class="error-type">${escapeHtml(errorType)}</span>` : '',
    '</span>',
    '</div>',
    '</div>',
  ].join('');
}

function renderAxis(totalMs: number): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const align =
        f === 0 ? 'left:0' : f === 1 ? 'right:0' : `left:${pct(f * 100)};transform:translateX(-50%)`;
      return `<span style="${align}">${f === 0 ? '0 ms' : formatDurationMs(totalMs * f)}</span>`;
    })
    .join('');
  return `<div class="row axis"><div class="label">span</div><div class="track ticks">${ticks}</div></div>`;
}

function renderTrace(view: TraceView, open: boolean, highlighted: boolean): string {
  const root = view.nodes[0]?.span;
  const hopChips = view.hops
    .map((h) => `<span class="chip"><span class="dot hop-${h}"></span>${HOP_LABELS[h]}</span>`)
    .join('');
  const summary = [
    '<summary>',
    `<span class="trace-name">${escapeHtml(root?.name ?? '(no spans)')}</span>`,
    highlighted ? '<span class="badge highlight">this order</span>' : '',
    view.errors > 0 ? `<span class="badge error">${view.errors} ERROR</span>` : '',
    hopChips,
    `<span class="meta">${clockTime(view.startMs)} · ${view.nodes.length} spans · ${formatDurationMs(view.totalMs)}`,
    ` · <code>${escapeHtml(view.traceId)}</code></span>`,
    '</summary>',
  ].join('');
  return [
    `<details class="trace${highlighted ? ' highlighted' : ''}" data-testid="trace" data-trace-id="${escapeHtml(view.traceId)}"${open ? ' open' : ''}>`,
    summary,
    '<div class="waterfall">',
    renderAxis(view.totalMs),
    ...view.nodes.map((n) => renderRow(n, view)),
    '</div>',
    '</details>',
  ].join('\n');
}

const STYLE = `
:root{color-scheme:light;--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;
--label:minmax(340px,46%)}
*{box-sizing:border-box}
body{margin:0;padding:24px 32px 40px;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
h1{font-size:20px;margin:0 0 4px}
.sub{color:var(--muted);margin:0 0 14px}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:0 0 18px;padding:0;list-style:none;color:#334155}
.legend li{display:flex;align-items:center;gap:6px}
.swatch{width:22px;height:10px;border-radius:3px;display:inline-block}
.swatch.error{background:${ERROR_COLOR}}
.trace{background:var(--card);border:1px solid var(--line);border-radius:10px;margin:0 0 10px;
box-shadow:0 1px 2px rgba(15,23,42,.04)}
.trace.highlighted{border-color:#94a3b8;box-shadow:0 2px 8px rgba(15,23,42,.08)}
summary{cursor:pointer;padding:10px 14px;display:flex;flex-wrap:wrap;align-items:center;gap:8px;
list-style:none}
summary::-webkit-details-marker{display:none}
summary::before{content:"";width:0;height:0;border-style:solid;border-width:5px 0 5px 7px;
border-color:transparent transparent transparent var(--muted);transition:transform .12s}
details[open]>summary::before{transform:rotate(90deg)}
.trace-name{font-weight:600}
.meta{color:var(--muted);margin-left:auto;font-size:12px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.chip{display:inline-flex;align-items:center;gap:4px;font-size:12px;color:#334155;
background:#f1f5f9;border-radius:999px;padding:1px 8px}
.badge{font-size:11px;font-weight:700;letter-spacing:.03em;border-radius:4px;padding:1px 6px}
.badge.error{color:#fff;background:${ERROR_COLOR}}
.badge.highlight{color:#1e3a8a;background:#dbeafe}
.waterfall{border-top:1px solid var(--line);padding:4px 0 8px}
.row{display:grid;grid-template-columns:var(--label) 1fr;align-items:center;min-height:28px}
.row:not(.axis):hover{background:#f1f5f9}
.row.status-error{background:#fef2f2}
.row.axis{min-height:24px;color:var(--muted);font-size:11px;border-bottom:1px solid var(--line)}
.row.axis .label{padding-left:8px;text-transform:uppercase;letter-spacing:.05em}
.label{display:flex;align-items:center;gap:6px;min-width:0;padding-right:10px;white-space:nowrap}
.name{overflow:hidden;text-overflow:ellipsis;flex-shrink:.1}
.kind{color:var(--muted);font-size:11px;flex-shrink:4;min-width:0;overflow:hidden}
.error-type{color:#b91c1c;font-size:12px;font-weight:600}
.links{color:var(--muted);font-size:11px;font-style:italic;flex-shrink:20;min-width:0;overflow:hidden;text-overflow:ellipsis}
.dot{width:9px;height:9px;border-radius:50%;flex:none;display:inline-block}
.track{position:relative;height:28px;margin-right:14px;
background:repeating-linear-gradient(to right,transparent 0,transparent calc(25% - 1px),var(--line) calc(25% - 1px),var(--line) 25%)}
.ticks{height:24px}
.ticks span{position:absolute;top:4px;white-space:nowrap}
.bar{position:absolute;top:8px;height:12px;border-radius:3px;min-width:2px}
.duration{position:absolute;top:6px;padding:0 6px;font-size:11px;color:#334155;white-space:nowrap}
${HOPS.map((h) => `.hop-${h}{background:${HOP_COLORS[h]}}`).join('\n')}
.status-error .bar{background:${ERROR_COLOR};box-shadow:0 0 0 1px #7f1d1d inset}
.status-error .duration{color:#b91c1c;font-weight:600}
footer{color:var(--muted);font-size:12px;margin-top:18px}
`;

/**
 * One self-contained HTML page showing the given spans as a waterfall per trace: rows are spans in
 * tree order (indented), bars are placed by start and end relative to the trace's start and coloured by
 * hop, ERROR spans get a red bar, an `ERROR` badge and their `error.type`, spans with links a note.
 * The highlighted trace comes first and expanded; the others follow by start time, collapsed.
 *
 * The page has no script and references nothing outside itself (a Content-Security-Policy forbids
 * it), so it opens offline. Every span name, attribute and id is HTML-escaped. Rows carry
 * `data-testid="span-row"` with `data-span-name`, `data-hop`, `data-status` (`OK`/`ERROR`/`unset`) and
 * `data-depth`; traces carry `data-testid="trace"` and `data-trace-id`.
 *
 * @returns the whole document, starting with `<!doctype html>`.
 */
export function renderWaterfallHtml(spans: readonly ReadableSpan[], options: WaterfallOptions): string {
  const firstSpanOfTrace = new Map<string, ReadableSpan>();
  for (const span of [...spans].sort(compareByStart)) {
    const id = span.spanContext().traceId;
    if (!firstSpanOfTrace.has(id)) firstSpanOfTrace.set(id, span);
  }
  const traceIds = [...firstSpanOfTrace.keys()];
  const highlight =
    options.highlightTraceId !== undefined && firstSpanOfTrace.has(options.highlightTraceId)
      ? options.highlightTraceId
      : traceIds[0];
  const ordered = highlight === undefined ? [] : [highlight, ...traceIds.filter((id) => id !== highlight)];
  const views = ordered.map((id) => viewOf(spans, id));
  const errorTraces = views.filter((v) => v.errors > 0).length;

  const legend = [
    ...HOPS.map(
      (h) => `<li><span class="swatch" style="background:${HOP_COLORS[h]}"></span>${HOP_LABELS[h]}</li>`,
    ),
    '<li><span class="swatch error"></span>error</li>',
  ].join('');
  const sections = views.map((v, i) => renderTrace(v, i === 0, v.traceId === highlight));
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(options.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeHtml(options.title)}</h1>`,
    `<p class="sub">${views.length} trace(s) · ${spans.length} span(s) · ${errorTraces} with errors.`,
    ' Hover a row for its attributes; click a trace to expand it.</p>',
    `<ul class="legend" data-testid="legend">${legend}</ul>`,
    sections.length > 0 ? sections.join('\n') : '<p class="sub">No spans were recorded.</p>',
    '<footer>Rendered by hoptrace. Bars are placed relative to the start of their trace.</footer>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
