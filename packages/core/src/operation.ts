import {
  type Attributes,
  type Span,
  type SpanContext,
  SpanStatusCode,
  type TimeInput,
} from '@opentelemetry/api';
import { classifyError, type ResolvedFailure, recordFailure } from './errors.ts';
import type { Instrumentation } from './instrumentation.ts';
import type { OperationMetric } from './metric-attributes.ts';
import { ATTR_HOPTRACE_CONTROL_FLOW_REASON, EVENT_HOPTRACE_CONTROL_FLOW } from './names.ts';
import { ERROR_SHUTDOWN, type OpenEntry, type OpenOperation, trackOpen, untrackOpen } from './open-spans.ts';
import { isThenable } from './wrap.ts';

/**
 * One messaging operation (a send, a processing, a receive, a settle) from start to its single end:
 * the spans it owns, its outcome, and its duration metric. Every path that finishes an operation
 * goes through here, so spans end exactly once, `error.type` and the metric agree, and whatever the
 * host threw is rethrown unchanged.
 *
 * Spans may be absent (unsampled fast path); the metric is recorded only when the wrapper has
 * metrics (a MeterProvider is registered), and the clock is read only then.
 */
export class Operation implements OpenOperation {
  readonly #instr: Instrumentation;
  readonly #spans: Span | readonly (Span | undefined)[] | undefined;
  readonly #metric: OperationMetric | undefined;
  readonly #startMs: number;
  readonly #metricAtOutcome: boolean;
  #ended = false;
  #metricRecorded = false;
  #failure: ResolvedFailure | undefined;
  #controlFlow: string | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  /** Its entry in the process-wide registry (a recording span; see `endOpenSpans`), if tracked. */
  #openEntry: OpenEntry | undefined;

  /**
   * @param spans - the spans this operation ends (one, several, or none).
   * @param metric - what to record when it ends; ignored when the wrapper has no metrics.
   * @param metricAtOutcome - record the metric when {@link run} sees the outcome even if the spans
   * stay open for a later event (a send inside a Kafka transaction ends on commit, but its duration
   * is the send's). Default: when the operation ends.
   */
  constructor(
    instr: Instrumentation,
    spans: Span | readonly (Span | undefined)[] | undefined,
    metric?: OperationMetric,
    metricAtOutcome = false,
  ) {
    this.#instr = instr;
    this.#spans = spans;
    this.#metric = instr.metrics ? metric : undefined;
    this.#metricAtOutcome = metricAtOutcome;
    this.#startMs = this.#metric ? performance.now() : 0;
    this.#openEntry = this.#records() ? trackOpen(this) : undefined;
  }

  /** Whether the operation has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The failure noted so far (its `error.type` is what the span and metric carry). */
  get failure(): ResolvedFailure | undefined {
    return this.#failure;
  }

  /** The broker's control-flow signal noted instead of a failure (see {@link noteFailure}), if any. */
  get controlFlow(): string | undefined {
    return this.#controlFlow;
  }

