import { headerName, mapHeaderView } from '@hoptrace/core/adapter';
import { diag } from '@opentelemetry/api';
import { clientOptions } from './client-options.ts';

/** Header maps @platformatic/kafka takes on send (`Map` or record) and hands out on receive (`Map`). */
export type HeaderInput = ReadonlyMap<unknown, unknown> | Readonly<Record<string, unknown>>;

/**
 * A plain view of a message's headers keyed by text, for core's propagation and lineage readers:
 * a record's own enumerable string-keyed entries (what the client sends, through `Object.entries`:
 * an inherited or non-enumerable `traceparent` is not on the wire, so it is not the caller's
 * context), a `Map` through core's `mapHeaderView` (string keys as they are, Buffer keys
 * decoded, other or over-long keys skipped; values as they are: core decodes strings and Buffers and
 * refuses oversized ones). `undefined` for no headers or a record whose getters throw. Never throws;
 * never touches the caller's map. Every entry is read, received or outgoing, so a context anywhere
 * in the headers is found.
 */
export function headerView(headers: unknown): Record<string, unknown> | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  if (headers instanceof Map) return mapHeaderView(headers);
  try {
    const view: Record<string, unknown> = Object.create(null);
    for (const name of Object.keys(headers)) view[name] = (headers as Record<string, unknown>)[name];
    return view;
  } catch {
    return undefined; // a getter that throws: the client raises its own error when it reads them
  }
}

/**
 * How propagation headers must be written for a producer's header serializers: as strings (the
 * serializers turn a string into its UTF-8 bytes, e.g. `stringSerializers`), as Buffers (they pass
 * Buffers through, the default), or not at all (any other serializer would put other bytes on the
 * wire than the standard ones).
 */
export type HeaderEncoding = 'string' | 'buffer' | 'none';

/** One probed serializer per header part. */
export interface HeaderEncodings {
  readonly key: HeaderEncoding;
  readonly value: HeaderEncoding;
  /**
   * The producer runs a `beforeSerialization` hook (its own or a schema `registry`'s): it then throws
   * on a message whose `headers` is `null` (it reads them with `Object.entries`), so such a message is
   * passed on as it is, to fail as it does without hoptrace.
   */
  readonly refusesNull?: boolean;
}

const PROBE = 'traceparent';

/** Probes one serializer once (guarded: a serializer that throws counts as unusable). */
function probe(serializer: unknown): HeaderEncoding {
  if (serializer === undefined) return 'buffer';
  if (typeof serializer !== 'function') return 'none';
  try {
    const fromString: unknown = serializer(PROBE, undefined);
    if (Buffer.isBuffer(fromString) && fromString.toString('latin1') === PROBE) return 'string';
    const bytes = Buffer.from(PROBE, 'latin1');
    const fromBuffer: unknown = serializer(bytes, undefined);
    if (Buffer.isBuffer(fromBuffer) && fromBuffer.equals(bytes)) return 'buffer';
  } catch {
    // fall through: not a serializer we can write standard headers through
  }
  return 'none';
}

/**
 * How a producer's header serializers want propagation headers written, probed once at wrap time
 * from the client's options (read through its own `plt.kafka.base.options` symbol; a client without
 * it is taken to use the default, pass-through serializers), and whether it runs a
 * `beforeSerialization` hook. Warns once when headers cannot be written (the send spans are still
 * made, but the context does not travel).
 */
export function producerHeaderEncodings(client: object): HeaderEncodings {
  let serializers: { headerKey?: unknown; headerValue?: unknown } | undefined;
  let refusesNull = false;
  try {
    const options = clientOptions(client);
    serializers = options?.serializers as typeof serializers;
    refusesNull = Boolean(options?.beforeSerialization || options?.registry);
  } catch {
    serializers = undefined;
  }
  const encodings = {
    key: probe(serializers?.headerKey),
    value: probe(serializers?.headerValue),
    refusesNull,
  };
  if (encodings.key === 'none' || encodings.value === 'none') {
    diag.warn(
      'hoptrace: this producer serializes header keys or values in a way hoptrace cannot write standard propagation headers through; its messages will not carry their trace context',
    );
  }
  return encodings;
}

