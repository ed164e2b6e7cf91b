import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_SYSTEM_NAME,
  createInstrumentation,
  errorTypeOf,
  extractContext,
  hasPropagationHeaders,
  type Instrumentation,
  MESSAGING_SYSTEM,
  SpanHandle,
  setSpanAttributes,
  startMessagingSpan,
  withContextHeaders,
} from '@hoptrace/core';
import {
  type Attributes,
  type Context,
  context as contextApi,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  SpanKind,
  trace,
} from '@opentelemetry/api';
import type {
  Message,
  Producer,
  ProducerBatch,
  ProducerRecord,
  RecordMetadata,
  TopicMessages,
  Transaction,
} from 'kafkajs';
import { addClientAttributes, addMessageAttributes, addPositionAttributes } from './attributes.ts';
import { type ClientInfo, learnClientInfo } from './client-info.ts';
import { type KafkaProducerOptions, type KafkaSettings, resolveKafkaSettings } from './options.ts';
import { SCOPE_NAME, SCOPE_VERSION } from './version.ts';

/** Everything a traced producer (and its transactions) shares. */
export interface ProducerState {
  readonly instr: Instrumentation;
  readonly settings: KafkaSettings;
  readonly info: ClientInfo;
}

/** Producers and transactions hoptrace handed out; wrapping one of them again returns it as is. */
const wrapped = new WeakSet<object>();

/**
 * Wraps a kafkajs producer so that `send`, `sendBatch` and both inside transactions are traced and
 * every message carries its creation context in its headers.
 *
 * - One `send {topic}` span per call (`send` alone when a `sendBatch` spans several topics).
 * - A single message: the send span is a PRODUCER span and its context is injected.
 * - Several messages: a `create {topic}` PRODUCER span per message, injected into that message; the
 *   send span is a CLIENT span linking to each (with `createSpans: false`, the send span's context is
 *   injected instead).
 * - A message that already carries a context (e.g. its own `traceparent`) keeps it and gets no create
 *   span; the send span links to it.
 * - Partition and offset from the broker's reply go on the create spans (or on the send span for a
 *   single message); a failure sets `error.type` from the kafkajs error (e.g. `UNKNOWN_TOPIC_OR_PARTITION`).
 *
 * Never mutates the caller's records, messages or header maps (copy on write). Idempotent: a traced
 * producer is returned unchanged. The result has the producer's own type, so it is a drop-in.
 *
 * @param producer - from `kafka.producer()`.
 * @param options - see {@link KafkaProducerOptions}; invalid options throw a TypeError here.
 * @returns a proxy that delegates everything else to `producer`.
 */
export function traceProducer<P extends Producer>(producer: P, options: KafkaProducerOptions = {}): P {
  if (wrapped.has(producer)) return producer;
  const instr = createInstrumentation(SCOPE_NAME, SCOPE_VERSION, options);
  const settings = resolveKafkaSettings(options);
  return wrapProducer(producer, instr, settings);
}

/** Wraps with already resolved options (shared by {@link traceProducer} and `traceKafka`). */
export function wrapProducer<P extends Producer>(
  producer: P,
  instr: Instrumentation,
  settings: KafkaSettings,
): P {
  if (wrapped.has(producer)) return producer;
  const info: ClientInfo = {
    clientId: settings.clientId,
    serverAddress: settings.serverAddress,
    serverPort: settings.serverPort,
    groupId: undefined,
  };
  learnClientInfo(info, (listener) => producer.on('producer.network.request', listener));
  const state: ProducerState = { instr, settings, info };
  const send = (record: ProducerRecord) => tracedSend(state, producer, record);
  const sendBatch = (batch: ProducerBatch) => tracedSendBatch(state, producer, batch);
  const transaction = async (): Promise<Transaction> => wrapTransaction(await producer.transaction(), state);
  const proxy = new Proxy(producer, {
    get(target, property, receiver) {
      if (property === 'send') return send;
      if (property === 'sendBatch') return sendBatch;
      if (property === 'transaction') return transaction;
      return Reflect.get(target, property, receiver);
    },
  });
  wrapped.add(proxy);
  return proxy;
}

