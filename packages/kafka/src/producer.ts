import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  callerSpanContext,
  createInstrumentation,
  existingWrapper,
  type Instrumentation,
  interceptMethods,
  MetricAttributeCache,
  Operation,
  type OperationMetric,
  type OperationTemplates,
  operationMetric,
  sendHeaders,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import {
  type Attributes,
  context as contextApi,
  type Link,
  type Span,
  type SpanContext,
  trace,
} from '@opentelemetry/api';
import type {
  IHeaders,
  Message,
  Offsets,
  Producer,
  ProducerBatch,
  ProducerRecord,
  RecordMetadata,
  TopicMessages,
  Transaction,
} from 'kafkajs';
import {
  ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME,
  addMessageAttributes,
  addPositionAttributes,
  ERROR_TRANSACTION_ABORTED,
} from './attributes.ts';
import { ClientInfo } from './client-info.ts';
import { type KafkaOperation, kafkaTemplates } from './operations.ts';
import { type KafkaProducerOptions, type KafkaSettings, resolveKafkaSettings } from './options.ts';
import { KAFKA_SCOPE } from './scope.ts';

/** Most sends of one transaction whose spans wait for its commit or abort; older ones end as `unknown`. */
export const MAX_PENDING_TRANSACTION_SENDS = 1024;

/** Everything a traced producer (and its transactions) shares. */
interface ProducerState {
  readonly instr: Instrumentation;
  readonly settings: KafkaSettings;
  readonly templates: OperationTemplates<KafkaOperation>;
  readonly metrics: MetricAttributeCache;
  /** Sends of open transactions, ended as `unknown` when the producer disconnects first. */
  readonly transactions: Set<Set<Operation>>;
}

/**
 * Wraps a kafkajs producer so that `send`, `sendBatch`, transactions (`send`, `sendBatch`,
 * `sendOffsets`, `commit`, `abort`) are traced and every message carries its creation context in
 * its headers.
 *
 * - One `send {topic}` span per call (`send` alone when a `sendBatch` spans several topics), whose
 *   context every message of the call carries. With `createSpans: true`, calls of several messages
 *   also get a `create {topic}` span per message (each message then carries its own, and the send
 *   span becomes a CLIENT span linking to them).
 * - A message that already carries a context (e.g. its own `traceparent`) keeps it; the send span
 *   links to it (and is a CLIENT span when every message does).
 * - Partition and offset from the broker's reply go on the span about one message; a failure sets
 *   `error.type` from the kafkajs error (e.g. `UNKNOWN_TOPIC_OR_PARTITION`) or your classifier.
 * - Inside a transaction, send spans stay open until `commit` or `abort` and then say which
 *   (`hoptrace.kafka.transaction.outcome`; an aborted send ends with `error.type`
 *   `transaction_aborted`), so a trace never claims delivery of an aborted message.
 *
 * Never mutates the caller's records, messages or header maps (copy on write). Idempotent: a traced
 * producer (or one wrapped before) is returned unchanged. The result has the producer's own type.
 *
 * @param producer - from `kafka.producer()`.
 * @param options - see {@link KafkaProducerOptions}; invalid options throw a TypeError here.
 */
export function traceProducer<P extends Producer>(producer: P, options: KafkaProducerOptions = {}): P {
  const existing = existingWrapper(producer);
  if (existing) return existing;
  const instr = createInstrumentation(KAFKA_SCOPE, options);
  return wrapProducer(producer, instr, resolveKafkaSettings(options));
}

/** Wraps with already resolved options (shared by {@link traceProducer} and `traceKafka`). */
export function wrapProducer<P extends Producer>(
  producer: P,
  instr: Instrumentation,
  settings: KafkaSettings,
): P {
  const existing = existingWrapper(producer);
  if (existing) return existing;
  const info = new ClientInfo(settings, undefined);
  info.learn((listener) => producer.on('producer.network.request', listener));
  const state: ProducerState = {
    instr,
    settings,
    templates: kafkaTemplates(instr, info, false),
    metrics: new MetricAttributeCache(instr.system),
    transactions: new Set(),
  };
  return interceptMethods(producer, {
    send: (raw, [record]) => tracedSend(state, raw, record as ProducerRecord, undefined),
    sendBatch: (raw, [batch]) => tracedSendBatch(state, raw, batch as ProducerBatch, undefined),
    transaction: (raw) => raw.transaction().then((transaction) => wrapTransaction(transaction, state)),
    disconnect: (raw) =>
      raw.disconnect().finally(() => {
        for (const pending of state.transactions) endPending(pending, 'unknown');
        state.transactions.clear();
      }),
  });
}

