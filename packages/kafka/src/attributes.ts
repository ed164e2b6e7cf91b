import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@hoptrace/core';
import type { Attributes } from '@opentelemetry/api';
import type { ClientInfo } from './client-info.ts';

/** The attribute hoptrace sets on a batch span: how many links it actually carries (after the cap). */
export const ATTR_HOPTRACE_BATCH_LINK_COUNT = 'hoptrace.batch.link_count';
/**
 * Set (`true`) on a per-message span of an `eachBatch` batch whose offset was not resolved when the
 * batch handler returned or threw (kafkajs did not record it as processed by the handler).
 */
export const ATTR_HOPTRACE_MESSAGE_UNRESOLVED = 'hoptrace.message.unresolved';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A message key as attribute text: strings as they are, Buffers only when they are valid UTF-8,
 * `null`/`undefined` and anything else never. Never throws.
 */
export function keyText(key: unknown): string | undefined {
  if (typeof key === 'string') return key;
  if (key instanceof Uint8Array) {
    try {
      return utf8.decode(key);
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

/** Adds the per-message attributes (key, tombstone, body size) a message carries to `out`. */
export function addMessageAttributes(
  out: Attributes,
  message: { key?: unknown; value: unknown },
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
  if (partition !== undefined) out[ATTR_MESSAGING_DESTINATION_PARTITION_ID] = String(partition);
  if (offset !== undefined) {
    const n = typeof offset === 'number' ? offset : Number(offset);
    if (Number.isSafeInteger(n)) out[ATTR_KAFKA_OFFSET] = n;
  }
}

/** Adds client id, server address/port and (consumers) group name, as far as they are known. */
export function addClientAttributes(out: Attributes, info: ClientInfo, withGroup: boolean): void {
  if (info.clientId !== undefined) out[ATTR_MESSAGING_CLIENT_ID] = info.clientId;
  if (info.serverAddress !== undefined) {
    out[ATTR_SERVER_ADDRESS] = info.serverAddress;
    if (info.serverPort !== undefined) out[ATTR_SERVER_PORT] = info.serverPort;
  }
  if (withGroup && info.groupId !== undefined) out[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = info.groupId;
}
