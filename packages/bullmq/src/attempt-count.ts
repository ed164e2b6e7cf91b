/**
 * Attempt counts as span attributes: BullMQ's `attemptsMade` is `parseInt` of the job hash's `atm`
 * field and `opts.attempts` is JSON from the same hash, both data anyone can write with `HSET`
 * (`NaN`, `-3`, `1e20`, `2.5`). A count hoptrace records is a non-negative safe integer, or it is
 * left out.
 *
 * @packageDocumentation
 */

/** `value` when it is a non-negative safe integer (a count whose next one is exact), else `undefined`. */
export function attemptCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}