/** Wraps a kafkajs transaction: sends are traced and stay open until `commit`/`abort`, which get spans too. */
function wrapTransaction(transaction: Transaction, state: ProducerState): Transaction {
  const pending = new Set<Operation>();
  state.transactions.add(pending);
  const finish = (raw: Transaction, how: 'commit' | 'abort'): Promise<void> => {
    const span = startClientSpan(state.instr, state.templates.of(how).get(undefined));
    const operation = new Operation(
      state.instr,
      span,
      metric(state, how === 'commit' ? 'commit_transaction' : 'abort_transaction', undefined, 0, 'settle'),
    );
    const done = operation.run(
      () => (how === 'commit' ? raw.commit() : raw.abort()),
      () => endPending(pending, how === 'commit' ? 'committed' : 'aborted'),
    );
    return done.then(
      (value) => {
        state.transactions.delete(pending);
        return value;
      },
      (error: unknown) => {
        // The transaction's fate is unknown to us now: say so rather than claim either outcome.
        endPending(pending, 'unknown');
        state.transactions.delete(pending);
        throw error;
      },
    );
  };
  return interceptMethods(transaction, {
    send: (raw, [record]) => tracedSend(state, raw, record as ProducerRecord, pending),
    sendBatch: (raw, [batch]) => tracedSendBatch(state, raw, batch as ProducerBatch, pending),
    sendOffsets: (raw, [offsets]) =>
      tracedSendOffsets(state, raw, offsets as Offsets & { consumerGroupId: string }),
    commit: (raw) => finish(raw, 'commit'),
    abort: (raw) => finish(raw, 'abort'),
  });
}

/** Ends the spans of a transaction's sends with its outcome. */
function endPending(pending: Set<Operation>, outcome: 'committed' | 'aborted' | 'unknown'): void {
  for (const operation of pending) {
    operation.setAttribute(ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME, outcome);
    if (outcome === 'aborted')
      operation.noteFailureType(ERROR_TRANSACTION_ABORTED, 'transaction aborted: message not delivered');
    operation.end();
  }
  pending.clear();
}

function tracedSendOffsets(
  state: ProducerState,
  raw: Transaction,
  offsets: Offsets & { consumerGroupId: string },
): Promise<void> {
  const topics = Array.isArray(offsets?.topics) ? offsets.topics : [];
  const destination = topics.length === 1 ? topics[0]?.topic : undefined;
  const span = startClientSpan(state.instr, state.templates.of('sendOffsets').get(destination));
  if (span?.isRecording()) {
    const attributes: Attributes = {};
    let partitions = 0;
    for (const topic of topics) partitions += Array.isArray(topic?.partitions) ? topic.partitions.length : 0;
    attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = partitions;
    if (typeof offsets?.consumerGroupId === 'string')
      attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = offsets.consumerGroupId;
    setSpanAttributes(span, attributes);
  }
  const operation = new Operation(state.instr, span, metric(state, 'send_offsets', destination, 0, 'settle'));
  return operation.run(() => raw.sendOffsets(offsets));
}

function metric(
  state: ProducerState,
  operationName: string,
  destination: string | undefined,
  count: number,
  operation: OperationMetric['operation'] = 'send',
): OperationMetric | undefined {
  return operationMetric(
    state.instr.metrics !== undefined,
    state.metrics,
    operation,
    operationName,
    destination,
    count,
  );
}

type Sender = Pick<Producer, 'send' | 'sendBatch'>;

