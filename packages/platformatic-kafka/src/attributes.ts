import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  capValue,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';

/** The attribute hoptrace sets on a batch span: how many links it actually carries (after the cap). */
export const ATTR_HOPTRACE_BATCH_LINK_COUNT = 'hoptrace.batch.link_count';
/** Set (`true`) on a per-message process span that `maxProcessingMs` ended. */
export const ATTR_HOPTRACE_PROCESS_TIMED_OUT = 'hoptrace.process.timed_out';

/** Buffer keys longer than this are never decoded for an attribute. */
const MAX_DECODED_KEY_BYTES = 1024;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** What the attribute helpers read from a message (sent or received). */
export interface MessageFields {
  readonly key?: unknown;
  readonly value?: unknown;
  readonly partition?: unknown;
  readonly offset?: unknown;
}

/**
 * Per-message attributes into `out`: partition (string) and offset (integer) when known, the key
 * when opted in (strings, and Buffers of valid UTF-8 up to 1 KB; cut to 256 characters), the
 * tombstone flag for a `null` value, the value's byte size when opted in. Never throws.
 */
export function addMessageAttributes(
  out: Attributes,
  message: MessageFields,
  captureKeys: boolean,
  captureBodySize: boolean,
): void {
  const { key, value, partition, offset } = message;
  if (typeof partition === 'number' && Number.isInteger(partition)) {
    out[ATTR_MESSAGING_DESTINATION_PARTITION_ID] = String(partition);
  }
  if (typeof offset === 'bigint' && offset <= BigInt(Number.MAX_SAFE_INTEGER) && offset >= 0n) {
    out[ATTR_KAFKA_OFFSET] = Number(offset);
  }
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
  if (value === null) {
    out[ATTR_KAFKA_MESSAGE_TOMBSTONE] = true;
    return;
  }
  if (!captureBodySize) return;
  if (value instanceof Uint8Array) out[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = value.byteLength;
  else if (typeof value === 'string') out[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = Buffer.byteLength(value);
}
