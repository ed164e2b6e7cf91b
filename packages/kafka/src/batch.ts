import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  errorTypeOf,
  extractContext,
  MESSAGING_SYSTEM,
  runInSpan,
  SpanHandle,
  startConsumerSpan,
  startMessagingSpan,
} from '@hoptrace/core';
import {
  type Attributes,
  type Context,
  context as contextApi,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  trace,
} from '@opentelemetry/api';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  addClientAttributes,
  addMessageAttributes,
  addPositionAttributes,
} from './attributes.ts';
import { type ConsumerState, processMetricAttributes } from './consumer-state.ts';

/** Which in-flight batch a message belongs to, for {@link withMessageContext}. */
const trackers = new WeakMap<object, BatchTracker>();

/**
 * The per-message spans of one eachBatch call. A message's span starts when processing of it
 * begins (the batch starts, the previous message's offset is resolved, or {@link withMessageContext}
 * is called for it, whichever comes first) and ends when its offset is resolved or the batch ends.
 */
export class BatchTracker {
  readonly #state: ConsumerState;
  readonly #topic: string;
  readonly #partition: number;
  readonly #messages: readonly KafkaMessage[];
  readonly #creations: readonly Context[];
  readonly #batchContext: Context;
  readonly #handles: (SpanHandle | undefined)[];
  readonly #contexts: (Context | undefined)[];
  /** Messages before this index have ended. */
  #done = 0;
  /** The batch span (ended by the handler's completion, or by finish on stop). */
  readonly batch: SpanHandle;

  constructor(
    state: ConsumerState,
    topic: string,
    partition: number,
    messages: readonly KafkaMessage[],
    creations: readonly Context[],
    batch: SpanHandle,
  ) {
    this.#state = state;
    this.#topic = topic;
    this.#partition = partition;
    this.#messages = messages;
    this.#creations = creations;
    this.batch = batch;
    this.#batchContext = trace.setSpan(ROOT_CONTEXT, batch.span);
    this.#handles = new Array(messages.length);
    this.#contexts = new Array(messages.length);
  }

  /** The context the batch handler runs in. */
  get batchContext(): Context {
    return this.#batchContext;
  }

