import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  addKafkaMessageAttributes,
  callerSpanContext,
  copyWith,
  injectContextUnchecked,
  messageLink,
  messagePositions,
  Operation,
  type PendingSends,
  type ProducedPartition,
  propagatorFields,
  runTransactionalSend,
  sendHeaders,
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
  Producer,
  ProducerBatch,
  ProducerRecord,
  RecordMetadata,
  TopicMessages,
} from 'kafkajs';
import { setMessageAttributes } from './attributes.ts';
import { type ProducerState, producerMetric } from './producer-state.ts';

/**
 * The fields kafkajs reads (destructures) from a record, a batch and a batch's topic group: a copy
 * keeps them even when they are getters. Messages are spread by kafkajs itself, so their copies are too.
 */
const RECORD_FIELDS = ['topic', 'acks', 'timeout', 'compression'] as const;
const BATCH_FIELDS = ['acks', 'timeout', 'compression'] as const;
const GROUP_FIELDS = ['topic'] as const;

/**
 * The fields of a message kafkajs reads directly (validation, partitioner, timestamps), so they count
 * even when inherited (getters of a class instance) or not enumerable. kafkajs encodes a record from a
 * spread of the message, which keeps own enumerable fields only: a `value` kafkajs read through a
 * getter is written as null (see {@link copyMessage}).
 */
const MESSAGE_READ_FIELDS = ['key', 'value', 'partition', 'timestamp'] as const;

/**
 * The headers kafkajs writes for a message: its own enumerable `headers` (kafkajs encodes a spread of
 * the message, so inherited or non-enumerable headers are never sent).
 */
function writtenHeaders(message: Message): IHeaders | undefined {
  return Object.prototype.propertyIsEnumerable.call(message, 'headers') ? message.headers : undefined;
}

/**
 * Whether kafkajs's encoder rejects `headers` with a TypeError: a `null` map (it lists its keys), or
 * a value, or an element of an array value, that is not a string or bytes (it measures each with
 * `Buffer.byteLength`, so `null`, `undefined`, a number throw). Such a message goes to kafkajs as the
 * caller wrote it: the copy hoptrace sends would otherwise fill a propagation field given as
 * `null`/`undefined`, or leave out one spelled in another case, and turn that TypeError into a
 * send that succeeds. Never throws (a map it cannot read counts as not rejected: the copy meets it).
 */
function rejectedByEncoder(headers: IHeaders | null | undefined): boolean {
  if (headers === null) return true;
  if (!headers || typeof headers !== 'object') return false;
  try {
    for (const key of Object.keys(headers)) {
      const value: unknown = headers[key];
      if (Array.isArray(value)) {
        for (const element of value) if (!isHeaderBytes(element)) return true;
      } else if (!isHeaderBytes(value)) return true;
    }
  } catch {
    return false;
  }
  return false;
}

/** Whether kafkajs can measure `value` as a header value (what `Buffer.byteLength` accepts). */
function isHeaderBytes(value: unknown): boolean {
  if (typeof value === 'string' || Buffer.isBuffer(value)) return true;
  if (value === null || value === undefined || typeof value !== 'object') return false;
  try {
    Buffer.byteLength(value as ArrayBuffer);
    return true;
  } catch {
    return false;
  }
}

/**
 * `headers` without the propagation `fields` it gives as an empty array: kafkajs writes no header for
 * an empty array, so such a field carries nothing and the message still needs the send's context
 * (core's `sendHeaders` would take it for a field the caller set, and never overwrite it). The same
 * object when there is none (the usual case); otherwise a copy that goes out byte for byte the same.
 */
function withoutEmptyFields(headers: IHeaders | undefined, fields: readonly unknown[]): IHeaders | undefined {
  if (!headers) return headers;
  let out: IHeaders | undefined;
  for (const field of fields) {
    if (typeof field !== 'string') continue;
    const value = headers[field];
    if (Array.isArray(value) && value.length === 0) {
      out ??= { ...headers };
      delete out[field];
    }
  }
  return out ?? headers;
}

/**
 * Stands for the value of a message kafkajs refuses for having none (`value` undefined: "Invalid
 * message without value"): nothing is written, so its spans say neither tombstone nor body size.
 */
