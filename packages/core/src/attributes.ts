import type { Attributes, AttributeValue, Span } from '@opentelemetry/api';
import {
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_OPERATION_TYPE,
  LEGACY_ATTRIBUTE_NAMES,
} from './semconv.ts';

/**
 * Returns `attributes` plus, for each key that was renamed, the same value under its older name
 * (see {@link LEGACY_ATTRIBUTE_NAMES}): `messaging.operation` says `publish` where the newest
 * `messaging.operation.type` says `send`, and the old Kafka partition is an integer.
 */
export function withLegacyNames(attributes: Attributes): Attributes {
  const out: Attributes = { ...attributes };
  for (const key in attributes) {
    const legacy = LEGACY_ATTRIBUTE_NAMES[key];
    if (legacy !== undefined) out[legacy] = legacyValue(key, attributes[key]);
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
 * Sets attributes on a started span, with the older names too when `legacy` is on. Keys whose value
 * is `undefined` are skipped.
 */
export function setSpanAttributes(span: Span, attributes: Attributes, legacy = false): void {
  span.setAttributes(legacy ? withLegacyNames(attributes) : attributes);
}
