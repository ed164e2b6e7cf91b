/**
 * Trace flags as they may travel on. W3C Trace Context defines `sampled` (0x01) and, in level 2,
 * `random` (0x02); every other bit is unknown, and a vendor must set unknown flags to zero when it
 * propagates. OpenTelemetry's W3C propagator writes flags of 0x10 and above as three hex digits (a
 * `traceparent` no extractor accepts), so a context hoptrace hands on without a span of its own (the
 * unsampled fast path, a restored snapshot) must not carry them: the trace would break at the next
 * hop.
 *
 * @packageDocumentation
 */
import type { SpanContext } from '@opentelemetry/api';

/** The trace flags W3C Trace Context defines: `sampled` (0x01) and `random` (0x02). */
export const KNOWN_TRACE_FLAGS = 0x03;

/** `flags` with every bit W3C does not define cleared. */
export function knownTraceFlags(flags: number): number {
  return flags & KNOWN_TRACE_FLAGS;
}

/** `spanContext` itself when it carries only known flags, else a copy with the unknown ones cleared. */
export function withKnownTraceFlags(spanContext: SpanContext): SpanContext {
  const { traceFlags } = spanContext;
  return (traceFlags & ~KNOWN_TRACE_FLAGS) === 0
    ? spanContext
    : { ...spanContext, traceFlags: traceFlags & KNOWN_TRACE_FLAGS };
}