const REFUSED_VALUE: unknown = Object.freeze({});

/**
 * The key and value kafkajs writes for `message`, for its attributes: kafkajs encodes a spread of the
 * message, so a key or value the message does not own as an enumerable field (a class's getter) goes
 * out as null, whatever kafkajs read through it before (the value then makes a tombstone). A message
 * whose `value` reads undefined is refused before anything is written ({@link REFUSED_VALUE}).
 */
function written(message: Message | undefined): { key: unknown; value: unknown } | undefined {
  if (!message || typeof message !== 'object') return undefined;
  try {
    return {
      key: Object.prototype.propertyIsEnumerable.call(message, 'key') ? message.key : null,
      value:
        message.value === undefined
          ? REFUSED_VALUE
          : Object.prototype.propertyIsEnumerable.call(message, 'value')
            ? message.value
            : null,
    };
  } catch {
    return undefined; // an own getter that throws: kafkajs meets it too
  }
}

/**
 * A copy of `message` with `headers` that kafkajs treats exactly as the caller's message: the spread
 * (what kafkajs encodes) plus, not enumerable, the fields kafkajs reads directly that the spread
 * misses (inherited getters, non-enumerable fields), so a class-instance message is validated,
 * partitioned and encoded as without hoptrace (a plain spread would lose `value` before kafkajs's
 * validation and turn a send kafkajs accepts into "Invalid message without value").
 */
function copyMessage(message: Message, headers: IHeaders): Message {
  const copy: Message = { ...message, headers };
  for (const field of MESSAGE_READ_FIELDS) {
    if (!Object.hasOwn(copy, field) && field in message) {
      Object.defineProperty(copy, field, { value: message[field], writable: true, configurable: true });
    }
  }
  return copy;
}

/** What sends: a producer or a transaction. */
export type Sender = Pick<Producer, 'send' | 'sendBatch'>;

/**
 * A traced `send` (on a producer or a transaction; `transaction` holds the open sends of one). Input
 * kafkajs will reject goes to it untouched.
 */
export function tracedSend(
  state: ProducerState,
  sender: Sender,
  record: ProducerRecord,
  transaction: PendingSends | undefined,
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
    (groups) => {
      let copy: ProducerRecord;
      try {
        copy = copyWith(record, RECORD_FIELDS, { messages: (groups[0] as TopicMessages).messages });
      } catch {
        return sender.send(record); // a getter that throws: kafkajs reads the caller's record itself
      }
      return sender.send(copy);
    },
    () => sender.send(record),
    transaction,
  );
}

