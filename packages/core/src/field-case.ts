import { propagation } from '@opentelemetry/api';

/** What hoptrace takes the fields to be when the propagator's `fields()` throws or lists no array. */
const W3C_TRACE_FIELDS: readonly string[] = ['traceparent', 'tracestate'];

/**
 * The header names the registered propagator writes (`propagation.fields()`): W3C `traceparent`,
 * `tracestate`, `baggage` by default, B3's names once registered. A propagator whose `fields()`
 * throws or lists no array counts as listing the W3C trace fields. Never throws.
 */
export function propagatorFields(): readonly unknown[] {
  try {
    const listed: unknown = propagation.fields();
    return Array.isArray(listed) ? listed : W3C_TRACE_FIELDS;
  } catch {
    return W3C_TRACE_FIELDS;
  }
}

/**
 * The last field list seen and its names in lower case. The SDK's composite propagator hands out a
 * new array with the same names on every call: a list equal to the last one reuses its set.
 */
let lastFields: readonly unknown[] | undefined;
let lastLowered: ReadonlySet<string> = new Set();

function sameFields(a: readonly unknown[], b: readonly unknown[] | undefined): boolean {
  if (a === b) return true;
  if (!b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function loweredFields(): ReadonlySet<string> {
  const fields = propagatorFields();
  if (!sameFields(fields, lastFields)) {
    const lowered = new Set<string>();
    for (const field of fields) if (typeof field === 'string') lowered.add(field.toLowerCase());
    lastFields = fields;
    lastLowered = lowered;
  }
  return lastLowered;
}

/**
 * The names among a message's `headers` that spell a propagation field of the registered propagator
 * in another case (`Traceparent`, `TRACESTATE`, `Baggage`, `X-B3-TraceId`): left over from another
 * context, they would travel beside the fields hoptrace writes under the propagator's own names, and
 * a reader that matches names without regard to case could take the stale one. A copy hoptrace
 * sends leaves them out. Names spelled exactly as the propagator's are not listed, nor are lower-case
 * names: the known propagators write lower-case names, and a header map without capitals never asks
 * the propagator for its fields (no per-send cost); the lower-case twin of a mixed-case name a custom
 * propagator writes travels on. `undefined` when there are none. Never throws (a header object whose
 * keys cannot be listed has none), and reads no header value.
 */
export function fieldCaseVariants(
  headers: Readonly<Record<string, unknown>> | null | undefined,
): string[] | undefined {
  if (!headers) return undefined;
  let found: string[] | undefined;
  try {
    let fields: ReadonlySet<string> | undefined;
    for (const name of Object.keys(headers)) {
      const lower = name.toLowerCase();
      if (lower === name) continue; // the propagators' own names are lower case: no variant
      fields ??= loweredFields();
      if (!fields.has(lower) || fieldsInclude(name)) continue;
      found ??= [];
      found.push(name);
    }
  } catch {
    return undefined;
  }
  return found;
}

/** Whether the propagator lists `name` as it is (one that writes a mixed-case name keeps it). */
function fieldsInclude(name: string): boolean {
  return propagatorFields().includes(name);
}

/**
 * Deletes from `copy` (an object hoptrace owns) the names {@link fieldCaseVariants} lists for it.
 */
export function dropFieldCaseVariants(copy: Record<string, unknown>): void {
  const variants = fieldCaseVariants(copy);
  if (variants) for (const name of variants) delete copy[name];
}
