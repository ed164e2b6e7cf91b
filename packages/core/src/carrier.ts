import type { TextMapGetter, TextMapSetter } from '@opentelemetry/api';

/**
 * Any header map a broker client hands us. Values may be strings, Buffers, Uint8Arrays, arrays of
 * those (Kafka allows repeated headers), or any AMQP field value (numbers, booleans, nested tables).
 */
export type HeaderCarrier = Readonly<Record<string, unknown>> | null | undefined;

/**
 * Reads one header value as text: strings as they are, Buffers and Uint8Arrays decoded as latin1
 * (every byte maps to one character, so decoding never fails; non-ASCII bytes then fail the
 * propagator's own validation), arrays by their first textual element. Anything else is ignored.
 */
export function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return decodeLatin1(value);
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = headerText(item);
      if (text !== undefined) return text;
    }
  }
  return undefined;
}

const hasBuffer = typeof Buffer === 'function';
function decodeLatin1(bytes: Uint8Array): string {
  if (hasBuffer) {
    const buffer = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return buffer.toString('latin1');
  }
  return String.fromCharCode(...bytes);
}

/**
 * A getter for the OpenTelemetry propagation API over any {@link HeaderCarrier}. Header names are
 * case-sensitive, as on Kafka and AMQP; the propagators ask for the lowercase W3C and B3 names.
 * Never throws.
 */
export const headerGetter: TextMapGetter<HeaderCarrier> = {
  keys(carrier) {
    return carrier ? Object.keys(carrier) : [];
  },
  get(carrier, key) {
    if (!carrier) return undefined;
    const value = carrier[key];
    return value === undefined || value === null ? undefined : headerText(value);
  },
};

/** A setter that writes string values into a plain object owned by hoptrace. */
export const recordSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};
