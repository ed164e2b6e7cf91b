import { readFailureLineage } from '@hoptrace/core';
import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  asAwaited,
  type ConsumerSpan,
  lineageAttributes,
  lineageLinks,
  type MessageContext,
  Operation,
  readMessageContext,
  startConsumerSpan,
  startSpanFromTemplate,
  withFailureLineage,
} from '@hoptrace/core/adapter';
import { type Context, context as contextApi, type Link, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  batchMessageLink,
  setMessageAttributes,
} from './attributes.ts';
import { type ConsumerState, type OpenBatch, processMetric, recordTimeInQueue } from './consumer-state.ts';

/** Which in-flight batch a message belongs to, for {@link withMessageContext}. */
const trackers = new WeakMap<object, BatchTracker>();

/** Below this many, ended `withMessageContext` spans of a batch are kept until the batch ends. */
const MIN_CALL_SWEEP = 64;

/**
 * The spans of one eachBatch call. In `message` mode a message's span starts when processing of it
 * begins (the batch starts, the previous message's offset is resolved, or {@link withMessageContext}
 * is called for it, whichever comes first) and ends when its offset is resolved or the batch ends.
 * In `batch` mode only {@link withMessageContext} starts one, and it ends when its callback settles.
 */
class BatchTracker implements OpenBatch {
  readonly #state: ConsumerState;
  readonly #topic: string;
  readonly #partition: number;
  readonly #messages: readonly KafkaMessage[];
  readonly #creations: readonly MessageContext[];
  readonly #perMessage: boolean;
  readonly #operations: (Operation | undefined)[];
  readonly #contexts: (Context | undefined)[];
  /** `batch` mode: the spans of `withMessageContext` calls still open when last looked at. */
  readonly #calls = new Set<Operation>();
  /** `#calls` is swept of ended spans when it reaches this size (doubling: amortized O(1) per call). */
  #sweepAt = MIN_CALL_SWEEP;
  /** Messages before this index have ended (`message` mode). */
  #done = 0;
  /** The index `indexOf` found last. */
  #cursor = -1;
  /** The batch's own operation (ended by the handler's completion, or by finish on stop). */
  readonly batch: Operation;
  /** The context the batch handler runs in. */
  readonly batchContext: Context;

  constructor(
    state: ConsumerState,
    topic: string,
    partition: number,
    messages: readonly KafkaMessage[],
    creations: readonly MessageContext[],
    batch: Operation,
    batchContext: Context,
  ) {
    this.#state = state;
    this.#topic = topic;
    this.#partition = partition;
    this.#messages = messages;
    this.#creations = creations;
    this.#perMessage = state.settings.batchSpans === 'message';
    this.batch = batch;
    this.batchContext = batchContext;
    this.#operations = new Array(messages.length);
    this.#contexts = new Array(messages.length);
  }

