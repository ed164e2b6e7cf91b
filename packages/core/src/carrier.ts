import type { TextMapGetter, TextMapSetter } from '@opentelemetry/api';
import { acceptHeaderText, headerLimit, isListHeader, MAX_HEADER_NAMES_LISTED } from './limits.ts';

/**
 * Any header object a broker client hands us. Values may be strings, Buffers, Uint8Arrays, arrays of
 * those (Kafka allows repeated headers), or any AMQP field value (numbers, booleans, nested tables).
 * For headers held in a JavaScript `Map` (what @platformatic/kafka hands out), see {@link HeaderMap}.
 */
export type HeaderCarrier = Readonly<Record<string, unknown>> | null | undefined;

/**
 * Headers held in a JavaScript `Map` (or a subclass), as @platformatic/kafka hands them out: keys are
 * strings, or Buffers / Uint8Arrays holding the name as UTF-8 (as Kafka writes header names); values
 * follow the same rules as a {@link HeaderCarrier}'s. A key of any other type, or longer than
 * {@link MAX_HEADER_NAME_LENGTH}, is skipped; of several keys spelling one name, the first wins.
 */
export type HeaderMap = ReadonlyMap<unknown, unknown>;

/**
 * Longest header name (characters, or bytes for a byte key) read from a {@link HeaderMap}; a longer
 * key is skipped before it is decoded. Propagation and lineage header names are far shorter.
 */
export const MAX_HEADER_NAME_LENGTH = 128;

/**
 * Whether `headers` is a {@link HeaderMap}: one check per call, made before any header is read. A
 * `Map` made in another realm (a `vm` context) fails `instanceof Map` and is recognised by its
 * built-in tag; a record (what kafkajs and amqplib hand out) has no `forEach` and costs one failed
 * property read more. A record with a `forEach` function and the `Map` tag that is not a `Map` is
 * read as one, and reading it fails quietly (no headers). Never throws: an object whose look-ups
 * throw (a `forEach` getter, a Proxy trap, a revoked Proxy) is not a Map, and is read as a record.
 */
export function isHeaderMap(headers: unknown): headers is HeaderMap {
  try {
    return (
      headers instanceof Map ||
      (typeof (headers as { forEach?: unknown } | null | undefined)?.forEach === 'function' &&
        !Array.isArray(headers) &&
        Object.prototype.toString.call(headers) === '[object Map]')
    );
  } catch {
    return false; // a hostile object (a throwing `forEach` getter or trap, a revoked Proxy): not a Map
  }
}

/**
 * A plain view of a {@link HeaderMap} keyed by name, for the readers of header objects: names decoded
 * (see {@link headerName}; the first key spelling a name wins, except that the values of a
 * `tracestate` or `baggage` spelled by several keys are all kept, as one array with the entries of
 * an array value among them), values as they are (decoded,
 * size-checked and refused later, by the same reads an object carrier gets). No prototype, so a
 * header named `__proto__` is one more name. `undefined` for an empty map or one whose iteration
 * throws (a hostile subclass): no headers. Every entry is read (work linear in the headers the
 * client already decoded); what a per-entry baggage propagator reads of them is bounded by
 * {@link headerGetter}'s `keys`. Never throws; never touches the caller's map.
 */
export function mapHeaderView(headers: HeaderMap): Record<string, unknown> | undefined {
  try {
    if (headers.size === 0) return undefined;
    const view: Record<string, unknown> = Object.create(null);
    let repeated: Record<string, unknown[]> | undefined;
    const add = (value: unknown, key: unknown): void => {
      const name = headerName(key);
      if (name === undefined) return;
      if (!(name in view)) view[name] = value;
      else if (isListHeader(name)) {
        // A list header given more than once (Kafka allows it; @platformatic/kafka keeps each under
        // its own Buffer key): all of its values, in order, for the getter to join.
        // An array value brings its entries, as one under a single key is read.
        repeated ??= Object.create(null) as Record<string, unknown[]>;
        const bound = headerLimit(name);
        let values = repeated[name];
        if (values === undefined) {
          values = [];
          addEntries(values, view[name], bound);
          repeated[name] = values;
          view[name] = values;
        }
        addEntries(values, value, bound);
      }
    };
    headers.forEach(add); // forEach, not for...of: no iterator and no entry array per header
    return view;
  } catch {
    return undefined;
  }
}

/**
 * Adds a list header's `value` to `values`, an array's entries one by one (not nested, which no
 * reader reads), up to one entry past `bound`: enough for the list to be refused whole as over its
 * limit (see {@link limitedListText}), without copying a huge array.
 */
function addEntries(values: unknown[], value: unknown, bound: number): void {
  if (!Array.isArray(value)) {
    if (values.length <= bound) values.push(value);
    return;
  }
  for (let i = 0; i < value.length && values.length <= bound; i++) values.push(value[i]);
}

/**
 * The name a {@link HeaderMap} key spells: a string as it is, bytes decoded as UTF-8; `undefined`
 * for a key of another type or longer than {@link MAX_HEADER_NAME_LENGTH} (refused before decoding).
 */
