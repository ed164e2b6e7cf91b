import type { Attributes } from '@opentelemetry/api';
import { capValue } from './attributes.ts';
import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
} from './semconv.ts';

/**
 * Set (`true`) on a Kafka process span that ended before its message was processed: a kafkajs
 * `eachBatch` message whose offset was not resolved when the batch handler returned or threw
 * (kafkajs did not record it as processed, or a `consumer.seek` made the batch stale), or a
 * @platformatic/kafka message whose span was still open when its stream or consumer closed.
 */
export const ATTR_HOPTRACE_MESSAGE_UNRESOLVED = 'hoptrace.message.unresolved';

/** Buffer keys longer than this (bytes) are never decoded for an attribute. */
const MAX_DECODED_KEY_BYTES = 1024;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

function utf8Length(text: string): number {
  return typeof Buffer === 'function' ? Buffer.byteLength(text) : utf8.encode(text).byteLength;
}

/** What {@link addKafkaMessageAttributes} reads from a Kafka message (sent or received), whatever the client. */
export interface KafkaMessageFields {
  readonly key?: unknown;
  /**
   * The value: `null` or `undefined` is a tombstone (both clients send either as a null value, and
   * @platformatic/kafka hands a null value out as `undefined`).
   */
  readonly value?: unknown;
  /** A partition number. */
  readonly partition?: unknown;
  /** An offset as a number, a decimal string or a bigint. */
  readonly offset?: unknown;
}

/**
 * Adds a Kafka message's attributes to `out`, the same for every Kafka client: partition (as a
 * string) and `kafka.offset` (a safe integer) when known, `kafka.message.key` when `captureKeys`
 * (strings, and Buffers of valid UTF-8 up to 1 KB; cut to 256 characters), the tombstone flag for a
 * `null` or `undefined` value, and the value's byte size when `captureBodySize`. Only for a message
 * (sent or received); a reply's position alone goes through {@link addKafkaPositionAttributes}.
 * Never throws.
 */
export function addKafkaMessageAttributes(
  out: Attributes,
  message: KafkaMessageFields,
  captureKeys: boolean,
  captureBodySize: boolean,
): void {
  let key: unknown;
  let value: unknown;
  let partition: unknown;
  let offset: unknown;
  try {
    ({ key, value, partition, offset } = message);
  } catch {
    return; // a caller's message whose getters throw: no message attributes, and nothing thrown
  }
  addKafkaPositionAttributes(out, partition, offset);
  if (captureKeys) {
    if (typeof key === 'string') out[ATTR_KAFKA_MESSAGE_KEY] = capValue(key);
    else if (key instanceof Uint8Array && key.byteLength <= MAX_DECODED_KEY_BYTES) {
      try {
        out[ATTR_KAFKA_MESSAGE_KEY] = capValue(strictUtf8.decode(key));
      } catch {
        // not UTF-8: left out
      }
    }
  }
  if (value === null || value === undefined) out[ATTR_KAFKA_MESSAGE_TOMBSTONE] = true;
  else if (captureBodySize) {
    if (value instanceof Uint8Array) out[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = value.byteLength;
    else if (typeof value === 'string') out[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = utf8Length(value);
  }
}

/**
 * Adds a position's attributes to `out`: the partition (as a string) and `kafka.offset` (a safe
 * integer), each when known. For what a send's reply says, or a batch's partition. Never throws.
 *
 * @param partition - a partition number.
 * @param offset - an offset as a number, a decimal string or a bigint.
 */
export function addKafkaPositionAttributes(out: Attributes, partition: unknown, offset: unknown): void {
  if (typeof partition === 'number' && Number.isInteger(partition)) {
    out[ATTR_MESSAGING_DESTINATION_PARTITION_ID] = String(partition);
  }
  if (offset !== undefined && offset !== null && offset !== '') {
    const n = typeof offset === 'bigint' || typeof offset === 'string' ? Number(offset) : offset;
    if (Number.isSafeInteger(n) && (n as number) >= 0) out[ATTR_KAFKA_OFFSET] = n as number;
  }
}

/** One topic-partition of a produce reply: the offset of the first message this send appended there. */
export interface ProducedPartition {
  readonly topic: string;
  readonly partition: number;
  /** A number, a decimal string or a bigint, as the client replied. */
  readonly baseOffset: unknown;
}

/** Where one sent message landed, as far as a produce reply tells. */
export interface MessagePosition {
  readonly partition: number;
  /** Left out when the reply cannot place the message exactly. */
  readonly offset?: number;
}

/**
 * Where each message of one send landed (index-aligned with `messages`, in the order they were
 * handed to the client), from the client's reply of one base offset per topic-partition. Messages
 * keep their order within a partition, so a message's offset is its partition's base plus its index
 * there. A message's partition is known when the caller fixed one that the reply names, or when the
 * reply names a single partition of its topic; offsets of a topic are given only when every message
 * of that topic has a known partition (a partition the caller fixed that the reply does not name, as
 * when a client maps it onto the topic's partition count, leaves the whole topic without offsets).
 * Never throws.
 */
export function messagePositions(
  messages: readonly { readonly topic: unknown; readonly partition: unknown }[],
  reply: readonly ProducedPartition[],
): (MessagePosition | undefined)[] {
  const byTopic = new Map<string, ProducedPartition[]>();
  for (const entry of reply) {
    const list = byTopic.get(entry.topic);
    if (list) list.push(entry);
    else byTopic.set(entry.topic, [entry]);
  }
  const partitions = messages.map(({ topic, partition }) => {
    const entries = typeof topic === 'string' ? byTopic.get(topic) : undefined;
    if (!entries) return undefined;
    if (entries.length === 1) return (entries[0] as ProducedPartition).partition;
    return typeof partition === 'number' && entries.some((e) => e.partition === partition)
      ? partition
      : undefined;
  });
  const incomplete = new Set<unknown>();
  messages.forEach(({ topic }, i) => {
    if (partitions[i] === undefined) incomplete.add(topic);
  });
  const seen = new Map<string, number>();
  return messages.map(({ topic }, i) => {
    const partition = partitions[i];
    if (partition === undefined) return undefined;
    const key = `${topic as string}\u0000${partition}`;
    const index = seen.get(key) ?? 0;
    seen.set(key, index + 1);
    if (incomplete.has(topic)) return { partition };
    const base = byTopic.get(topic as string)?.find((e) => e.partition === partition)?.baseOffset;
    const n = typeof base === 'bigint' || typeof base === 'string' ? Number(base) : base;
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
      ? { partition, offset: n + index }
      : { partition };
  });
}