  /**
   * The index of `message` in this batch, or -1. Sequential processing hits the fast path: the
   * first message not yet done, or the one after the last looked up (in `batch` mode nothing is
   * "done" until the batch ends, so a loop over a large batch stays O(1) per message).
   */
  indexOf(message: KafkaMessage): number {
    const messages = this.#messages;
    let found: number;
    if (messages[this.#done] === message) found = this.#done;
    else if (messages[this.#cursor + 1] === message) found = this.#cursor + 1;
    else if (messages[this.#cursor] === message) found = this.#cursor;
    else found = messages.indexOf(message);
    if (found >= 0) this.#cursor = found;
    return found;
  }

  /** Starts message `i`'s span unless it has started (`message` mode); returns its operation and context. */
  start(i: number): { operation: Operation; context: Context } | undefined {
    const existing = this.#operations[i];
    if (existing) return { operation: existing, context: this.#contexts[i] as Context };
    const started = this.#startSpan(i);
    if (!started) return undefined;
    this.#operations[i] = started.operation;
    this.#contexts[i] = started.context;
    return started;
  }

  /** Starts a new span for message `i`; returns its operation, context and whether the span records. */
  #startSpan(i: number): { operation: Operation; context: Context; recording: boolean } | undefined {
    const message = this.#messages[i];
    if (!message) return undefined;
    const { instr, settings } = this.#state;
    // Under `link`, the batch span is the parent; under `parent`, the message's creation context.
    const lineage = readFailureLineage(message.headers);
    const started: ConsumerSpan = startConsumerSpan(
      instr,
      this.#state.templates.of('process').get(this.#topic),
      this.#creations[i] ?? readMessageContext(message.headers),
      this.batchContext,
      lineageLinks(lineage),
    );
    if (started.span?.isRecording()) {
      const base = lineage ? lineageAttributes(lineage) : {};
      setMessageAttributes(
        started.span,
        instr,
        settings.captureKeys,
        message,
        this.#partition,
        message.offset,
        base,
      );
    }
    const operation = new Operation(instr, started.span);
    const context = withFailureLineage(started.context, lineage);
    return { operation, context, recording: started.span?.isRecording() === true };
  }

  /**
   * Runs `fn` in message `i`'s span. `message` mode: the message's one span (started if needed),
   * which outlives the callback (resolving the offset ends it); once it has ended (the offset was
   * resolved first), a span of the call's own as in `batch` mode. `batch` mode: a span of this call's
   * own that ends when `fn` settles, so each call (a retry of the same message too) is traced and
   * its failure recorded.
   */
  runIn<T>(i: number, fn: () => T): T {
    if (this.#perMessage) {
      const started = this.start(i);
      if (!started) return fn();
      // Resolved before it was processed (at-most-once) ended its span: this call gets its own, as
      // in `batch` mode, so what it does is not put under an ended span and its failure is recorded.
      if (!started.operation.ended)
        return contextApi.with(started.context, () => started.operation.run(fn, undefined, false));
    }
    const started = this.#startSpan(i);
    if (!started) return fn();
    // A span that does not record has nothing to record: end it now, run in its context, keep nothing.
    if (!started.recording) {
      started.operation.end();
      return contextApi.with(started.context, fn);
    }
    if (this.#calls.size >= this.#sweepAt) {
      for (const call of this.#calls) if (call.ended) this.#calls.delete(call);
      this.#sweepAt = Math.max(MIN_CALL_SWEEP, 2 * this.#calls.size);
    }
    this.#calls.add(started.operation);
    return contextApi.with(started.context, () => started.operation.run(fn));
  }

  /**
   * Observes `resolveOffset(offset)` (`message` mode): ends every message span with an offset <=
   * `offset` (starting and ending at once those never started), then starts the next message's span.
   * Never throws.
   */
  resolved(offset: unknown): void {
    if (!this.#perMessage) return;
    const n = Number(offset);
    if (!Number.isFinite(n)) return;
    const messages = this.#messages;
    let i = this.#done;
    while (i < messages.length && Number((messages[i] as KafkaMessage).offset) <= n) {
      this.start(i)?.operation.end();
      i++;
    }
    if (i === this.#done) return;
    this.#done = i;
    if (i < messages.length) this.start(i);
  }

  /**
   * Ends every message span still open (in `message` mode starting and ending those never
   * started), then the batch's, once. `resolved` says the remaining messages count as processed
   * (a successful handler with eachBatchAutoResolve on, on a batch no seek made stale); otherwise
   * they get `hoptrace.message.unresolved = true`.
   */
  finish(resolved: boolean): void {
    const ending: Operation[] = [...this.#calls];
    this.#calls.clear();
    if (this.#perMessage) {
      for (let i = this.#done; i < this.#messages.length; i++) {
        const started = this.start(i);
        if (started) ending.push(started.operation);
      }
    }
    for (const operation of ending) {
      if (!resolved && !operation.ended) operation.setAttribute(ATTR_HOPTRACE_MESSAGE_UNRESOLVED, true);
      operation.end();
    }
    this.#done = this.#messages.length;
    for (const message of this.#messages) trackers.delete(message);
    this.batch.end();
  }
}

/**
 * One eachBatch call: the batch span with links, the per-message spans (`message` mode), the
 * handler inside the batch span, and the metrics. The handler gets a shallow copy of kafkajs's
 * payload whose `resolveOffset` calls kafkajs's first and then observes; every other field is
 * kafkajs's own.
 */
export function traceBatch(
  state: ConsumerState,
  handler: (payload: EachBatchPayload) => Promise<void>,
  payload: EachBatchPayload,
  autoResolve: boolean,
): Promise<void> {
  const { instr, settings } = state;
  const { batch } = payload;
  // A copy: the handler may change kafkajs's array in place (a shift() loop, reverse()), and every
  // message span must still end; the spans follow the batch as kafkajs fetched it.
  const messages: readonly KafkaMessage[] = batch.messages.slice();
  const creations: MessageContext[] = new Array(messages.length);
  const links: Link[] = [];
  const perMessage = settings.batchSpans === 'message';
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as KafkaMessage;
    recordTimeInQueue(state, batch.topic, batch.partition, message.offset, message.timestamp);
    // `batch` mode past the link cap: nothing to parse now (a message's own span, if the handler
    // asks for one, reads its headers then).
    if (!perMessage && links.length >= settings.maxBatchLinks) continue;
    const creation = readMessageContext(message.headers);
    creations[i] = creation;
    // The span is about several messages: each one's own attributes go on its link.
    if (creation.spanContext && links.length < settings.maxBatchLinks)
      links.push(batchMessageLink(instr, settings.captureKeys, creation.spanContext, message));
    // `batch` mode has no per-message span unless asked for: a dead-letter or retry copy's link to
    // the failed attempt goes on the batch span (within the same cap).
    if (!perMessage && links.length < settings.maxBatchLinks) {
      const lineage = lineageLinks(readFailureLineage(message.headers));
      if (lineage) links.push(...lineage);
    }
  }
  // A batch has many parents: it starts its own trace and links to each message's creation context.
  const span = startSpanFromTemplate(instr, state.templates.of('process').get(batch.topic), ROOT_CONTEXT, {
    links,
  });
  if (span.isRecording()) {
    setMessageAttributes(span, instr, false, undefined, batch.partition, undefined, {
      [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: messages.length,
      [ATTR_HOPTRACE_BATCH_LINK_COUNT]: links.length,
    });
  }
  const batchContext = trace.setSpan(ROOT_CONTEXT, span);
  const tracker = new BatchTracker(
    state,
    batch.topic,
    batch.partition,
    messages,
    creations,
    new Operation(instr, span, processMetric(state, batch.topic, messages.length)),
    batchContext,
  );
  for (const message of messages) trackers.set(message, tracker);
  state.batches.add(tracker);
  if (settings.batchSpans === 'message' && messages.length > 0) tracker.start(0);

  const original = payload.resolveOffset;
  const traced: EachBatchPayload = {
    ...payload,
    resolveOffset: (offset: string) => {
      original(offset);
      try {
        tracker.resolved(offset);
      } catch {
        // Observation only: kafkajs's own resolution above already happened.
      }
    },
  };
  let succeeded = false;
  let done: Promise<void> | undefined;
  try {
    done = contextApi.with(batchContext, () =>
      tracker.batch.run(
        () => asAwaited(handler(traced)) as Promise<void>,
        () => {
          succeeded = true;
        },
        false,
      ),
    );
  } catch (error) {
    // A handler that throws synchronously: the batch and its open message spans end now.
    state.batches.delete(tracker);
    tracker.finish(false);
    throw error;
  }
  return Promise.resolve(done).finally(() => {
    state.batches.delete(tracker);
    tracker.finish(succeeded && autoResolve && !isStale(payload));
  });
}

/**
 * Whether a `consumer.seek` on the batch's partition made it stale: kafkajs still resolves the
 * whole batch after the handler, but the seek replaces that position, so what the handler did not
 * resolve itself is delivered again (or skipped), not processed. Never throws.
 */
function isStale(payload: EachBatchPayload): boolean {
  try {
    return payload.isStale() === true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` inside the span hoptrace keeps for `message` (a message of a traced eachBatch batch),
 * so logs and downstream calls join that message's trace. In `batchSpans: 'message'` mode it starts
 * the message's span if processing of it has not begun yet and does not end it (resolving its
 * offset, or the batch's end, does); in `batchSpans: 'batch'` mode it starts a span for the message
 * that ends when `fn` settles (each call its own, so a retry of the message is traced too). A throw
 * or rejection is recorded on the message's span and rethrown unchanged. For any other message,
 * just runs `fn`.
 *
 * @example
 * eachBatch: async ({ batch, resolveOffset }) => {
 *   for (const message of batch.messages) {
 *     await withMessageContext(message, () => handle(message));
 *     resolveOffset(message.offset);
 *   }
 * }
 */
export function withMessageContext<T>(message: KafkaMessage, fn: () => T): T {
  const tracker = trackers.get(message);
  if (!tracker) return fn();
  const i = tracker.indexOf(message);
  return i < 0 ? fn() : tracker.runIn(i, fn);
}