  /** The index of `message` in this batch, or -1. Sequential processing hits the fast path. */
  indexOf(message: KafkaMessage): number {
    if (this.#messages[this.#done] === message) return this.#done;
    return this.#messages.indexOf(message);
  }

  /** Starts message `i`'s span unless it has started; returns its handle and context. */
  start(i: number): { handle: SpanHandle; context: Context } | undefined {
    const existing = this.#handles[i];
    if (existing) return { handle: existing, context: this.#contexts[i] as Context };
    const message = this.#messages[i];
    if (!message) return undefined;
    const { instr, settings, info } = this.#state;
    const attributes: Attributes = {};
    addClientAttributes(attributes, info, true);
    addPositionAttributes(attributes, this.#partition, message.offset);
    addMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
    // Under `link`, the batch span is the parent; under `parent`, the message's creation context.
    const started = contextApi.with(this.#batchContext, () =>
      startConsumerSpan(instr, this.#creations[i] ?? ROOT_CONTEXT, {
        system: MESSAGING_SYSTEM.kafka,
        operationType: 'process',
        operationName: 'process',
        destination: this.#topic,
        attributes,
      }),
    );
    const handle = new SpanHandle(started.span);
    this.#handles[i] = handle;
    this.#contexts[i] = started.context;
    return { handle, context: started.context };
  }

  /**
   * Observes `resolveOffset(offset)`: ends every message span with an offset <= `offset` (starting
   * and ending at once those never started), then starts the next message's span. Never throws.
   */
  resolved(offset: unknown): void {
    const n = Number(offset);
    if (!Number.isFinite(n)) return;
    const messages = this.#messages;
    let i = this.#done;
    while (i < messages.length && Number((messages[i] as KafkaMessage).offset) <= n) {
      this.start(i)?.handle.end();
      i++;
    }
    if (i === this.#done) return;
    this.#done = i;
    if (i < messages.length) this.start(i);
  }

  /**
   * Ends every message span still open (starting and ending those never started), once.
   * `resolvedByKafka` says the remaining messages count as processed (a successful handler with
   * eachBatchAutoResolve on); otherwise they get `hoptrace.message.unresolved = true`.
   */
  finish(resolvedByKafka: boolean): void {
    for (let i = this.#done; i < this.#messages.length; i++) {
      const started = this.start(i);
      if (!started) continue;
      if (!resolvedByKafka && !started.handle.ended) {
        started.handle.span.setAttribute(ATTR_HOPTRACE_MESSAGE_UNRESOLVED, true);
      }
      started.handle.end();
    }
    this.#done = this.#messages.length;
    for (const message of this.#messages) trackers.delete(message);
    this.batch.end();
  }
}

/**
 * One eachBatch call: the batch span with links, the per-message spans, the handler inside the
 * batch span, and the metrics. The handler gets a shallow copy of kafkajs's payload whose
 * `resolveOffset` calls kafkajs's first and then observes; every other field is kafkajs's own.
 */
export async function traceBatch(
  state: ConsumerState,
  handler: (payload: EachBatchPayload) => Promise<void>,
  payload: EachBatchPayload,
  autoResolve: boolean,
): Promise<void> {
  const { instr, settings, info } = state;
  const startMs = performance.now();
  const { batch } = payload;
  const messages = batch.messages;
  const creations: Context[] = new Array(messages.length);
  const links: Link[] = [];
  for (let i = 0; i < messages.length; i++) {
    const creation = extractContext((messages[i] as KafkaMessage).headers, ROOT_CONTEXT);
    creations[i] = creation;
    if (links.length < settings.maxBatchLinks) {
      const spanContext = trace.getSpanContext(creation);
      if (spanContext && isSpanContextValid(spanContext)) links.push({ context: spanContext });
    }
  }
  const attributes: Attributes = {
    [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: messages.length,
    [ATTR_HOPTRACE_BATCH_LINK_COUNT]: links.length,
  };
  addClientAttributes(attributes, info, true);
  addPositionAttributes(attributes, batch.partition, undefined);
  const span = startMessagingSpan(instr.tracer, {
    system: MESSAGING_SYSTEM.kafka,
    operationType: 'process',
    operationName: 'process',
    destination: batch.topic,
    attributes,
    links: links.length > 0 ? links : undefined,
    parent: ROOT_CONTEXT,
    legacyAttributes: instr.legacyAttributes,
  });
  const tracker = new BatchTracker(
    state,
    batch.topic,
    batch.partition,
    messages,
    creations,
    new SpanHandle(span),
  );
  for (const message of messages) trackers.set(message, tracker);
  state.batches.add(tracker);
  if (messages.length > 0) tracker.start(0);

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
  const metricAttributes = processMetricAttributes(state, batch.topic);
  let succeeded = false;
  try {
    await runInSpan(tracker.batch, () => handler(traced), { context: tracker.batchContext, end: false });
    succeeded = true;
  } catch (error) {
    metricAttributes[ATTR_ERROR_TYPE] = errorTypeOf(error);
    throw error;
  } finally {
    state.batches.delete(tracker);
    tracker.finish(succeeded && autoResolve);
    instr.metrics.recordProcess(startMs, messages.length, metricAttributes);
  }
}

/**
 * Runs `fn` inside the span hoptrace keeps for `message` (a message of a traced eachBatch batch),
 * so logs and downstream calls join that message's trace. Starts the message's span if processing
 * of it has not begun yet; does not end it (resolving its offset, or the batch's end, does). A
 * throw or rejection is recorded on the message's span and rethrown unchanged. For any other
 * message, just runs `fn`.
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
  const started = i < 0 ? undefined : tracker.start(i);
  if (!started) return fn();
  return runInSpan(started.handle, fn, { context: started.context, end: false });
}