  /** The span context of the operation's first recording span (for links to it), if any. */
  spanContext(): SpanContext | undefined {
    let found: SpanContext | undefined;
    this.#forEachSpan((span) => {
      if (found === undefined && span.isRecording()) found = span.spanContext();
    });
    return found;
  }

  /** Sets the message count recorded by the metric (e.g. once a batch size is known). */
  setCount(count: number): void {
    if (this.#metric) this.#metric.count = count;
  }

  /**
   * Notes a thrown value on the spans without ending them (e.g. an AMQP delivery whose span ends on
   * ack). A control-flow signal of the broker (see the adapter's recognizer) adds an event instead
   * and leaves the status unset. The first failure noted wins. Never throws.
   *
   * @param fallbackType - the `error.type` when the user's classifier names none (default: the
   * error's own code or class name).
   */
  noteFailure(error: unknown, fallbackType?: string): void {
    if (this.#ended || this.#failure !== undefined || this.#controlFlow !== undefined) return;
    const signal = this.controlFlowOf(error);
    if (signal !== undefined) {
      this.#controlFlow = signal;
      this.#forEachSpan((span) => {
        if (span.isRecording())
          span.addEvent(EVENT_HOPTRACE_CONTROL_FLOW, { [ATTR_HOPTRACE_CONTROL_FLOW_REASON]: signal });
      });
      return;
    }
    const failure = classifyError(error, this.#instr.classifyError, fallbackType);
    this.#failure = failure;
    this.#forEachSpan((span) => {
      if (span.isRecording()) recordFailure(span, error, failure);
    });
  }

  /**
   * Marks the operation failed for a reason hoptrace knows (e.g. `channel_closed`, `rejected`)
   * without a thrown value, unless a failure was noted already. Does not end it.
   */
  noteFailureType(type: string, message: string): void {
    if (this.#ended || this.#failure !== undefined) return;
    const failure: ResolvedFailure = { type, retryable: undefined, attributes: undefined };
    this.#failure = failure;
    this.#forEachSpan((span) => {
      if (!span.isRecording()) return;
      span.setAttribute('error.type', type);
      span.setStatus({ code: SpanStatusCode.ERROR, message });
    });
  }

  /** Sets an attribute on every recording span of the operation (while it is open). */
  setAttribute(key: string, value: string | number | boolean): void {
    if (this.#ended) return;
    const spans = this.#spans;
    if (spans === undefined) return;
    // One span (the common case) without a closure per call.
    if (!Array.isArray(spans)) {
      if ((spans as Span).isRecording()) (spans as Span).setAttribute(key, value);
      return;
    }
    for (const span of spans as readonly (Span | undefined)[])
      if (span?.isRecording()) span.setAttribute(key, value);
  }

  /** Adds an event to every recording span of the operation (while it is open). */
  addEvent(name: string, attributes?: Attributes): void {
    if (this.#ended) return;
    this.#forEachSpan((span) => {
      if (span.isRecording()) span.addEvent(name, attributes);
    });
  }

  /**
   * Ends the operation through {@link expire} if it is still open after `ms` milliseconds (a handler
   * that never settles). The timer never keeps the process alive and is cleared when it ends.
   */
  expireAfter(ms: number, errorType: string, message: string): void {
    if (this.#ended || this.#deadline !== undefined) return;
    const timer = setTimeout(() => this.expire(errorType, message), ms);
    timer.unref?.();
    this.#deadline = timer;
  }

  /** What {@link expireAfter} does when time is up: status ERROR with `errorType`, then the end. */
  protected expire(errorType: string, message: string): void {
    this.noteFailureType(errorType, message);
    this.end();
  }

  /** Ends the spans and records the metric (with the noted `error.type`, if any), once. */
  end(endTime?: TimeInput): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    if (this.#openEntry !== undefined) untrackOpen(this.#openEntry);
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    const spans = this.#spans;
    // One span (the common case) without a closure per call.
    if (spans !== undefined && !Array.isArray(spans)) (spans as Span).end(endTime);
    else if (spans !== undefined)
      for (const span of spans as readonly (Span | undefined)[]) span?.end(endTime);
    this.#recordMetric();
    return true;
  }

  #recordMetric(): void {
    const metric = this.#metric;
    if (!metric || this.#metricRecorded) return;
    this.#metricRecorded = true;
    const attributes = this.#failure
      ? metric.cache.withError(metric.attributes, this.#failure.type)
      : metric.attributes;
    this.#instr.metrics?.record(metric.operation, this.#startMs, metric.count, attributes);
  }

  /** {@link noteFailure} then {@link end}. */
  fail(error: unknown, fallbackType?: string): void {
    this.noteFailure(error, fallbackType);
    this.end();
  }

  /**
   * Runs `fn` (with whatever context the caller made active) and settles on its outcome: a sync
   * throw or a rejection is noted and rethrown unchanged; success runs `onValue` (guarded) then ends.
   * A thenable result is chained, so the caller gets a promise of the same value. With
   * `endOnOutcome: false` the outcome is noted but the spans stay open for a later event.
   */
  run<T>(fn: () => T, onValue?: (value: Awaited<T>) => void, endOnOutcome = true): T {
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.noteFailure(error);
      this.outcome(endOnOutcome);
      throw error;
    }
    if (isThenable(result)) {
      // A native promise is chained as it is; any other thenable through a promise, so the caller
      // always gets a chain that settles with the same value or reason.
      const pending = result instanceof Promise ? result : Promise.resolve(result);
      return (pending as PromiseLike<Awaited<T>>).then(
        (value) => {
          if (onValue) this.#observe(onValue, value);
          this.outcome(endOnOutcome);
          return value;
        },
        (error: unknown) => {
          this.noteFailure(error);
          this.outcome(endOnOutcome);
          throw error;
        },
      ) as T;
    }
    if (onValue) this.#observe(onValue, result as Awaited<T>);
    this.outcome(endOnOutcome);
    return result;
  }

  /**
   * The traced call has its outcome but the spans stay open for a later event (a send inside a Kafka
   * transaction ends on commit or abort): notes `error` when `failed`, and with `metricAtOutcome`
   * records the metric now. End the operation later with {@link end}.
   */
  settleOpen(failed: boolean, error?: unknown): void {
    if (failed) this.noteFailure(error);
    this.outcome(false);
  }

  /**
   * {@link run} (or {@link settleOpen}) has the traced call's outcome: ends the operation, or with
   * `end` false records the metric when it is taken at the outcome. A subclass may hold the end for
   * what decides the outcome after the call returned (e.g. the broker recording it); it must then end
   * the operation itself, on every path.
   */
  protected outcome(end: boolean): void {
    if (end) this.end();
    else if (this.#metricAtOutcome) this.#recordMetric();
  }

  /**
   * A node-style callback for a client call: it settles the operation on its first argument (an
   * error when not null or undefined), then calls `callback` (when given) with the same `this` and
   * arguments, returning what it returns.
   *
   * @param fallbackTypeOf - names the `error.type` of an error the client reports (e.g. a nack).
   */
  callback(
    callback: unknown,
    fallbackTypeOf?: (error: unknown) => string | undefined,
  ): (...args: unknown[]) => unknown {
    const operation = this;
    return function settled(this: unknown, ...args: unknown[]): unknown {
      const error = args[0];
      if (error !== undefined && error !== null) operation.fail(error, fallbackTypeOf?.(error));
      else operation.end();
      return typeof callback === 'function'
        ? (callback as (...a: unknown[]) => unknown).apply(this, args)
        : undefined;
    };
  }

  #observe<V>(onValue: (value: V) => void, value: V): void {
    try {
      onValue(value);
    } catch {
      // Observation only (positions, ids from the reply): never the caller's problem.
    }
  }

  /**
   * The broker's control-flow signal `error` is (the adapter's recognizer), or `undefined` for a
   * failure. An adapter's subclass may narrow it with what only it knows. Never throws.
   */
  protected controlFlowOf(error: unknown): string | undefined {
    const recognize = this.#instr.controlFlow;
    if (!recognize) return undefined;
    try {
      return recognize(error);
    } catch {
      return undefined;
    }
  }

  /** The process is shutting down with the operation still open (`endOpenSpans`). */
  endAtShutdown(): void {
    this.noteFailureType(ERROR_SHUTDOWN, 'the process shut down before the operation ended');
    this.end();
  }

  /** Whether any of its spans records (only those are worth ending at shutdown). */
  #records(): boolean {
    const spans = this.#spans;
    if (spans === undefined) return false;
    if (!Array.isArray(spans)) return (spans as Span).isRecording();
    for (const span of spans as readonly (Span | undefined)[]) if (span?.isRecording()) return true;
    return false;
  }

  #forEachSpan(fn: (span: Span) => void): void {
    const spans = this.#spans;
    if (spans === undefined) return;
    if (!Array.isArray(spans)) {
      fn(spans as Span);
      return;
    }
    for (const span of spans as readonly (Span | undefined)[]) if (span) fn(span);
  }
}
