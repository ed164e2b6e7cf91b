import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  capValue,
  type Instrumentation,
  setSpanAttributes,
} from '@hoptrace/core/adapter';
import type { Attributes, Span } from '@opentelemetry/api';

/** The attribute hoptrace sets on a batch span: how many links it actually carries (after the cap). */
export const ATTR_HOPTRACE_BATCH_LINK_COUNT = 'hoptrace.batch.link_count';
/**
 * Set (`true`) on a per-message span of an `eachBatch` batch whose offset was not resolved when the
 * batch handler returned or threw (kafkajs did not record it as processed by the handler).
 */
export const ATTR_HOPTRACE_MESSAGE_UNRESOLVED = 'hoptrace.message.unresolved';
/**
 * On a send span inside a transaction: `committed` or `aborted` once the transaction ends (an
 * aborted message is never delivered to read-committed consumers), `unknown` when the producer
 * disconnected first.
 */
export const ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME = 'hoptrace.kafka.transaction.outcome';
/** `error.type` of a send span whose transaction was aborted. */
export const ERROR_TRANSACTION_ABORTED = 'transaction_aborted';

/** Keys longer than this (in bytes) are never decoded for an attribute. */
const MAX_KEY_BYTES = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A message key as attribute text, cut to 256 characters: strings as they are, Buffers only when
 * they are valid UTF-8 (and not longer than 1 KB, so a huge key is never decoded), `null`,
 * `undefined` and anything else never. Never throws.
 */
export function keyText(key: unknown): string | undefined {
  if (typeof key === 'string') return capValue(key);
  if (key instanceof Uint8Array) {
    if (key.byteLength > MAX_KEY_BYTES) return undefined;
    try {
      return capValue(utf8.decode(key));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The byte size of a message value (`undefined` when absent). */
export function bodySize(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (value instanceof Uint8Array) return value.byteLength;
  return undefined;
}

/** Adds the per-message attributes (key when opted in, tombstone, body size when opted in) to `out`. */
export function addMessageAttributes(
  out: Attributes,
  message: { key?: unknown; value?: unknown },
  captureKeys: boolean,
  captureBodySize: boolean,
): void {
  if (captureKeys && message.key !== null && message.key !== undefined) {
    const key = keyText(message.key);
    if (key !== undefined) out[ATTR_KAFKA_MESSAGE_KEY] = key;
  }
  if (message.value === null) out[ATTR_KAFKA_MESSAGE_TOMBSTONE] = true;
  else if (captureBodySize) {
    const size = bodySize(message.value);
    if (size !== undefined) out[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = size;
  }
}

/** Adds partition (as a string) and offset (as an integer) when known. */
export function addPositionAttributes(
  out: Attributes,
  partition: number | undefined,
  offset: number | string | undefined,
): void {
  if (typeof partition === 'number') out[ATTR_MESSAGING_DESTINATION_PARTITION_ID] = String(partition);
  if (offset !== undefined) {
    const n = typeof offset === 'number' ? offset : Number(offset);
    if (Number.isSafeInteger(n)) out[ATTR_KAFKA_OFFSET] = n;
  }
}

/**
 * Sets what hoptrace records about one message on a recording span: `base` (a fresh object, filled
 * in here), the partition and offset when known, and for `message` its key (with `captureKeys`),
 * tombstone and body size (with `captureBodySize`); older names too with `legacyAttributes`.
 */
export function setMessageAttributes(
  span: Span,
  instr: Instrumentation,
  captureKeys: boolean,
  message: { key?: unknown; value?: unknown } | undefined,
  partition: number | undefined,
  offset: number | string | undefined,
  base: Attributes = {},
): void {
  addPositionAttributes(base, partition, offset);
  if (message) addMessageAttributes(base, message, captureKeys, instr.captureBodySize);
  setSpanAttributes(span, base, instr.legacyAttributes);
}
