import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** The span's parent span id, or undefined for a root (works across SDK 1.x and 2.x shapes). */
export function parentSpanId(span: ReadableSpan): string | undefined {
  const s = span as ReadableSpan & { parentSpanId?: string; parentSpanContext?: { spanId: string } };
  return s.parentSpanContext?.spanId ?? s.parentSpanId;
}

/** Finished spans with exactly this name. */
export function spansNamed(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((s) => s.name === name);
}

/** The one finished span with this name; throws (listing what exists) when there is not exactly one. */
export function onlySpan(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spansNamed(spans, name);
  if (found.length !== 1) {
    throw new Error(
      `expected exactly one span named "${name}", found ${found.length}; spans: ${spans.map((s) => s.name).join(', ')}`,
    );
  }
  return found[0] as ReadableSpan;
}

/** Waits until `predicate` holds for the finished spans, or fails after `timeoutMs` listing them. */
export async function waitForSpans(
  getSpans: () => readonly ReadableSpan[],
  predicate: (spans: readonly ReadableSpan[]) => boolean,
  timeoutMs = 15_000,
): Promise<readonly ReadableSpan[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = getSpans();
    if (predicate(spans)) return spans;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for spans; have: ${spans.map((s) => s.name).join(', ') || '(none)'}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** What a span says, without its ids and times: for comparing two runs that should trace alike. */
export interface SpanShape {
  /** The span's name. */
  readonly name: string;
  /** Its kind. */
  readonly kind: ReadableSpan['kind'];
  /** Its status. */
  readonly status: ReadableSpan['status'];
  /** Its attributes. */
  readonly attributes: ReadableSpan['attributes'];
  /** How many links it has. */
  readonly links: number;
  /** Its parent span id, if any. */
  readonly parent: string | undefined;
}

/** The shapes of `spans`, in order (see {@link SpanShape}). */
export function spanShapes(spans: readonly ReadableSpan[]): SpanShape[] {
  return spans.map((s) => ({
    name: s.name,
    kind: s.kind,
    status: s.status,
    attributes: s.attributes,
    links: s.links.length,
    parent: parentSpanId(s),
  }));
}

/** Clears the finished spans of `tracing`, runs `run` and returns the shapes of the spans it made. */
export async function spanShapesOf(
  tracing: { reset(): void; spans(): readonly ReadableSpan[] },
  run: () => Promise<unknown>,
): Promise<SpanShape[]> {
  tracing.reset();
  await run();
  return spanShapes(tracing.spans());
}
