import type { Context } from '@opentelemetry/api';
import type { HeaderCarrier } from './carrier.ts';
import type { ErrorClassifier } from './errors.ts';
import { type FailureInput, failureHeaders, readFailureLineage } from './lineage.ts';
import { FAILURE_HEADERS, HEADER_FAILED_CONTEXT_PREFIX } from './names.ts';
import { assertKnownOptions, type OptionKeys } from './option-keys.ts';
import {
  assertContext,
  assertOptionalFunction,
  assertOptionalInteger,
  assertOptionsObject,
} from './validate.ts';

/**
 * The options every adapter's dead-letter helper takes (an adapter adds its own, and documents its
 * own defaults where they differ).
 */
export interface FailureCopyOptions {
  /**
   * Attempts made so far, written as `hoptrace-attempts`. Default: one more than the failed message
   * carried (so each trip through a retry topic counts), or `1`.
   * @example { attempts: 3 }
   */
  attempts?: number | undefined;
  /**
   * The classifier your consumer wrapper uses, so the header's error type and retryable flag agree
   * with the failed span's `error.type`. Default: hoptrace's default classification.
   */
  classifyError?: ErrorClassifier | undefined;
  /**
   * The failed attempt's context. Default: the active one, which is the failed `process` span when
   * you call the helper inside the traced handler (the usual place).
   */
  context?: Context | undefined;
}

/** The option names of {@link FailureCopyOptions}. */
export const FAILURE_COPY_OPTION_KEYS = {
  attempts: true,
  classifyError: true,
  context: true,
} as const satisfies OptionKeys<FailureCopyOptions>;

const LINEAGE_HEADER_NAMES = new Set<string>(Object.values(FAILURE_HEADERS));

/**
 * Whether `name` is one of hoptrace's failure lineage headers (`FAILURE_HEADERS` or a
 * `hoptrace-failed-*` context field): a dead-letter or retry copy replaces these rather than keeping
 * the ones of an earlier failure.
 */
export function isLineageHeader(name: string): boolean {
  return LINEAGE_HEADER_NAMES.has(name) || name.startsWith(HEADER_FAILED_CONTEXT_PREFIX);
}

/**
 * The lineage headers of the next dead-letter or retry copy of a failed message whose received
 * headers are `original`: {@link failureHeaders} of `input`, with `attempts` defaulting to one more
 * than the message's own lineage carried (so each trip through a retry topic counts), or `1`.
 * Never throws.
 */
export function nextFailureHeaders(original: HeaderCarrier, input: FailureInput): Record<string, string> {
  if (input.attempts !== undefined) return failureHeaders(input);
  const previous = readFailureLineage(original)?.attempts;
  return failureHeaders({ ...input, attempts: previous === undefined ? 1 : previous + 1 });
}

/**
 * The checks every adapter's dead-letter helper makes of its `options` argument, so that all of them
 * take and refuse the same: `undefined` means none; anything but a plain object (`null`, a string,
 * an array) throws a TypeError, as does an option name `keys` does not list (see
 * `assertKnownOptions`), an `attempts` that is not a non-negative integer, a `classifyError` that is
 * not a function and a `context` that is not an OpenTelemetry Context. Options set to `undefined`
 * are let through. Returns the options, or an empty object for `undefined`.
 *
 * @param api - the helper's exported name, which the errors quote (`deadLetterMessage`).
 * @param options - what the caller passed.
 * @param keys - the helper's option names.
 */
export function checkFailureCopyOptions<T extends object>(
  api: string,
  options: T | undefined,
  keys: Readonly<Record<string, true>>,
): Partial<T> {
  assertOptionsObject('options', options);
  if (options === undefined) return {};
  assertKnownOptions(api, options, keys);
  const o = options as { attempts?: unknown; classifyError?: unknown; context?: unknown };
  assertOptionalInteger('attempts', o.attempts, 0);
  assertOptionalFunction('classifyError', o.classifyError);
  if (o.context !== undefined) assertContext(api, o.context, 'options.context');
  return options;
}
