import { type Context, context as contextApi, isSpanContextValid, trace } from '@opentelemetry/api';

/** Trace correlation fields for a log record, named as the OpenTelemetry log data model names them. */
export interface LogFields {
  trace_id?: string;
  span_id?: string;
  /** Two lowercase hex digits, e.g. `01` when sampled. */
  trace_flags?: string;
}

const FLAGS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * The ids of the span in `context` (default: the active one), for log lines: `{ trace_id, span_id,
 * trace_flags }`, or an empty object when there is no valid span. Use it as pino's `mixin` or in a
 * winston format (see the README).
 */
export function logFields(context: Context = contextApi.active()): LogFields {
  const spanContext = trace.getSpanContext(context);
  if (!spanContext || !isSpanContextValid(spanContext)) return {};
  return {
    trace_id: spanContext.traceId,
    span_id: spanContext.spanId,
    trace_flags: FLAGS[spanContext.traceFlags & 0xff] as string,
  };
}