function tracedSend(
  state: ProducerState,
  sender: Sender,
  record: ProducerRecord,
  transaction: Set<Operation> | undefined,
): Promise<RecordMetadata[]> {
  let messages: unknown;
  try {
    messages = record && typeof record === 'object' ? record.messages : undefined;
  } catch {
    messages = undefined;
  }
  // Input kafkajs will reject anyway goes through untouched, so its own validation error surfaces.
  if (!Array.isArray(messages)) return sender.send(record);
  return traceSendCall(
    state,
    [record],
    (groups) => sender.send({ ...record, messages: (groups[0] as TopicMessages).messages }),
    () => sender.send(record),
    transaction,
  );
}

function tracedSendBatch(
  state: ProducerState,
  sender: Sender,
  batch: ProducerBatch,
  transaction: Set<Operation> | undefined,
): Promise<RecordMetadata[]> {
  let groups: unknown;
  try {
    groups = batch?.topicMessages;
    if (!Array.isArray(groups) || !groups.every((g) => g && Array.isArray(g.messages))) groups = undefined;
  } catch {
    groups = undefined;
  }
  if (groups === undefined) return sender.sendBatch(batch);
  return traceSendCall(
    state,
    groups as TopicMessages[],
    (traced) => sender.sendBatch({ ...batch, topicMessages: traced }),
    () => sender.sendBatch(batch),
    transaction,
  );
}

/**
 * The traced send: the send span (and create spans when asked for), copy-on-write headers, the call
 * and the reply's positions. `groups` are the caller's (topic, messages) pairs, never modified.
 */
function traceSendCall(
  state: ProducerState,
  groups: readonly TopicMessages[],
  invoke: (groups: TopicMessages[]) => Promise<RecordMetadata[]>,
  invokeRaw: () => Promise<RecordMetadata[]>,
  transaction: Set<Operation> | undefined,
): Promise<RecordMetadata[]> {
  let callers: Callers;
  try {
    callers = readCallers(state, groups);
  } catch {
    // Reading the caller's records threw (a throwing getter): no span has started yet, so hoptrace
    // steps aside and kafkajs gets the caller's own objects (and raises its own error, as without us).
    return invokeRaw();
  }
  return traceCallers(state, groups, callers, invoke, invokeRaw, transaction);
}

/** What the caller's records say before any span starts: sizes, destination, their own contexts. */
interface Callers {
  total: number;
  destination: string | undefined;
  /** Per message (flattened), the valid context its headers already carry. */
  contexts: (SpanContext | undefined)[] | undefined;
  /** Links from the send span to those contexts. */
  links: Link[] | undefined;
  /** How many messages carry their own context. */
  own: number;
}

/** Reads the caller's records (may throw on hostile getters; nothing has started yet). */
function readCallers(state: ProducerState, groups: readonly TopicMessages[]): Callers {
  const { instr, settings } = state;
  let total = 0;
  let destination: string | undefined = groups[0]?.topic;
  for (const group of groups) {
    total += group.messages.length;
    if (group.topic !== destination) destination = undefined;
  }
  const multi = total > 1;
  // The callers' own contexts (parsed once) are kept, and linked from the send span.
  let callers: (SpanContext | undefined)[] | undefined;
  let links: Link[] | undefined;
  let own = 0;
  let index = 0;
  for (const group of groups) {
    for (const message of group.messages) {
      const caller = message?.headers ? callerSpanContext(message.headers) : undefined;
      if (caller) {
        callers ??= new Array(total);
        callers[index] = caller;
        const link: Link = { context: caller };
        if (multi) {
          const attributes: Attributes = {};
          addMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
          addPositionAttributes(attributes, message.partition, undefined);
          link.attributes = attributes;
        }
        links ??= [];
        links.push(link);
        own++;
      }
      index++;
    }
  }
  return { total, destination, contexts: callers, links, own };
}

