/**
 * Size limits hoptrace applies to propagation headers before any parser sees them. Headers come from
 * other services and are untrusted: a value over its limit is refused whole (as if absent), so a
 * hostile 1 MB header costs a length check, not a parse.
 *
 * @packageDocumentation
 */

/** W3C Trace Context §3.3.1 (tracestate): at most 32 list members. */
export const MAX_TRACESTATE_MEMBERS = 32;
/** W3C Trace Context §3.3.1.5 (tracestate limits): vendors should propagate at least 512 characters. */
export const MAX_TRACESTATE_LENGTH = 512;
/** W3C Baggage §3.3.1 (limits): a platform must propagate at least 64 list members. */
export const MAX_BAGGAGE_MEMBERS = 64;
/** W3C Baggage §3.3.1 (limits): a platform must propagate at least 8192 bytes in total. */
export const MAX_BAGGAGE_BYTES = 8192;
/**
 * Any other propagation header (`traceparent`: 55 characters in version 00; B3 and vendor headers
 * are shorter still). Generous on purpose: future traceparent versions may append fields.
 */
export const MAX_PROPAGATION_HEADER_LENGTH = 512;
/**
 * Most header names hoptrace lists of one message to a propagator (the first in the headers'
 * order; fields asked for by name are read wherever they are). Propagators that carry baggage one header per entry
 * (Jaeger's `uberctx-*`, OT's `ot-baggage-*`) walk the listed names and add the entries one at a time,
 * each addition copying the baggage so far: 10,000 such headers held the event loop for seconds.
 * The same count as the W3C baggage member limit.
 */
export const MAX_HEADER_NAMES_LISTED = 64;

const BAGGAGE = 'baggage';
const TRACESTATE = 'tracestate';

/** Most bytes (or, for strings, characters) a header of this name may have before it is read. */
export function headerLimit(name: string): number {
  return name === BAGGAGE
    ? MAX_BAGGAGE_BYTES
    : name === TRACESTATE
      ? MAX_TRACESTATE_LENGTH
      : MAX_PROPAGATION_HEADER_LENGTH;
}

/**
 * Whether a header of this name is a W3C list (`tracestate`, `baggage`), whose repeated headers
 * combine into one list (RFC 9110 §5.3) rather than the first being read.
 */
export function isListHeader(name: string): boolean {
  return name === BAGGAGE || name === TRACESTATE;
}

/**
 * Whether a decoded header value is within the W3C limits for its name: baggage by UTF-8 bytes and
 * members, tracestate by characters and members, anything else by characters.
 */
export function acceptHeaderText(name: string, text: string): boolean {
  if (name === BAGGAGE) {
    if (text.length > MAX_BAGGAGE_BYTES) return false;
    if (!membersWithin(text, MAX_BAGGAGE_MEMBERS)) return false;
    return utf8Length(text) <= MAX_BAGGAGE_BYTES;
  }
  if (name === TRACESTATE) return acceptTraceState(text);
  return text.length <= MAX_PROPAGATION_HEADER_LENGTH;
}

/**
 * Whether a serialized tracestate is within 512 characters and 32 members. Empty and whitespace-only
 * list members (`a=1,,b=2`, a trailing comma, what joining several tracestate headers gives) are
 * allowed by W3C Trace Context and are not members: they do not count.
 */
export function acceptTraceState(text: string): boolean {
  return text.length <= MAX_TRACESTATE_LENGTH && membersWithin(text, MAX_TRACESTATE_MEMBERS);
}

/**
 * Whether `text` has at most `max` non-blank list members: empty and whitespace-only members
 * (`a=1,,b=2`, a trailing comma, what joining repeated headers gives) do not count. A list with
 * fewer than `max` separators is within whatever its blanks: it costs a separator count (every
 * received message's headers are checked), and only one with more is walked to tell blanks apart,
 * stopping once `max` is passed (the caller checks the length first, so the walk is bounded).
 */
function membersWithin(text: string, max: number): boolean {
  let separators = 0;
  for (let i = text.indexOf(','); i !== -1; i = text.indexOf(',', i + 1)) {
    if (++separators >= max) break;
  }
  if (separators < max) return true;
  let members = 0;
  let blank = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2c /* , */) {
      if (!blank && ++members > max) return false;
      blank = true;
    } else if (c !== 0x20 && c !== 0x09) blank = false;
  }
  return (blank ? members : members + 1) <= max;
}

/** The UTF-8 length of `text` (lone surrogates count as the 3-byte replacement character). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // 4 bytes for 2 UTF-16 units
        i++;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * Whether baggage entries are within the W3C limits, measured on their serialized form
 * (`key=value` joined by `,`): at most 64 members and 8192 bytes. Used by snapshot restore so that a
 * snapshot and a header of the same content are accepted or refused alike.
 */
export function acceptBaggageEntries(entries: ReadonlyArray<readonly [string, string]>): boolean {
  if (entries.length > MAX_BAGGAGE_MEMBERS) return false;
  let bytes = entries.length > 0 ? entries.length - 1 : 0;
  for (const [key, value] of entries) {
    bytes += utf8Length(key) + 1 + utf8Length(value);
    if (bytes > MAX_BAGGAGE_BYTES) return false;
  }
  return true;
}
