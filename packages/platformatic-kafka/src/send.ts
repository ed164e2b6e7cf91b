import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  addKafkaMessageAttributes,
  addKafkaPositionAttributes,
  callerSpanContext,
  copyWith,
  fieldCaseVariants,
  fieldsToAdd,
  holdTransactionalSend,
  injectContextUnchecked,
  messageLink,
  messagePositions,
  Operation,
  operationMetric,
  type PendingSends,
  type ProducedPartition,
  runTransactionalSend,
  sendHeaders,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import type { Attributes, Context, Link, Span, SpanContext } from '@opentelemetry/api';
import { context as contextApi, trace } from '@opentelemetry/api';
import type { ClientState } from './client-state.ts';
import {
  type EncodedHeaders,
  encodeHeaders,
  type HeaderEncodings,
  type HeaderInput,
  headerView,
  withHeaders,
} from './headers.ts';

/** A message as `send` takes it (only the fields hoptrace reads or copies). */
export interface OutgoingMessage {
  readonly topic?: unknown;
  readonly key?: unknown;
  readonly value?: unknown;
  readonly partition?: unknown;
  readonly headers?: HeaderInput;
}

/** The fields the client reads from send options and from a message to send. */
const SEND_FIELDS = [
  'acks',
  'compression',
  'partitioner',
  'idempotent',
  'autocreateTopics',
  'repeatOnStaleMetadata',
  'producerId',
  'producerEpoch',
] as const;
const MESSAGE_FIELDS = ['topic', 'key', 'value', 'partition', 'timestamp', 'metadata'] as const;

/** The send options as hoptrace sees them; every other field is passed on as the caller set it. */
interface SendInput {
  readonly messages: readonly OutgoingMessage[];
}

/** A client method as hoptrace calls it. */
export type RawSend = (...args: unknown[]) => unknown;

/** Everything a traced producer shares across its sends and transactions. */
export interface ProducerState extends ClientState {
  readonly encodings: HeaderEncodings;
  /** Sends of open transactions, ended as `unknown` when the producer closes first. */
  readonly transactions: Set<PendingSends>;
  /** Producer streams destroyed while holding send spans, waiting for a late acknowledgement. */
  readonly closingStreams: Set<{ drop(): void }>;
}

/**
 * The traced send: span, copy-on-write headers, the call (promise or callback), the reply's position.
 *
 * @param pending - the open transaction's sends, for a send on a transaction: its span then waits for
 * the transaction's outcome (see `holdTransactionalSend`).
 */
