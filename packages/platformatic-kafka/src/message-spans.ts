import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  addKafkaMessageAttributes,
  messageLink,
  Operation,
  operationMetric,
  readMessageContext,
  setSpanAttributes,
  startDeliverySpan,
  startSpanFromTemplate,
  timeInQueueSeconds,
} from '@hoptrace/core/adapter';
import type { Attributes, Context, Link, SpanContext } from '@opentelemetry/api';
import { context as contextApi, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  ATTR_HOPTRACE_PROCESS_TIMED_OUT,
} from './attributes.ts';
import type { ConsumerState, MessageEntry } from './consumer-state.ts';
import { headerView } from './headers.ts';

/** A received message as hoptrace reads it (never written to). */
export interface ReceivedMessage {
  readonly topic?: unknown;
  readonly partition?: unknown;
  readonly offset?: unknown;
  readonly key?: unknown;
  readonly value?: unknown;
  readonly timestamp?: unknown;
  readonly headers?: unknown;
}

/**
 * Which traced consumer handed out a message (`batch` mode; in `message` mode its entry says), and
 * its process span entry (`message` mode).
 */
const owners = new WeakMap<object, ConsumerState>();
const entries = new WeakMap<object, MessageEntry>();

/**
 * Notes that `state`'s stream handed out `message` without starting its span (`batch` mode), so the
 * helpers below know its consumer.
 */
export function own(state: ConsumerState, message: object): void {
  owners.set(message, state);
}

/** The traced consumer that handed out `message`, if any. */
function ownerOf(message: object): ConsumerState | undefined {
  return entries.get(message)?.state ?? owners.get(message);
}

/**
 * `batch` mode: the context of the latest `withMessageContext` call per message (its span ended with
 * the call), so a dead-letter copy made after that call failed still names the failed attempt.
 */
const lastContexts = new WeakMap<object, Context>();

/** The process span entry a traced stream started for `message` (`message` mode), if any. */
export function entryOf(message: unknown): MessageEntry | undefined {
  return message && typeof message === 'object' ? entries.get(message) : undefined;
}

/** The context `message` is (or was) processed in, when a traced stream started a span for it. */
export function messageContextOf(message: unknown): Context | undefined {
  if (!message || typeof message !== 'object') return undefined;
  return entries.get(message)?.context ?? lastContexts.get(message);
}

function topicOf(message: ReceivedMessage): string | undefined {
  return typeof message.topic === 'string' ? message.topic : undefined;
}

/**
 * Records how long the message waited in Kafka (from its timestamp), when metrics are on, the
 * timestamp is plausible (core's `timeInQueueSeconds`) and the message is past every offset of its
 * partition this consumer recorded before (a redelivery is not the start of its processing).
 */
function recordTimeInQueue(state: ConsumerState, topic: string | undefined, message: ReceivedMessage): void {
  const metrics = state.instr.metrics;
  const timestamp = message.timestamp;
  if (!metrics || typeof timestamp !== 'bigint') return;
  if (!state.firstDeliveries.isFirst(topic ?? '', message.partition, message.offset)) return;
  const waited = timeInQueueSeconds(Number(timestamp));
  if (waited !== undefined)
    metrics.timeInQueue.record(
      waited,
      state.metrics.get('process', topic, state.info.groupId, 'process', state.info),
    );
}

/**
 * Starts `message`'s process span (once; a second call returns the first entry): related to its
 * creation context by the relation policy, linked to a failed attempt when it is a dead-letter or
 * retry copy, with position, key (opted in), tombstone and body size (opted in).
 *
 * @param remember - keep the entry as the message's (its span and context for later helper calls);
 * `false` for a span of one `withMessageContext` call in `batch` mode.
 */
export function startMessage(
  state: ConsumerState,
  message: ReceivedMessage,
  open: Set<MessageEntry>,
  remember = true,
): MessageEntry {
  const existing = entries.get(message);
  if (existing) return existing;
  const { instr, settings } = state;
  const topic = topicOf(message);
  const { span, context, attributes } = startDeliverySpan(
    instr,
    state.templates.of('process').get(topic),
    headerView(message.headers),
  );
  if (span && attributes) {
    addKafkaMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
    setSpanAttributes(span, attributes, instr.legacyAttributes);
  }
  // Once per message: a `batch`-mode message may get a span per withMessageContext call.
  if (remember || !lastContexts.has(message)) recordTimeInQueue(state, topic, message);
  const metric =
    instr.metrics === undefined
      ? undefined
      : operationMetric(true, state.metrics, 'process', 'process', topic, 1, state.info.groupId, state.info);
  const operation = new Operation(instr, span, metric);
  // Nothing to end later (an unsampled message, or a span that does not record, and no metrics):
  // the entry only keeps the message's context for the helpers; it is not held open, swept or timed.
  const tracked = metric !== undefined || span?.isRecording() === true;
  const entry: MessageEntry = {
    state,
    operation,
    context,
    startedAt: tracked ? performance.now() : 0,
    open,
    pending: 0,
  };
  if (remember) entries.set(message, entry);
  if (tracked) open.add(entry);
  return entry;
}