export function headerName(key: unknown): string | undefined {
  if (typeof key === 'string') return key.length <= MAX_HEADER_NAME_LENGTH ? key : undefined;
  const bytes = key instanceof Uint8Array ? key : foreignBytes(key);
  if (bytes !== undefined && bytes.byteLength <= MAX_HEADER_NAME_LENGTH) return utf8Decoder.decode(bytes);
  return undefined;
}

/**
 * Reads one header value as text: strings as they are, Buffers and Uint8Arrays decoded as UTF-8
 * (as Kafka clients and other instrumentations read them; decoding never fails: an invalid sequence
 * becomes U+FFFD, which a propagator's validation of `traceparent`/`tracestate` refuses as it would
 * any non-ASCII character), arrays by their first textual element, amqplib's typed field values
 * (`{ '!': 'string', value }`, what a publish may pass to choose the AMQP type) by their value.
 * Anything else is ignored. No size limit: see {@link headerGetter} for the guarded read propagators use.
 */
export function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return decodeUtf8(value);
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = headerText(item);
      if (text !== undefined) return text;
    }
    return undefined;
  }
  const typed = typedText(value);
  return typed === undefined || typeof typed === 'string' ? typed : decodeUtf8(typed);
}

/**
 * Like {@link headerText}, but refuses (returns undefined) a value longer than `limit` before decoding it.
 * Bytes are decoded as in {@link headerText}; `limit` counts bytes for them, characters for strings.
 * An amqplib typed value, alone or as an array entry, is its string or bytes under the same limit
 * (amqplib encodes each array entry by its type too). The first textual entry of an array decides:
 * over the limit, the value is refused, not the next entry read. Nested arrays are not read.
 */
export function limitedText(value: unknown, limit: number): string | undefined {
  if (typeof value === 'string' || value instanceof Uint8Array) return textWithin(value, limit);
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = typeof item === 'string' || item instanceof Uint8Array ? item : typedText(item);
      if (text !== undefined) return textWithin(text, limit);
    }
    return undefined;
  }
  const typed = typedText(value);
  return typed === undefined ? undefined : textWithin(typed, limit);
}

/**
 * A list header (`tracestate`, `baggage`) given more than once, as an array (kafkajs hands repeated
 * Kafka headers so; an AMQP array field): its textual entries (as {@link limitedText} takes them)
 * joined with `,`, as W3C Trace Context and Baggage combine repeated headers and OpenTelemetry's
 * propagators join an array. Refused whole when the joined text would be over `limit` (characters
 * for strings, bytes for bytes), before any entry is decoded; so is an array longer than `limit`.
 */
export function limitedListText(value: readonly unknown[], limit: number): string | undefined {
  if (value.length > limit) return undefined;
  let first: string | Uint8Array | undefined;
  let parts: Array<string | Uint8Array> | undefined;
  let size = 0;
  for (const item of value) {
    const text = typeof item === 'string' || item instanceof Uint8Array ? item : typedText(item);
    if (text === undefined) continue;
    size += (typeof text === 'string' ? text.length : text.byteLength) + (first === undefined ? 0 : 1);
    if (size > limit) return undefined;
    if (first === undefined) first = text;
    else {
      parts ??= [first];
      parts.push(text);
    }
  }
  if (first === undefined) return undefined;
  if (parts === undefined) return typeof first === 'string' ? first : decodeUtf8(first);
  return parts.map((part) => (typeof part === 'string' ? part : decodeUtf8(part))).join(',');
}

/** A string, or bytes decoded, when within `limit` (characters for strings, bytes for bytes). */
function textWithin(value: string | Uint8Array, limit: number): string | undefined {
  if (typeof value === 'string') return value.length <= limit ? value : undefined;
  return value.byteLength <= limit ? decodeUtf8(value) : undefined;
}

/**
 * The text inside a value that is neither a string nor bytes of this realm: an amqplib typed field
 * value (`{ '!': 'string', value }`, or a Buffer as `{ '!': 'object', value }`; amqplib encodes
 * `value` with the named type, so a traceparent given that way is on the wire as the plain string
 * would be; read as anything else, a publish took it for no context and added fields of another
 * trace beside it), or a `Uint8Array` made in another realm (see {@link foreignBytes}).
 */
function typedText(value: unknown): string | Uint8Array | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (!Object.hasOwn(value, '!')) return foreignBytes(value);
  const { '!': type, value: inner } = value as { '!': unknown; value?: unknown };
  if (type === 'string') return typeof inner === 'string' ? inner : undefined;
  // amqplib writes a Buffer given as an 'object' as a byte array, the shape it hands out on receive
  return type === 'object' && hasBuffer && Buffer.isBuffer(inner) ? inner : undefined;
}

/** The built-in `Symbol.toStringTag` getter of typed arrays: a real typed array's type name, else `undefined`. */
const typedArrayName = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype) as object,
  Symbol.toStringTag,
)?.get as ((this: unknown) => string | undefined) | undefined;