export function tracedSend(
  state: ProducerState,
  raw: RawSend,
  args: unknown[],
  pending?: PendingSends,
): unknown {
  const [input, callback] = args;
  const messages = (input as Partial<SendInput> | null | undefined)?.messages;
  // Input the client will reject anyway goes through untouched, so its own validation error surfaces.
  if (!Array.isArray(messages) || messages.some((m) => !m || typeof m !== 'object')) return raw(...args);
  const { instr } = state;
  const parent = contextApi.active();
  const total = messages.length;
  let destination: string | undefined;
  const views: (Record<string, unknown> | undefined)[] = new Array(total);
  const callers: (SpanContext | undefined)[] = new Array(total);
  let links: Link[] | undefined;
  try {
    const first = messages[0]?.topic;
    destination = typeof first === 'string' ? first : undefined;
    for (let i = 0; i < total; i++) {
      const message = messages[i] as OutgoingMessage;
      if (message.topic !== destination) destination = undefined;
      // The caller's own map: read whole (its context may sit past any cap meant for wire data).
      const view = headerView(message.headers);
      views[i] = view;
      const caller = view ? callerSpanContext(view) : undefined;
      if (caller) {
        callers[i] = caller;
        let link: Link = { context: caller };
        // A send of several messages is about none of them alone: each one's attributes go on its link.
        if (total > 1) {
          const attributes: Attributes = {};
          addSentMessageAttributes(attributes, state, message);
          link = messageLink(caller, attributes, instr.legacyAttributes);
        }
        links ??= [];
        links.push(link);
      }
    }
  } catch {
    // A message whose getters throw: untraced and untouched, so the client raises its own error.
    return raw(...args);
  }
  const creates =
    state.settings.createSpans && total > 1 && (links?.length ?? 0) < total
      ? createSpans(state, messages, callers, parent)
      : undefined;
  if (creates) {
    links ??= [];
    for (const create of creates) if (create?.isRecording()) links.push({ context: create.spanContext() });
  }
  // Every message carrying its own (or its create span's) context: the send span only links to them.
  const operationKey = creates || (total > 0 && links?.length === total) ? 'sendClient' : 'send';
  const template = state.templates.of(operationKey).get(destination);
  const span = startClientSpan(instr, template, parent, { links });
  if (span?.isRecording()) setSpanAttributes(span, sendAttributes(state, messages), instr.legacyAttributes);
  const sendContext = span ? trace.setSpan(parent, span) : parent;
  // The send span's context is injected and encoded once for every message of the call carrying it.
  let shared: EncodedHeaders | undefined | null = null;
  const sharedHeaders = () => {
    if (shared === null) shared = encodeHeaders(injectContextUnchecked(sendContext), state.encodings);
    return shared;
  };
  let traced: unknown;
  try {
    traced = copyWith(input as object, SEND_FIELDS, {
      messages: messages.map((message, i) => {
        const create = creates?.[i];
        if (create) return carrying(state, message, views[i], callers[i], trace.setSpan(parent, create));
        return carrying(state, message, views[i], callers[i], sendContext, sharedHeaders);
      }),
    });
  } catch {
    // A caller's object whose getters throw while it is copied: the client gets the input as it
    // is and raises its own error, and the spans started above settle with that outcome.
    traced = input;
  }
  const operation = new Operation(
    instr,
    creates ? [span, ...creates] : span,
    operationMetric(
      instr.metrics !== undefined,
      state.metrics,
      'send',
      'send',
      destination,
      total,
      undefined,
      state.info,
    ),
    // In a transaction the spans wait for its outcome, but the send's duration is the send's.
    pending !== undefined,
  );
  const placed = creates
    ? creates.some((create) => create?.isRecording())
    : total === 1 && span?.isRecording();
  const position = placed
    ? (reply: unknown) => recordPositions(state, messages, reply, creates, span)
    : undefined;
  if (typeof callback === 'function') {
    let answered = false;
    try {
      return raw(traced, function settled(this: unknown, error: unknown, reply: unknown) {
        answered = true;
        if (error === null || error === undefined) {
          position?.(reply);
          if (pending) {
            operation.settleOpen(false);
            holdTransactionalSend(pending, operation);
          } else {
            operation.end();
          }
        } else {
          operation.fail(error);
        }
        return (callback as RawSend).call(this, error, reply);
      });
    } catch (error) {
      // The client threw before answering (an answered send is settled already; what a callback
      // run synchronously throws is the caller's).
      if (!answered) operation.fail(error);
      throw error;
    }
  }
  return pending
    ? runTransactionalSend(pending, operation, () => raw(traced), position)
    : operation.run(() => raw(traced), position);
}

/**
 * `createSpans`: a `create {topic}` span per message that carries no context of its own, under
 * `parent` (siblings of the send span), with the message's attributes. Index-aligned with `messages`.
 */
function createSpans(
  state: ProducerState,
  messages: readonly OutgoingMessage[],
  callers: readonly (SpanContext | undefined)[],
  parent: Context,
): (Span | undefined)[] {
  const { instr } = state;
  return messages.map((message, i) => {
    if (callers[i]) return undefined;
    const topic = typeof message.topic === 'string' ? message.topic : undefined;
    const create = startClientSpan(instr, state.templates.of('create').get(topic), parent);
    if (create?.isRecording()) {
      const attributes: Attributes = {};
      addSentMessageAttributes(attributes, state, message);
      setSpanAttributes(create, attributes, instr.legacyAttributes);
    }
    return create;
  });
}

/** The send span's own attributes: the message's for a one-message send, the count for more. */
export function sendAttributes(state: ProducerState, messages: readonly OutgoingMessage[]): Attributes {
  const attributes: Attributes = {};
  const [only] = messages;
  if (messages.length !== 1 || !only) attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = messages.length;
  else addSentMessageAttributes(attributes, state, only);
  return attributes;
}

/**
 * A message's attributes as it is sent: key (opt-in), tombstone, body size; never the partition the
 * caller asked for, which the client maps onto the topic's partition count (partition 3 of a
 * 2-partition topic is written to partition 1): the partition comes from the reply (`recordPositions`).
 */