/** Ends an entry's span (once) and forgets it as open. */
export function endEntry(entry: MessageEntry): void {
  entry.open.delete(entry);
  entry.operation.end();
}

/**
 * Ends every span a set still holds (a stream or consumer closed), with
 * `hoptrace.message.unresolved`: its message was handed out but not done with (the loop body, the
 * listener or the helper's function had not finished), as @hoptrace/kafka marks a message a stopped
 * consumer left unresolved.
 */
export function endAll(open: Set<MessageEntry>): void {
  for (const entry of open) {
    entry.operation.setAttribute(ATTR_HOPTRACE_MESSAGE_UNRESOLVED, true);
    entry.operation.end();
  }
  open.clear();
}

/** Ends, with `hoptrace.process.timed_out`, every span open for longer than `maxProcessingMs`. */
export function sweepTimedOut(state: ConsumerState): void {
  const limit = performance.now() - state.settings.maxProcessingMs;
  for (const open of state.streams.keys()) {
    for (const entry of open) {
      if (entry.startedAt > limit) continue;
      entry.operation.setAttribute(ATTR_HOPTRACE_PROCESS_TIMED_OUT, true);
      endEntry(entry);
    }
  }
}

/**
 * Runs `fn` inside the process span of `message` (a message from a traced stream), so logs and
 * downstream calls join that message's trace; what `fn` throws or rejects with is recorded on the
 * span and reaches you unchanged.
 *
 * - `batchSpans: 'message'`: the message's own span (started when the stream handed the message
 *   out) is made active; `fn` does not end it (see "When a message is done").
 * - `batchSpans: 'batch'`: a `process {topic}` span is started for this call and ends when `fn`
 *   returns or its promise settles.
 *
 * For a message no traced stream handed out, it just runs `fn`.
 */
export function withMessageContext<T>(message: object, fn: () => T): T {
  const entry = entries.get(message);
  if (entry) {
    if (entry.operation.ended) return contextApi.with(entry.context, fn);
    return contextApi.with(entry.context, () => entry.operation.run(fn, undefined, false));
  }
  const state = owners.get(message);
  if (!state) return fn();
  // `batch` mode: a span for this call only (each call gets its own), never remembered.
  const own = startMessage(state, message as ReceivedMessage, new Set(), false);
  lastContexts.set(message, own.context);
  return contextApi.with(own.context, () => own.operation.run(fn));
}

/**
 * The link from a `withBatchContext` span to one message's creation context, carrying what the
 * message's own process span records of it: partition and offset (the span is about messages that
 * may come from several partitions), key (with `captureKeys`), tombstone and body size (with
 * `captureBodySize`); older names too with `legacyAttributes`.
 */
function batchMessageLink(state: ConsumerState, context: SpanContext, message: ReceivedMessage): Link {
  const attributes: Attributes = {};
  addKafkaMessageAttributes(attributes, message, state.settings.captureKeys, state.instr.captureBodySize);
  return messageLink(context, attributes, state.instr.legacyAttributes);
}

/**
 * Runs `fn` inside one `process` span for a whole array of messages from a traced stream (e.g.
 * what you collected before a bulk write): a new trace with a link to each message's creation
 * context (first come, up to `maxBatchLinks`), `messaging.batch.message_count` and
 * `hoptrace.batch.link_count`. Named after the topic when all messages share one. What `fn` throws
 * or rejects with is recorded and reaches you unchanged; the span ends when `fn` settles.
 * For messages no traced stream handed out, it just runs `fn`.
 */
export function withBatchContext<T>(messages: readonly object[], fn: () => T): T {
  let first: object | undefined;
  let state: ConsumerState | undefined;
  for (const message of messages) {
    state = message && typeof message === 'object' ? ownerOf(message) : undefined;
    if (state) {
      first = message;
      break;
    }
  }
  if (!state) return fn();
  const { instr, settings } = state;
  let topic = topicOf(first as ReceivedMessage);
  const links: Link[] = [];
  for (const message of messages) {
    const received = message as ReceivedMessage | null | undefined;
    if (!received || typeof received !== 'object') continue;
    if (topicOf(received) !== topic) topic = undefined;
    if (links.length >= settings.maxBatchLinks) continue;
    const creation = readMessageContext(headerView(received.headers)).spanContext;
    if (creation) links.push(batchMessageLink(state, creation, received));
  }
  const span = startSpanFromTemplate(instr, state.templates.of('process').get(topic), ROOT_CONTEXT, {
    links,
  });
  if (span.isRecording()) {
    setSpanAttributes(
      span,
      {
        [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: messages.length,
        [ATTR_HOPTRACE_BATCH_LINK_COUNT]: links.length,
      },
      instr.legacyAttributes,
    );
  }
  // In `message` mode each message already counts in the process metric; the batch does not again.
  const metric =
    settings.batchSpans === 'batch'
      ? operationMetric(
          instr.metrics !== undefined,
          state.metrics,
          'process',
          'process',
          topic,
          messages.length,
          state.info.groupId,
          state.info,
        )
      : undefined;
  const operation = new Operation(instr, span, metric);
  return contextApi.with(trace.setSpan(ROOT_CONTEXT, span), () => operation.run(fn));
}
