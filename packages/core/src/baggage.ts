import { type Attributes, type Context, propagation } from '@opentelemetry/api';
import { MAX_BAGGAGE_MEMBERS } from './limits.ts';
import { describeValue } from './validate.ts';

/**
 * Baggage keys to copy onto consumer spans as attributes: a list (the attribute is named like the
 * key) or a map from baggage key to attribute name.
 *
 * @example ['tenant.id'] or { 'tenant.id': 'app.tenant.id' }
 */
export type BaggageAllowList = readonly string[] | Readonly<Record<string, string>>;

/**
 * The tag of an object (`[object Object]`, `[object Map]`). Only an `[object Object]` is the map form
 * of an allow-list: `Object.entries` sees none of a `Map`'s or a `Set`'s entries, so one was taken
 * for an empty allow-list that reads nothing, without a word.
 */
function objectTag(value: unknown): string | undefined {
  return value !== null && typeof value === 'object' ? Object.prototype.toString.call(value) : undefined;
}

/** Reads allow-listed baggage from a context; compiled once by {@link compileBaggageAllowList}. */
export type BaggageReader = (context: Context) => Attributes | undefined;

/** Values longer than this (in characters) are dropped whole, never truncated. */
export const DEFAULT_MAX_BAGGAGE_VALUE_LENGTH = 256;

/**
 * Compiles an allow-list into a reader. Baggage comes from other services and is untrusted: only
 * allow-listed keys are read, at most {@link MAX_BAGGAGE_MEMBERS} of them, and a value longer than
 * `maxValueLength` is dropped.
 *
 * @param name - the option's name, for the error message.
 * @param reserved - names the entries may not be read into (the other fields of the record they join).
 * @throws TypeError at wrap time for an allow-list that is not a list or map of non-empty strings,
 * or that names a `reserved` name.
 */
export function compileBaggageAllowList(
  allowList: BaggageAllowList | undefined,
  maxValueLength = DEFAULT_MAX_BAGGAGE_VALUE_LENGTH,
  name = 'baggageAttributes',
  reserved: readonly string[] = [],
): BaggageReader | undefined {
  if (allowList === undefined) return undefined;
  const pairs: Array<[string, string]> = Array.isArray(allowList)
    ? // Array.from, not map: a sparse list's holes become entries (and are refused) rather than holes
      Array.from(allowList as readonly unknown[], (k) => [k as string, k as string])
    : objectTag(allowList) === '[object Object]'
      ? Object.entries(allowList as Record<string, unknown>).map(([k, v]) => [k, v as string])
      : (() => {
          throw new TypeError(
            `Expected \`${name}\` to be a list or map of strings, got ${objectTag(allowList) ?? describeValue(allowList)}`,
          );
        })();
  for (const [key, attribute] of pairs) {
    if (
      typeof key !== 'string' ||
      key.length === 0 ||
      typeof attribute !== 'string' ||
      attribute.length === 0
    ) {
      throw new TypeError(
        `Expected \`${name}\` entries to be non-empty strings, got ${JSON.stringify([key, attribute])}`,
      );
    }
  }
  const taken = pairs.find(([, attribute]) => reserved.includes(attribute));
  if (taken) {
    throw new TypeError(
      `Expected \`${name}\` field names other than ${reserved.join(', ')}, got ${JSON.stringify(taken[1])}`,
    );
  }
  if (pairs.length > MAX_BAGGAGE_MEMBERS) {
    throw new TypeError(`Expected at most ${MAX_BAGGAGE_MEMBERS} \`${name}\`, got ${pairs.length}`);
  }
  if (!Number.isInteger(maxValueLength) || maxValueLength < 1) {
    throw new TypeError(`Expected \`maxValueLength\` to be an integer >= 1, got ${String(maxValueLength)}`);
  }
  if (pairs.length === 0) return undefined;
  return (context) => {
    const bag = propagation.getBaggage(context);
    if (!bag) return undefined;
    let out: Attributes | undefined;
    for (const [key, attribute] of pairs) {
      const value = bag.getEntry(key)?.value;
      if (typeof value !== 'string' || value.length > maxValueLength) continue;
      out ??= {};
      out[attribute] = value;
    }
    return out;
  };
}
