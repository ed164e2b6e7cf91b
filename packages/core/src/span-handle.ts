import type { Span, TimeInput } from '@opentelemetry/api';
import { recordFailure } from './errors.ts';

/**
 * A span with an end-exactly-once guard. Adapters hold one per message so that whichever path comes
 * first (settle, error, channel close, timeout, shutdown) ends it, and every later path is a no-op.
 */
export class SpanHandle {
  /** The wrapped span. */
  readonly span: Span;
  #ended = false;

  /** @param span - the span to guard; it must not have been ended yet. */
  constructor(span: Span) {
    this.span = span;
  }

  /** Whether the span has been ended through this handle. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Ends the span once; later calls return false and change nothing. */
  end(endTime?: TimeInput): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    this.span.end(endTime);
    return true;
  }

  /**
   * Records `error` (status ERROR, `error.type`, exception event) and ends the span, once. When the
   * span has already ended, nothing is recorded.
   */
  fail(error: unknown, errorType?: string, endTime?: TimeInput): boolean {
    if (this.#ended) return false;
    recordFailure(this.span, error, errorType);
    return this.end(endTime);
  }
}