/** Wraps a kafkajs transaction: `send`/`sendBatch` traced; `sendOffsets`, `commit`, `abort` as they are. */
function wrapTransaction(transaction: Transaction, state: ProducerState): Transaction {
  if (wrapped.has(transaction)) return transaction;
  const send = (record: ProducerRecord) => tracedSend(state, transaction, record);
  const sendBatch = (batch: ProducerBatch) => tracedSendBatch(state, transaction, batch);
  const proxy = new Proxy(transaction, {
    get(target, property, receiver) {
      if (property === 'send') return send;
      if (property === 'sendBatch') return sendBatch;
      return Reflect.get(target, property, receiver);
    },
  });
  wrapped.add(proxy);
  return proxy;
}

type Sender = Pick<Producer, 'send' | 'sendBatch'>;

function tracedSend(state: ProducerState, sender: Sender, record: ProducerRecord): Promise<RecordMetadata[]> {
  // Input kafkajs will reject anyway goes through untouched, so its own validation error surfaces.
  if (!record || typeof record !== 'object' || !Array.isArray(record.messages)) return sender.send(record);
  return traceSendCall(state, [record], (groups) =>
    sender.send({ ...record, messages: (groups[0] as TopicMessages).messages }),
  );
}

function tracedSendBatch(
  state: ProducerState,
  sender: Sender,
  batch: ProducerBatch,
): Promise<RecordMetadata[]> {
  const groups = batch?.topicMessages;
  if (!Array.isArray(groups) || !groups.every((g) => g && Array.isArray(g.messages))) {
    return sender.sendBatch(batch);
  }
  return traceSendCall(state, groups, (traced) => sender.sendBatch({ ...batch, topicMessages: traced }));
}

/**
 * The traced send: create spans, the send span, copy-on-write headers, the call, and the reply's
 * positions. `groups` are the caller's (topic, messages) pairs, never modified.
 */
async function traceSendCall(
  state: ProducerState,
  groups: readonly TopicMessages[],
  invoke: (groups: TopicMessages[]) => Promise<RecordMetadata[]>,
): Promise<RecordMetadata[]> {
  const { instr, settings, info } = state;
  const startMs = performance.now();
  const parent = contextApi.active();
  let total = 0;
  let destination: string | undefined = groups[0]?.topic;
  for (const group of groups) {
    total += group.messages.length;
    if (group.topic !== destination) destination = undefined;
  }
  const multi = total > 1;
  const useCreate = multi && settings.createSpans;
  const links: Link[] = [];
  // Per flat message index: its create span (batch) or undefined.
  const creates: (SpanHandle | undefined)[] | undefined = useCreate ? [] : undefined;
  // Per flat message index: the context to inject, `null` = send span's, undefined = keep theirs.
  const inject: (Context | null | undefined)[] = [];
  let injectsSend = false;

  for (const group of groups) {
    for (const message of group.messages) {
      if (message && hasPropagationHeaders(message.headers)) {
        // The caller's own context: kept as is, linked when it is valid.
        const own = trace.getSpanContext(extractContext(message.headers, ROOT_CONTEXT));
        if (own && isSpanContextValid(own)) {
          const attributes: Attributes = {};
          if (multi) {
            addMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
            addPositionAttributes(attributes, message.partition, undefined);
          }
          links.push({ context: own, attributes });
        }
        inject.push(undefined);
        creates?.push(undefined);
      } else if (creates) {
        const attributes: Attributes = {};
        addClientAttributes(attributes, info, false);
        if (message) {
          addMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
          addPositionAttributes(attributes, message.partition, undefined);
        }
        const span = startMessagingSpan(instr.tracer, {
          system: MESSAGING_SYSTEM.kafka,
          operationType: 'create',
          operationName: 'create',
          destination: group.topic,
          attributes,
          parent,
          legacyAttributes: instr.legacyAttributes,
        });
        creates.push(new SpanHandle(span));
        links.push({ context: span.spanContext() });
        inject.push(trace.setSpan(parent, span));
      } else {
        injectsSend = true;
        inject.push(null);
      }
    }
  }

  const sendAttributes: Attributes = {};
  addClientAttributes(sendAttributes, info, false);
  if (multi) sendAttributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = total;
  else {
    const only = groups.find((g) => g.messages.length > 0)?.messages[0];
    if (only) {
      addMessageAttributes(sendAttributes, only, settings.captureKeys, instr.captureBodySize);
      addPositionAttributes(sendAttributes, only.partition, undefined);
    }
  }
  const sendSpan = startMessagingSpan(instr.tracer, {
    system: MESSAGING_SYSTEM.kafka,
    operationType: 'send',
    operationName: 'send',
    destination,
    kind: injectsSend ? SpanKind.PRODUCER : SpanKind.CLIENT,
    attributes: sendAttributes,
    links: links.length > 0 ? links : undefined,
    parent,
    legacyAttributes: instr.legacyAttributes,
  });
  const sendHandle = new SpanHandle(sendSpan);
  const sendContext = injectsSend ? trace.setSpan(parent, sendSpan) : undefined;

  let index = 0;
  const traced: TopicMessages[] = groups.map((group) => ({
    ...group,
    messages: group.messages.map((message): Message => {
      const target = inject[index++];
      if (target === undefined || !message) return message;
      return { ...message, headers: withContextHeaders(message.headers, target ?? sendContext) };
    }),
  }));

  const metricAttributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM_NAME]: MESSAGING_SYSTEM.kafka,
    [ATTR_MESSAGING_OPERATION_NAME]: 'send',
  };
  if (destination !== undefined) metricAttributes[ATTR_MESSAGING_DESTINATION_NAME] = destination;

  let reply: RecordMetadata[];
  try {
    reply = await invoke(traced);
  } catch (error) {
    const errorType = errorTypeOf(error);
    if (creates) for (const create of creates) create?.fail(error, errorType);
    sendHandle.fail(error, errorType);
    metricAttributes[ATTR_ERROR_TYPE] = errorType;
    instr.metrics.recordSend(startMs, total, metricAttributes);
    throw error;
  }
  try {
    if (creates || !multi) recordPositions(state, groups, reply, creates, sendHandle);
  } catch {
    // A reply of an unexpected shape costs the position attributes, never the caller's send.
  } finally {
    if (creates) for (const create of creates) create?.end();
    sendHandle.end();
    instr.metrics.recordSend(startMs, total, metricAttributes);
  }
  return reply;
}

