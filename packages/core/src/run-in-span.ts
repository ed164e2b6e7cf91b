import { type Context, context as contextApi, type Span, trace } from '@opentelemetry/api';
import { recordFailure } from './errors.ts';
import { SpanHandle } from './span-handle.ts';

/** What {@link runInSpan} does with the span when the handler is done. */
export interface RunInSpanOptions {
  /**
   * The context to run in, with the span set on it. Default: the active context.
   */
  context?: Context;
  /**
   * End the span when the handler returns or its promise settles. Default `true`. Set `false` when
   * the span's end belongs to a later event (e.g. an AMQP ack); a failure is still recorded.
   */
  end?: boolean;
}

/**
 * Runs `fn` with `span` active (so logs and downstream calls join the trace), sync or async. A thrown
 * error or a rejection is recorded on the span (status ERROR, `error.type`, exception event) and
 * rethrown unchanged; the span ends exactly once (unless `end: false`). The return value, sync or
 * promise, is passed through.
 */
export function runInSpan<T>(span: Span | SpanHandle, fn: () => T, options: RunInSpanOptions = {}): T {
  const handle = span instanceof SpanHandle ? span : new SpanHandle(span);
  const shouldEnd = options.end !== false;
  const ctx = trace.setSpan(options.context ?? contextApi.active(), handle.span);
  let result: T;
  try {
    result = contextApi.with(ctx, fn);
  } catch (error) {
    fail(handle, error, shouldEnd);
    throw error;
  }
  if (isPromiseLike(result)) {
    return result.then(
      (value) => {
        if (shouldEnd) handle.end();
        return value;
      },
      (error: unknown) => {
        fail(handle, error, shouldEnd);
        throw error;
      },
    ) as T;
  }
  if (shouldEnd) handle.end();
  return result;
}

function fail(handle: SpanHandle, error: unknown, shouldEnd: boolean): void {
  if (shouldEnd) handle.fail(error);
  else if (!handle.ended) recordFailure(handle.span, error);
}

function isPromiseLike<T>(value: T): value is T & PromiseLike<Awaited<T>> {
  return (
    value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function'
  );
}
