import type { Attributes, AttributeValue, Link, Span, SpanContext } from '@opentelemetry/api';
import {
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_OPERATION_TYPE,
  LEGACY_ATTRIBUTE_NAMES,
} from './semconv.ts';

/** String attribute values hoptrace records from traffic (keys, ids, routing keys) are cut to this length. */
export const MAX_ATTRIBUTE_VALUE_LENGTH = 256;

/**
 * Destination names (span names, `messaging.destination.name`, metric attributes) are cut to this
 * length. Longer than other values so every broker-bounded name stays whole (a Kafka topic has at
 * most 249 characters, RabbitMQ's `exchange:routing key:queue` at most 767), while a BullMQ queue
 * name, which may have any length, is bounded.
 */
export const MAX_DESTINATION_LENGTH = 1024;

/**
 * `value` cut to {@link MAX_ATTRIBUTE_VALUE_LENGTH} (or `max`) UTF-16 code units. A cut that would
 * split a surrogate pair (an emoji, any character past U+FFFF) ends before the pair instead, so a
 * capped value stays well-formed text: half a pair is no character, and exporters encode it as
 * U+FFFD or invalid UTF-8. Text that is ill-formed already is cut as it is.
 */
export function capValue(value: string, max = MAX_ATTRIBUTE_VALUE_LENGTH): string {
  if (value.length <= max) return value;
  const last = value.charCodeAt(max - 1);
  const next = value.charCodeAt(max);
  const splitsPair = last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
  return value.slice(0, splitsPair ? max - 1 : max);
}

/**
 * Returns `attributes` plus, for each key that was renamed, the same value under its older name
 * (see {@link LEGACY_ATTRIBUTE_NAMES}): `messaging.operation` says `publish` where the newest
 * `messaging.operation.type` says `send`, and the old Kafka partition is an integer.
 */
export function withLegacyNames(attributes: Attributes): Attributes {
  const out: Attributes = { ...attributes };
  for (const key in attributes) {
    const legacy = LEGACY_ATTRIBUTE_NAMES[key];
    if (legacy === undefined) continue;
    const value = legacyValue(key, attributes[key]);
    if (typeof legacy === 'string') out[legacy] = value;
    else for (const name of legacy) out[name] = value;
  }
  return out;
}

function legacyValue(key: string, value: AttributeValue | undefined): AttributeValue | undefined {
  if (key === ATTR_MESSAGING_OPERATION_TYPE && value === 'send') return 'publish';
  if (key === ATTR_MESSAGING_DESTINATION_PARTITION_ID && typeof value === 'string') {
    const n = Number(value);
    return Number.isInteger(n) ? n : value;
  }
  return value;
}

/**
 * Sets attributes on a started span, with the older names too when `legacy` is on; nothing at all
 * for a span that does not record. Keys whose value is `undefined` are skipped.
 */
export function setSpanAttributes(span: Span | undefined, attributes: Attributes, legacy = false): void {
  if (span === undefined || !span.isRecording()) return;
  span.setAttributes(legacy ? withLegacyNames(attributes) : attributes);
}

/**
 * A link from a span about several messages to one message's context, carrying that message's own
 * attributes (the conventions put per-message attributes on the links when the span is about more
 * than one message), with the older names too when `legacy` is on, as {@link setSpanAttributes}
 * sets them on a span about one message. An empty `attributes` gives a link without attributes.
 */
export function messageLink(context: SpanContext, attributes: Attributes, legacy = false): Link {
  for (const _ in attributes)
    return { context, attributes: legacy ? withLegacyNames(attributes) : attributes };
  return { context };
}
