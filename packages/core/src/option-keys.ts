/**
 * Unknown option names: a wrapper given an option it does not take (a typo such as `captureKey`)
 * throws at wrap time instead of ignoring it, so bad configuration is caught where it is made.
 *
 * @packageDocumentation
 */

import { capValue } from './attributes.ts';
import type { ConsumerTracingOptions, TracingOptions } from './options.ts';

/**
 * Every option name of an options type, as `{ name: true }`: a table an adapter declares with
 * `satisfies OptionKeys<ItsOptions>`, so that the compiler fails when an option is added to the type
 * but not to the table.
 */
export type OptionKeys<T> = { readonly [K in keyof Required<T>]: true };

/** The option names of {@link TracingOptions}. */
export const TRACING_OPTION_KEYS = {
  tracerProvider: true,
  meterProvider: true,
  legacyAttributes: true,
  captureBodySize: true,
  unsampled: true,
  classifyError: true,
} as const satisfies OptionKeys<TracingOptions>;

/** The option names of {@link ConsumerTracingOptions}. */
export const CONSUMER_TRACING_OPTION_KEYS = {
  ...TRACING_OPTION_KEYS,
  relation: true,
  parentLink: true,
  traceBudget: true,
  baggageAttributes: true,
} as const satisfies OptionKeys<ConsumerTracingOptions>;

/** How long a quoted unknown name may be in the error. */
const MAX_QUOTED_NAME = 64;

/**
 * Throws a TypeError naming `api`, the unknown option and, when one is close, the option meant
 * (`Unknown option \`captureKey\` for traceKafka (did you mean \`captureKeys\`?)`) if `options` has
 * an own enumerable option `keys` does not list, set to anything but `undefined` (an option left
 * `undefined` changes nothing either way). Anything but a plain options object is left to the
 * other checks (`assertOptionsObject`); an object whose keys cannot be listed is let through.
 */
export function assertKnownOptions(
  api: string,
  options: unknown,
  keys: Readonly<Record<string, true>>,
): void {
  if (options === null || typeof options !== 'object') return;
  let names: string[];
  try {
    names = Object.keys(options);
  } catch {
    return;
  }
  for (const name of names) {
    if (Object.hasOwn(keys, name)) continue;
    let value: unknown;
    try {
      value = (options as Record<string, unknown>)[name];
    } catch {
      value = null;
    }
    if (value === undefined) continue;
    const meant = closestName(name, Object.keys(keys));
    throw new TypeError(
      `Unknown option \`${capValue(name, MAX_QUOTED_NAME)}\` for ${api}` +
        (meant === undefined ? '' : ` (did you mean \`${meant}\`?)`),
    );
  }
}

/** The known name `name` most likely misspells: the same in another case, or at most 2 edits away. */
function closestName(name: string, known: readonly string[]): string | undefined {
  if (name.length > MAX_QUOTED_NAME) return undefined;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    if (candidate.toLowerCase() === lower) return candidate;
    const distance = editDistance(lower, candidate.toLowerCase(), bestDistance);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance of `a` and `b`, or `limit` when it is `limit` or more. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return Math.min(previous[b.length] as number, limit);
}