/**
 * Puts partition and offset from kafkajs's reply on the create spans (or the send span for a single
 * message). kafkajs replies per topic-partition with the base offset of what this call appended;
 * messages keep their order within a partition, so a message's offset is the base plus its index
 * there. A partition is known when the caller fixed it or the topic's reply names one partition only;
 * offsets are computed only when every message of the topic has a known partition.
 */
function recordPositions(
  state: ProducerState,
  groups: readonly TopicMessages[],
  reply: RecordMetadata[],
  creates: (SpanHandle | undefined)[] | undefined,
  sendHandle: SpanHandle,
): void {
  if (!Array.isArray(reply)) return;
  const byTopic = new Map<string, RecordMetadata[]>();
  for (const entry of reply) {
    if (!entry || typeof entry.topicName !== 'string') continue;
    const list = byTopic.get(entry.topicName);
    if (list) list.push(entry);
    else byTopic.set(entry.topicName, [entry]);
  }
  const allKnown = new Map<string, boolean>();
  for (const group of groups) {
    const single = byTopic.get(group.topic)?.length === 1;
    const known = single || group.messages.every((m) => m && typeof m.partition === 'number');
    allKnown.set(group.topic, (allKnown.get(group.topic) ?? true) && known);
  }
  const seen = new Map<string, number>();
  let index = 0;
  for (const group of groups) {
    const entries = byTopic.get(group.topic);
    for (const message of group.messages) {
      const handle = creates ? creates[index] : sendHandle;
      index++;
      const partition =
        typeof message?.partition === 'number'
          ? message.partition
          : entries?.length === 1
            ? entries[0]?.partition
            : undefined;
      if (partition === undefined) continue;
      const key = `${group.topic}\u0000${partition}`;
      const position = seen.get(key) ?? 0;
      seen.set(key, position + 1);
      if (!handle) continue;
      let offset: number | undefined;
      const base = entries?.find((e) => e.partition === partition)?.baseOffset;
      if (allKnown.get(group.topic) && base !== undefined) {
        const n = Number(base);
        if (Number.isSafeInteger(n) && n >= 0) offset = n + position;
      }
      const attributes: Attributes = {};
      addPositionAttributes(attributes, partition, offset);
      setSpanAttributes(handle.span, attributes, state.instr.legacyAttributes);
    }
  }
}