/** The traced send once the caller's records are read: spans, header copies, the call. Never throws. */
function traceCallers(
  state: ProducerState,
  groups: readonly TopicMessages[],
  read: Callers,
  invoke: (groups: TopicMessages[]) => Promise<RecordMetadata[]>,
  invokeRaw: () => Promise<RecordMetadata[]>,
  transaction: Set<Operation> | undefined,
): Promise<RecordMetadata[]> {
  const { instr, settings } = state;
  const parent = contextApi.active();
  const { total, destination, own } = read;
  const callers = read.contexts;
  let links = read.links;
  const multi = total > 1;
  let index = 0;

  // Every span this call starts, so each ends even if copying the caller's data throws below.
  const started: Span[] = [];
  let creates: (Span | undefined)[] | undefined;
  let sendSpan: Span | undefined;
  let traced: TopicMessages[] | undefined;
  try {
    // Per-message create spans, only when asked for.
    if (multi && settings.createSpans && own < total) {
      creates = new Array(total);
      index = 0;
      for (const group of groups) {
        const template = state.templates.of('create').get(group.topic);
        for (const message of group.messages) {
          if (!callers?.[index]) {
            const span = startClientSpan(instr, template, parent);
            if (span) started.push(span);
            creates[index] = span;
            if (span?.isRecording()) {
              const attributes: Attributes = {};
              addMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
              addPositionAttributes(attributes, message?.partition, undefined);
              setSpanAttributes(span, attributes, instr.legacyAttributes);
              links ??= [];
              links.push({ context: span.spanContext() });
            }
          }
          index++;
        }
      }
    }

    const client = own === total || creates !== undefined;
    sendSpan = startClientSpan(
      instr,
      state.templates.of(client ? 'sendClient' : 'send').get(destination),
      parent,
      links ? { links } : undefined,
    );
    if (sendSpan) started.push(sendSpan);
    if (sendSpan?.isRecording()) {
      const attributes: Attributes = {};
      if (multi) attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = total;
      else {
        const only = groups.find((g) => g.messages.length > 0)?.messages[0];
        if (only) {
          addMessageAttributes(attributes, only, settings.captureKeys, instr.captureBodySize);
          addPositionAttributes(attributes, only.partition, undefined);
        }
      }
      setSpanAttributes(sendSpan, attributes, instr.legacyAttributes);
    }
    const sendContext = sendSpan ? trace.setSpan(parent, sendSpan) : parent;

    index = 0;
    const copyCreates = creates;
    traced = groups.map((group) => ({
      ...group,
      messages: group.messages.map((message): Message => {
        const i = index++;
        if (!message || typeof message !== 'object') return message;
        const caller = callers?.[i];
        const create = copyCreates?.[i];
        const context = create ? trace.setSpan(parent, create) : sendContext;
        const headers = sendHeaders(message.headers, context, caller);
        return headers === message.headers ? message : { ...message, headers: headers as IHeaders };
      }),
    }));
  } catch {
    // The caller's data threw while being copied (e.g. a throwing getter on a headers object): the
    // spans started so far still settle on the call, which gets the caller's own objects, so kafkajs
    // raises the same error it would without hoptrace.
    traced = undefined;
  }
  const call = traced ? () => invoke(traced) : invokeRaw;

  const spans: Span | Span[] | undefined =
    started.length === 0 ? undefined : started.length === 1 ? (started[0] as Span) : started;
  const operation = new Operation(
    instr,
    spans,
    metric(state, 'send', destination, total),
    transaction !== undefined,
  );
  const recording = started.some((span) => span.isRecording());
  const positions =
    recording && traced && (creates || !multi)
      ? (reply: RecordMetadata[]) => recordPositions(state, groups, reply, creates, sendSpan)
      : undefined;
  if (!transaction) return operation.run(call, positions);
  return operation.run(call, positions, false).then(
    (reply) => {
      if (transaction.size >= MAX_PENDING_TRANSACTION_SENDS) {
        const oldest = transaction.values().next().value as Operation;
        transaction.delete(oldest);
        endPending(new Set([oldest]), 'unknown');
      }
      transaction.add(operation);
      return reply;
    },
    (error: unknown) => {
      operation.end();
      throw error;
    },
  );
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
  creates: (Span | undefined)[] | undefined,
  sendSpan: Span | undefined,
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
      const span = creates ? creates[index] : sendSpan;
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
      if (!span?.isRecording()) continue;
      let offset: number | undefined;
      const base = entries?.find((e) => e.partition === partition)?.baseOffset;
      if (allKnown.get(group.topic) && base !== undefined) {
        const n = Number(base);
        if (Number.isSafeInteger(n) && n >= 0) offset = n + position;
      }
      const attributes: Attributes = {};
      addPositionAttributes(attributes, partition, offset);
      setSpanAttributes(span, attributes, state.instr.legacyAttributes);
    }
  }
}
