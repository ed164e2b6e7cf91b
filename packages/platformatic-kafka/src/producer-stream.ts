import {
  callerSpanContext,
  interceptMethods,
  Operation,
  operationMetric,
  ownListeners,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import { context as contextApi, trace } from '@opentelemetry/api';
import { ERROR_STREAM_CLOSED } from './attributes.ts';
import { headerView } from './headers.ts';
import { carrying, type OutgoingMessage, type ProducerState, sendAttributes } from './send.ts';

/**
 * The most send operations one producer stream keeps open (messages written but not yet sent). A
 * message written past it gets no span of its own and carries the writer's active context instead.
 */
export const MAX_OPEN_STREAM_SENDS = 4096;

/**
 * How long the send spans a stream still holds when it is destroyed without an error wait for the
 * batch it may have in flight: a late acknowledgement ends that batch's spans OK; when it comes (or
 * this passes, or the producer closes), the rest end as `stream_closed`, timed at the destroy.
 */
export const STREAM_CLOSE_GRACE_MS = 30_000;

/** What hoptrace uses of a @platformatic/kafka `ProducerStream` (an object-mode Node Writable). */
interface RawProducerStream {
  write(...args: unknown[]): unknown;
  end(...args: unknown[]): unknown;
  destroy(...args: unknown[]): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  removeAllListeners(...args: unknown[]): unknown;
  listeners(event: unknown): unknown;
  eventNames(): unknown;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly errored: unknown;
  emit(event: unknown, ...args: unknown[]): boolean;
}

function isProducerStream(value: unknown): value is RawProducerStream {
  const stream = value as Partial<RawProducerStream> | null;
  return (
    typeof stream === 'object' &&
    stream !== null &&
    typeof stream.write === 'function' &&
    typeof stream.end === 'function' &&
    typeof stream.on === 'function' &&
    typeof stream.once === 'function' &&
    typeof stream.emit === 'function'
  );
}

/**
 * Traces a stream from `producer.asStream()`: every message written (`write`, `end(message)`, a
 * `pipe` or `pipeline` into it) gets a `send {topic}` span in the writer's active context, and the
 * stream gets a copy of the message whose headers carry that span's context (a message with its own
 * context keeps it; the span links to it). The span stays open until the batch that carries the
 * message is acknowledged (the stream's `flush`), and ends ERROR when the stream fails that batch
 * (with its error) or is destroyed before that batch was acknowledged (`stream_closed`). Everything else
 * (batching, back-pressure, close) is the stream's own; a `delivery-report` names your message object,
 * and listeners added to the traced stream get it as `this`, as they would without hoptrace.
 */
export function traceProducerStream(state: ProducerState, stream: unknown): unknown {
  if (!isProducerStream(stream)) return stream;
  const sends = new StreamSends(state.closingStreams);
  const originals = new WeakMap<object, object>();
  reportOriginals(stream, originals);
  // The stream sends its buffered messages in the order they were written, a batch at a time. Both
  // listeners stay through the application's `removeAllListeners()`.
  const mine = ownListeners(stream, {
    on: { flush: (report: unknown) => sends.sent((report as { count?: unknown } | null)?.count) },
    once: { close: () => sends.closed(stream.errored) },
  });
  const proxy: RawProducerStream = interceptMethods(
    stream,
    {
      write: (raw, args) => tracedWrite(state, sends, originals, raw, 'write', args),
      end: (raw, args): unknown => {
        // `end(message, ...)` writes the message first; `end()`, `end(callback)` and `end(null)` do not.
        const out =
          args[0] === undefined || args[0] === null || typeof args[0] === 'function'
            ? raw.end(...args)
            : tracedWrite(state, sends, originals, raw, 'end', args);
        return out === raw ? proxy : out;
      },
      // A destroy from outside (the application, or a `pipeline` whose source failed) may leave a
      // batch in flight that is still acknowledged; the stream's own destroy (a failed batch) does not.
      destroy: (raw, args): unknown => {
        if (!raw.destroyed) sends.destroyedFromOutside();
        const out = raw.destroy(...args);
        return out === raw ? proxy : out;
      },
    },
    // Listeners added through the traced stream get it as `this`; what it lists (`listeners()`,
    // `rawListeners()`, `listenerCount()`) leaves hoptrace's own listeners out, as without hoptrace.
    { listeners: { own: mine } },
  );
  return proxy;
}

/** A `write` or `end` carrying a message: the span, the copy, then the stream's own method. */
function tracedWrite(
  state: ProducerState,
  sends: StreamSends,
  originals: WeakMap<object, object>,
  raw: RawProducerStream,
  method: 'write' | 'end',
  args: unknown[],
): unknown {
  // A stream that takes nothing more reports the write itself (it buffers nothing); a null is refused
  // (any other value, `undefined` included, is buffered in object mode: it keeps its place below).
  if (raw.destroyed || raw.writableEnded || args[0] === null) return raw[method](...args);
  const message = args[0];
  const operation = startStreamSend(state, args, !sends.full);
  if (args[0] !== message) originals.set(args[0] as object, message as object);
  sends.push(operation);
  try {
    return raw[method](...args);
  } catch (error) {
    // Refused synchronously: nothing was buffered.
    sends.pop();
    operation?.fail(error);
    throw error;
  }
}

/**
 * The stream's `delivery-report` events (`reportMode: 'message'`) name the message the application
 * wrote, not the copy carrying the context: the stream instance (made by `asStream` for this call)
 * gets its own `emit`, which swaps the copy for the original in a fresh report and changes nothing
 * else.
 */
function reportOriginals(stream: RawProducerStream, originals: WeakMap<object, object>): void {
  const emit = stream.emit;
  const emitOriginal = function emitOriginal(this: unknown, event: unknown, ...args: unknown[]): boolean {
    if (event === 'delivery-report') {
      const report = args[0] as { message?: unknown } | null | undefined;
      const copy = typeof report === 'object' && report !== null ? report.message : undefined;
      const original = typeof copy === 'object' && copy !== null ? originals.get(copy) : undefined;
      if (original !== undefined) args[0] = { ...report, message: original };
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  };
  try {
    Object.defineProperty(stream, 'emit', { configurable: true, writable: true, value: emitOriginal });
  } catch {
    // A stream that refuses an own property (frozen) keeps its reports as they are.
  }
}

/**
 * Starts the span of one written message and puts the copy that carries its context into `args[0]`
 * (or the writer's context, with no span to record or past the cap). A message whose getters throw
 * is left as it is, for the stream's send to report, and gets no span.
 *
 * @param withSpan - false once the stream holds {@link MAX_OPEN_STREAM_SENDS} open operations: the
 * message then gets no span, only its metrics (when a MeterProvider is registered).
 */
function startStreamSend(state: ProducerState, args: unknown[], withSpan: boolean): Operation | undefined {
  const message = args[0];
  if (typeof message !== 'object' || message === null) return undefined;
  const { instr } = state;
  const outgoing = message as OutgoingMessage;
  let view: Record<string, unknown> | undefined;
  let topic: unknown;
  try {
    view = headerView(outgoing.headers);
    topic = outgoing.topic;
  } catch {
    return undefined;
  }
  const caller = view ? callerSpanContext(view) : undefined;
  const destination = typeof topic === 'string' ? topic : undefined;
  const parent = contextApi.active();
  const span = withSpan
    ? startClientSpan(
        instr,
        state.templates.of(caller ? 'sendClient' : 'send').get(destination),
        parent,
        caller ? { links: [{ context: caller }] } : undefined,
      )
    : undefined;
  const recording = span?.isRecording() === true;
  const metric = operationMetric(
    instr.metrics !== undefined,
    state.metrics,
    'send',
    'send',
    destination,
    1,
    undefined,
    state.info,
  );
  // With nothing to end (no recording span, no metrics), only the headers are copied.
  const operation = recording || metric ? new Operation(instr, span, metric) : undefined;
  try {
    if (recording)
      setSpanAttributes(
        span as NonNullable<typeof span>,
        sendAttributes(state, [outgoing]),
        instr.legacyAttributes,
      );
    args[0] = carrying(state, outgoing, view, caller, span ? trace.setSpan(parent, span) : parent);
  } catch (error) {
    // A getter that throws while the message is read or copied: the stream gets it as it is.
    operation?.fail(error);
    return undefined;
  }
  return operation;
}

/**
 * The send spans of one stream, in the order their messages were written: the stream's `flush`
 * ends the oldest ones, its close ends the rest. `undefined` entries stand for messages without a
 * span, so the order stays aligned with the stream's buffer.
 */
class StreamSends {
  #open: (Operation | undefined)[] = [];
  #head = 0;
  /** Entries that hold an operation, still open (what the cap counts). */
  #held = 0;
  /** Set once the stream closed with entries left: when, with what error, and the grace timer. */
  #closing: { error: unknown; at: number; timer: ReturnType<typeof setTimeout> | undefined } | undefined;
  /** Set when the stream was destroyed through the traced stream (not by its own failed batch). */
  #outside = false;
  /** The producer's streams waiting out their grace (its close ends them at once). */
  readonly #waiting: Set<{ drop(): void }>;

  constructor(waiting: Set<{ drop(): void }>) {
    this.#waiting = waiting;
  }

  get full(): boolean {
    return this.#held >= MAX_OPEN_STREAM_SENDS;
  }

  push(operation: Operation | undefined): void {
    this.#open.push(operation);
    if (operation) this.#held++;
  }

  /**
   * The stream is being destroyed from outside (`destroy()`, also by a `pipeline` whose source
   * failed): a batch it had in flight may still be acknowledged, even when destroyed with an error.
   */
  destroyedFromOutside(): void {
    this.#outside = true;
  }

  /** Forgets the newest entry (its write was refused). */
  pop(): void {
    if (this.#open.length > this.#head && this.#open.pop()) this.#held--;
  }

  /** The stream sent its oldest `count` messages: their spans end. Never throws. */
  sent(count: unknown): void {
    const n = typeof count === 'number' && Number.isFinite(count) ? count : 0;
    for (let i = 0; i < n && this.#head < this.#open.length; i++) {
      const operation = this.#open[this.#head];
      this.#open[this.#head++] = undefined;
      if (operation) {
        this.#held--;
        operation.end();
      }
    }
    // A destroyed stream sends nothing after the batch it had in flight.
    if (this.#closing) this.drop();
    else this.#compact();
  }

  /**
   * The stream closed. Closed by its own error (a batch failed): what it still held ends with that
   * error now. Destroyed from outside (with or without an error) or without an error: a batch may
   * still be in flight, so the rest waits for a late `flush` (which ends that batch OK),
   * {@link STREAM_CLOSE_GRACE_MS} or the producer's close, and then ends with the destroy's error
   * (or `stream_closed`), timed at the close.
   */
  closed(error: unknown): void {
    if (this.#head >= this.#open.length) {
      this.#reset();
      return;
    }
    const failed = error !== null && error !== undefined;
    this.#closing = { error, at: Date.now(), timer: undefined };
    if (failed && !this.#outside) {
      this.drop();
      return;
    }
    const timer = setTimeout(() => this.drop(), STREAM_CLOSE_GRACE_MS);
    timer.unref?.();
    this.#closing.timer = timer;
    this.#waiting.add(this);
  }

  /** Ends every entry still held (ERROR, timed at the close), once the stream has closed. */
  drop(): void {
    const closing = this.#closing;
    if (!closing) return;
    this.#closing = undefined;
    if (closing.timer !== undefined) clearTimeout(closing.timer);
    this.#waiting.delete(this);
    const rest = this.#open.slice(this.#head);
    this.#reset();
    const failed = closing.error !== null && closing.error !== undefined;
    for (const operation of rest) {
      if (!operation) continue;
      if (failed) operation.noteFailure(closing.error);
      else
        operation.noteFailureType(
          ERROR_STREAM_CLOSED,
          'the producer stream was destroyed before the batch was acknowledged',
        );
      operation.end(closing.at);
    }
  }

  #reset(): void {
    this.#open = [];
    this.#head = 0;
    this.#held = 0;
  }

  #compact(): void {
    if (this.#head === this.#open.length) this.#reset();
    else if (this.#head >= 1024 && this.#head * 2 >= this.#open.length) {
      this.#open = this.#open.slice(this.#head);
      this.#head = 0;
    }
  }
}