/** A traced `sendBatch`, like {@link tracedSend}. */
export function tracedSendBatch(
  state: ProducerState,
  sender: Sender,
  batch: ProducerBatch,
  transaction: PendingSends | undefined,
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
    (traced) => {
      let copy: ProducerBatch;
      try {
        copy = copyWith(batch, BATCH_FIELDS, { topicMessages: traced });
      } catch {
        return sender.sendBatch(batch); // a getter that throws: kafkajs reads the caller's batch itself
      }
      return sender.sendBatch(copy);
    },
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
  transaction: PendingSends | undefined,
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
      const written = message ? writtenHeaders(message) : undefined;
      const caller = written ? callerSpanContext(written) : undefined;
      if (caller) {
        callers ??= new Array(total);
        callers[index] = caller;
        let link: Link = { context: caller };
        if (multi) {
          const attributes: Attributes = {};
          addKafkaMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
          link = messageLink(caller, attributes, instr.legacyAttributes);
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
  transaction: PendingSends | undefined,
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
              setMessageAttributes(
                span,
                instr,
                settings.captureKeys,
                written(message),
                message?.partition,
                undefined,
              );
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
      // About one message: its attributes; about several: their count.
      const only = multi ? undefined : groups.find((g) => g.messages.length > 0)?.messages[0];
      const base: Attributes = multi ? { [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: total } : {};
      setMessageAttributes(
        sendSpan,
        instr,
        settings.captureKeys,
        written(only),
        only?.partition,
        undefined,
        base,
      );
    }
    const sendContext = sendSpan ? trace.setSpan(parent, sendSpan) : parent;
    // Injected once for every message that carries the send span's context.
    let shared: Record<string, string> | undefined;

    index = 0;
    const copyCreates = creates;
    // The propagator's fields, read once per call and only when a message has headers of its own.
    let fields: readonly unknown[] | undefined;
    traced = groups.map((group) =>
      copyWith(group, GROUP_FIELDS, {
        messages: group.messages.map((message): Message => {
          const i = index++;
          if (!message || typeof message !== 'object') return message;
          // kafkajs refuses the call over a message without value and quotes it (as JSON) in its
          // error: it gets the message as written, so its error says what the caller sent.
          if (message.value === undefined) return message;
          const caller = callers?.[i];
          const create = copyCreates?.[i];
          const context = create ? trace.setSpan(parent, create) : sendContext;
          if (!create && !caller) shared ??= injectContextUnchecked(sendContext);
          const injected = create || caller ? undefined : shared;
          const written = writtenHeaders(message);
          // kafkajs fails the call on this message: it gets it as written, and raises its own TypeError.
          if (rejectedByEncoder(written)) return message;
          if (written && fields === undefined) fields = propagatorFields();
          const headers = sendHeaders(
            written && fields ? withoutEmptyFields(written, fields) : written,
            context,
            caller,
            injected,
          );
          return headers === written ? message : copyMessage(message, headers as IHeaders);
        }),
      }),
    );
  } catch {
    // The caller's data threw while being copied (e.g. a throwing getter on a headers object): the
    // spans started so far still settle on the call, which gets the caller's own objects, so kafkajs
    // raises the same error it would without hoptrace.
    traced = undefined;
  }
  // Started before the producer's first request event (wrapped after connect()): they get the client
  // id and server it tells, as it comes while they are open (this call's own requests). Once known,
  // nothing to do.
  state.info.completeWhenLearned(started);
  const recording = started.some((span) => span.isRecording());
  // Nothing records and no metrics (the unsampled fast path, or a sampler that drops the send): no
  // operation and no promise chain to settle; a span that does not record is ended at once (a no-op
  // for the SDK's). In a transaction its outcome is still awaited, as for a recording one.
  if (!recording && !instr.metrics && !transaction) {
    for (const span of started) span.end();
    return traced ? invoke(traced) : invokeRaw();
  }
  const call = traced ? () => invoke(traced) : invokeRaw;

  const spans: Span | Span[] | undefined =
    started.length === 0 ? undefined : started.length === 1 ? (started[0] as Span) : started;
  const operation = new Operation(
    instr,
    spans,
    producerMetric(state, 'send', destination, total),
    transaction !== undefined,
  );
  const positions =
    recording && traced && (creates || !multi)
      ? (reply: RecordMetadata[]) => recordPositions(state, groups, reply, creates, sendSpan)
      : undefined;
  if (!transaction) return operation.run(call, positions);
  return runTransactionalSend(transaction, operation, call, positions);
}

/**
 * Puts partition and offset from kafkajs's reply on the create spans (or the send span for a single
 * message), as core's `messagePositions` places them. Never throws.
 */
function recordPositions(
  state: ProducerState,
  groups: readonly TopicMessages[],
  reply: RecordMetadata[],
  creates: (Span | undefined)[] | undefined,
  sendSpan: Span | undefined,
): void {
  if (!Array.isArray(reply)) return;
  const produced: ProducedPartition[] = [];
  for (const entry of reply) {
    if (entry && typeof entry.topicName === 'string' && typeof entry.partition === 'number')
      produced.push({ topic: entry.topicName, partition: entry.partition, baseOffset: entry.baseOffset });
  }
  const sent: { topic: string; partition: unknown }[] = [];
  for (const group of groups) {
    for (const message of group.messages) sent.push({ topic: group.topic, partition: message?.partition });
  }
  messagePositions(sent, produced).forEach((position, i) => {
    const span = creates ? creates[i] : sendSpan;
    if (position && span?.isRecording())
      setMessageAttributes(span, state.instr, false, undefined, position.partition, position.offset);
  });
}