/**
 * A `Uint8Array` (or Buffer) made in another realm (a `vm` context, a test runner's sandbox), which
 * is no `instanceof Uint8Array` here: recognised by the built-in typed-array tag, which reads the
 * array's internal type and cannot be spoofed by an object's own `Symbol.toStringTag`. Checked only
 * after the common shapes (strings, this realm's bytes) failed.
 */
function foreignBytes(value: unknown): Uint8Array | undefined {
  return ArrayBuffer.isView(value) && typedArrayName?.call(value) === 'Uint8Array'
    ? (value as Uint8Array)
    : undefined;
}

/** Non-fatal (invalid bytes become U+FFFD) and keeps a leading BOM, so it never throws or drops a character. */
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

const hasBuffer = typeof Buffer === 'function';
/** UTF-8 text of header bytes: a Buffer decodes in place (the common case), other bytes through the decoder. */
function decodeUtf8(bytes: Uint8Array): string {
  return hasBuffer && Buffer.isBuffer(bytes) ? bytes.toString('utf8') : utf8Decoder.decode(bytes);
}

/**
 * A getter for the OpenTelemetry propagation API over any {@link HeaderCarrier}. Header names are
 * case-sensitive, as on Kafka and AMQP; the propagators ask for the lowercase W3C and B3 names.
 * Values over the W3C limits (baggage 8192 bytes / 64 members, tracestate 512 characters / 32
 * members, any other field 512) are refused before decoding or parsing, as if absent. A `tracestate`
 * or `baggage` given more than once (an array) is read joined (see {@link limitedListText}), its
 * limits applied to the whole; any other field's array by its first textual entry. `keys` lists at
 * most the first {@link MAX_HEADER_NAMES_LISTED} own names, so a propagator that walks them (per-entry
 * baggage) reads a bounded number of entries. Never throws.
 * What a send reads of its caller's own headers (see {@link receivedHeaderGetter} for received ones).
 */
export const headerGetter: TextMapGetter<HeaderCarrier> = {
  keys(carrier) {
    if (!carrier) return [];
    try {
      const names = Object.keys(carrier);
      if (names.length > MAX_HEADER_NAMES_LISTED) names.length = MAX_HEADER_NAMES_LISTED;
      return names;
    } catch {
      return [];
    }
  },
  get(carrier, key) {
    if (!carrier) return undefined;
    try {
      return guardedText(key, carrier[key]);
    } catch {
      return undefined; // a throwing getter on someone's header object, or a hostile Proxy value
    }
  },
};

/**
 * {@link headerGetter} for the headers of a received message: a field absent under the name the
 * propagator asks for (or `null` there) is read under another spelling of it, the first own one in
 * the headers' order (`X-B3-TraceId`, as Java OpenTelemetry's and Zipkin's B3 multi-header
 * propagators write it; a `Traceparent` copied from HTTP headers). The exact name always wins, so a
 * stale `Traceparent` beside a `traceparent` is ignored. A lookup that finds the exact name costs
 * what {@link headerGetter}'s does; a miss walks the header names once, comparing only those of the
 * asked name's length. Same limits; never throws.
 */
export const receivedHeaderGetter: TextMapGetter<HeaderCarrier> = {
  keys: headerGetter.keys,
  get(carrier, key) {
    if (!carrier) return undefined;
    try {
      const value: unknown = carrier[key];
      return guardedText(key, value === undefined || value === null ? otherCaseValue(carrier, key) : value);
    } catch {
      return undefined; // a throwing getter on someone's header object, or a hostile Proxy value
    }
  },
};

/** The value of the first own header whose name is `key` in another case; `undefined` if none. */
function otherCaseValue(carrier: Readonly<Record<string, unknown>>, key: string): unknown {
  let lower: string | undefined;
  for (const name in carrier) {
    if (name.length !== key.length || name === key) continue;
    lower ??= key.toLowerCase();
    if (name.toLowerCase() === lower && Object.hasOwn(carrier, name)) return carrier[name];
  }
  return undefined;
}

/** A header value as text for the field `key`, within its W3C limits; `undefined` otherwise. */
function guardedText(key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text =
    Array.isArray(value) && isListHeader(key)
      ? limitedListText(value, headerLimit(key))
      : limitedText(value, headerLimit(key));
  return text !== undefined && acceptHeaderText(key, text) ? text : undefined;
}

/**
 * A setter that writes string values into a plain object owned by hoptrace. A propagator that hands
 * it something else (the setter's contract says string, but nothing enforces it) gets numbers,
 * booleans and bigints written as their decimal text, and other values left out: the headers go to
 * broker clients that refuse anything but text (kafkajs and @platformatic/kafka throw on a number).
 */
export const recordSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value: unknown) {
    if (typeof key !== 'string') return;
    if (typeof value === 'string') carrier[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
      carrier[key] = String(value);
    }
  },
};