function addSentMessageAttributes(
  attributes: Attributes,
  state: ProducerState,
  message: OutgoingMessage,
): void {
  let sent: { key: unknown; value: unknown };
  try {
    sent = { key: message.key, value: message.value };
  } catch {
    return; // a caller's message whose getters throw: no message attributes, and nothing thrown
  }
  addKafkaMessageAttributes(attributes, sent, state.settings.captureKeys, state.instr.captureBodySize);
}

/**
 * The message as sent: the caller's own when nothing changes, else a copy with new headers. A message
 * without a context of its own gets `context`'s propagation fields where its headers lack them (never
 * overwriting one the caller set); one with its own keeps it (see `sendHeaders`).
 *
 * @param shared - `context`'s fields already injected and encoded for this call.
 */
export function carrying(
  state: ProducerState,
  message: OutgoingMessage,
  view: Record<string, unknown> | undefined,
  caller: SpanContext | undefined,
  context: Context,
  shared?: () => EncodedHeaders | undefined,
): OutgoingMessage {
  // Headers the client's hook throws on: the message as it is, so the client raises its own error.
  if (message.headers === null && state.encodings.refusesNull) return message;
  let encoded: EncodedHeaders | undefined;
  if (caller) {
    encoded = encodedChanges(state, view, sendHeaders(view, context, caller));
  } else {
    encoded = shared ? shared() : encodeHeaders(injectContextUnchecked(context), state.encodings);
    // A field the caller set (a malformed traceparent, their own baggage) stays as they sent it; one
    // spelled in another case (`Traceparent`) is left out, so no field travels twice.
    const add = encoded && fieldsToAdd(view, encoded.changes);
    const variants = encoded && fieldCaseVariants(view);
    if (add && (add !== encoded?.changes || variants))
      encoded = encodeHeaders(add, state.encodings, variants);
  }
  if (!encoded || (encoded.entries.length === 0 && !encoded.removed)) return message;
  return copyWith(message, MESSAGE_FIELDS, {
    headers: withHeaders(message.headers, encoded, state.encodings),
  });
}

/**
 * The text fields of `out` that differ from the caller's headers, encoded, and the caller's headers
 * `out` dropped (the stale trace fields `sendHeaders` leaves out when a spent hop budget restarted
 * the trace: kept, they would carry the old trace's hop count into the new one).
 */
function encodedChanges(
  state: ProducerState,
  view: Record<string, unknown> | undefined,
  out: Readonly<Record<string, unknown>>,
): EncodedHeaders | undefined {
  const changes: Record<string, string> = {};
  for (const name in out) {
    const value = out[name];
    if (typeof value === 'string' && value !== view?.[name]) changes[name] = value;
  }
  let removed: string[] | undefined;
  if (view && out !== view) {
    for (const name in view) {
      if (Object.hasOwn(out, name)) continue;
      removed ??= [];
      removed.push(name);
    }
  }
  return encodeHeaders(changes, state.encodings, removed);
}

/**
 * Puts the partition and offset of each message, from the client's reply (one base offset per
 * topic-partition), on its create span, or on the send span of a one-message send, as core's
 * `messagePositions` places them. Never throws.
 */
function recordPositions(
  state: ProducerState,
  messages: readonly OutgoingMessage[],
  reply: unknown,
  creates: readonly (Span | undefined)[] | undefined,
  span: Span | undefined,
): void {
  try {
    const offsets = (reply as { offsets?: unknown } | undefined)?.offsets;
    if (!Array.isArray(offsets)) return;
    const produced: ProducedPartition[] = [];
    for (const entry of offsets as { topic?: unknown; partition?: unknown; offset?: unknown }[]) {
      if (entry && typeof entry.topic === 'string' && typeof entry.partition === 'number')
        produced.push({ topic: entry.topic, partition: entry.partition, baseOffset: entry.offset });
    }
    const sent = messages.map((message) => ({ topic: message.topic, partition: message.partition }));
    messagePositions(sent, produced).forEach((position, i) => {
      const target = creates ? creates[i] : span;
      if (!position || !target?.isRecording()) return;
      const attributes: Attributes = {};
      addKafkaPositionAttributes(attributes, position.partition, position.offset);
      setSpanAttributes(target, attributes, state.instr.legacyAttributes);
    });
  } catch {
    // a caller's message whose getters throw now: no positions
  }
}
