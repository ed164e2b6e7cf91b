import { type Span, SpanStatusCode } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE, ERROR_TYPE_OTHER } from './semconv.ts';

/** How deep {@link errorTypeOf} follows `cause` chains (kafkajs nests its protocol errors one or two deep). */
const MAX_CAUSE_DEPTH = 5;

/**
 * The `error.type` for a failure: a textual error code the client library attached (`type` as
 * kafkajs sets it, e.g. `UNKNOWN_TOPIC_OR_PARTITION`, or `code`) on the error or on any error in its
 * `cause` chain (kafkajs wraps protocol errors in `KafkaJSNumberOfRetriesExceeded` once its retries
 * run out); else the outer error's class name; else `_OTHER`. Never throws.
 */
export function errorTypeOf(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== null && typeof current === 'object'; depth++) {
    const e = current as { type?: unknown; code?: unknown; cause?: unknown };
    if (typeof e.type === 'string' && e.type.length > 0) return e.type;
    if (typeof e.code === 'string' && e.code.length > 0) return e.code;
    current = e.cause;
  }
  if (error !== null && typeof error === 'object') {
    const e = error as { name?: unknown; constructor?: { name?: unknown } };
    if (typeof e.name === 'string' && e.name.length > 0 && e.name !== 'Error') return e.name;
    const ctor = e.constructor?.name;
    if (typeof ctor === 'string' && ctor.length > 0 && ctor !== 'Object') return ctor;
  }
  return ERROR_TYPE_OTHER;
}

/**
 * Marks `span` as failed: status ERROR with the error's message, `error.type`, and an exception
 * event. Does not end the span. Never throws.
 *
 * @param errorType - overrides {@link errorTypeOf} (e.g. a broker's own error code name).
 */
export function recordFailure(span: Span, error: unknown, errorType: string = errorTypeOf(error)): void {
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : undefined;
  span.setAttribute(ATTR_ERROR_TYPE, errorType);
  span.setStatus(
    message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message },
  );
  if (error instanceof Error) span.recordException(error);
  else span.recordException({ name: errorType, message: message ?? String(error) });
}