/**
 * A header name or value as the serializers take it: as Buffers, its UTF-8 bytes, as the string
 * serializers, kafkajs and every reader (hoptrace's `headerText` included) encode and decode header
 * text. Not Latin-1: W3C and B3 fields are ASCII, but a propagator may write other text (OT trace's
 * `ot-baggage-<key>` values take any character up to U+00FF as they are; Jaeger's `uberctx-<key>`
 * names carry the baggage key), which Latin-1 bytes turned into U+FFFD on the way.
 */
function encode(text: string, encoding: HeaderEncoding): string | Buffer {
  return encoding === 'buffer' ? Buffer.from(text, 'utf8') : text;
}

/**
 * Propagation headers encoded once for a producer's serializers, to be added to any number of
 * messages of one send (they share the encoded names and values: the client only reads them).
 */
export interface EncodedHeaders {
  /** The headers as text, by name. */
  readonly changes: Readonly<Record<string, string>>;
  /** Each header's encoded name and value. */
  readonly entries: readonly { readonly name: string; readonly key: unknown; readonly value: unknown }[];
  /** Names of the caller's headers to leave out of the copy (stale trace fields of a restarted trace). */
  readonly removed?: readonly string[];
}

/**
 * Encodes `changes` through `encodings`; `undefined` when the encodings cannot carry headers (the
 * caller's headers are then sent as they are).
 */
export function encodeHeaders(
  changes: Readonly<Record<string, string>>,
  encodings: HeaderEncodings,
  removed?: readonly string[],
): EncodedHeaders | undefined {
  if (encodings.key === 'none' || encodings.value === 'none') return undefined;
  const entries: { name: string; key: unknown; value: unknown }[] = [];
  for (const name in changes) {
    entries.push({
      name,
      key: encode(name, encodings.key),
      value: encode(changes[name] as string, encodings.value),
    });
  }
  return removed && removed.length > 0 ? { changes, entries, removed } : { changes, entries };
}

/**
 * Whether the client writes any header of `headers`: it writes none for a falsy value and reads a
 * record through `Object.entries` (own enumerable string keys).
 */
function hasRecordEntries(headers: unknown): boolean {
  return typeof headers === 'object' && headers !== null && Object.keys(headers).length > 0;
}

/**
 * A copy of the caller's headers (same shape: `Map` stays a `Map`, a record stays a record) with the
 * encoded headers written in, replacing any entry of the same name. The caller's object is never
 * written to. With Buffer header names (the default serializers), headers the client writes none
 * of (`undefined`, `null`, an empty record) become a `Map`: a record can only have string names,
 * which those serializers cannot write.
 */
export function withHeaders(
  headers: HeaderInput | null | undefined,
  encoded: EncodedHeaders,
  encodings: HeaderEncodings,
): HeaderInput {
  if (headers instanceof Map || (encodings.key === 'buffer' && !hasRecordEntries(headers))) {
    const out = new Map<unknown, unknown>();
    if (headers instanceof Map) {
      for (const [key, value] of headers) {
        const name = headerName(key);
        // own fields only: a header named `constructor` or `__proto__` is not one hoptrace writes
        if (
          name === undefined ||
          !(Object.hasOwn(encoded.changes, name) || encoded.removed?.includes(name))
        ) {
          out.set(key, value);
        }
      }
    }
    for (const entry of encoded.entries) out.set(entry.key, entry.value);
    return out;
  }
  const out: Record<string, unknown> = { ...(headers as Record<string, unknown> | undefined) };
  if (encoded.removed) for (const name of encoded.removed) delete out[name];
  for (const entry of encoded.entries) out[entry.name] = entry.value;
  return out;
}
