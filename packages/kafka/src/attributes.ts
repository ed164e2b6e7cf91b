import {
  addKafkaMessageAttributes,
  addKafkaPositionAttributes,
  type Instrumentation,
  messageLink,
  setSpanAttributes,
} from '@hoptrace/core/adapter';
import type { Attributes, Link, Span, SpanContext } from '@opentelemetry/api';

/** The attribute hoptrace sets on a batch span: how many links it actually carries (after the cap). */
export const ATTR_HOPTRACE_BATCH_LINK_COUNT = 'hoptrace.batch.link_count';
export {
  ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME,
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  ERROR_TRANSACTION_ABORTED,
} from '@hoptrace/core/adapter';

/**
 * Sets what hoptrace records about one message on a recording span: `base` (a fresh object, filled
 * in here), the partition and offset when known, and for `message` its key (with `captureKeys`),
 * tombstone and body size (with `captureBodySize`); older names too with `legacyAttributes`.
 * Without a `message` (a reply's or a batch's position), only the partition and offset.
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
  if (message === undefined || message === null) addKafkaPositionAttributes(base, partition, offset);
  else {
    addKafkaMessageAttributes(
      base,
      { key: message.key, value: message.value, partition, offset },
      captureKeys,
      instr.captureBodySize,
    );
  }
  setSpanAttributes(span, base, instr.legacyAttributes);
}

/**
 * The link from a batch span to one message's creation context, carrying what a span about that
 * message alone records of it: its offset, key (with `captureKeys`), tombstone and body size (with
 * `captureBodySize`); older names too with `legacyAttributes`. Not the partition: a batch is one
 * partition, on the span.
 */
export function batchMessageLink(
  instr: Instrumentation,
  captureKeys: boolean,
  context: SpanContext,
  message: { key?: unknown; value?: unknown; offset?: unknown },
): Link {
  const attributes: Attributes = {};
  // kafkajs's batch messages have no `partition` field: nothing of the partition is read here.
  addKafkaMessageAttributes(attributes, message, captureKeys, instr.captureBodySize);
  return messageLink(context, attributes, instr.legacyAttributes);
}
