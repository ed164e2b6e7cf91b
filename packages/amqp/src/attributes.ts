/**
 * hoptrace's own RabbitMQ attribute keys (no convention exists for these yet). Everything else comes
 * from the conventions through `@hoptrace/core`.
 *
 * @packageDocumentation
 */

/** `true` when RabbitMQ redelivers the message (`fields.redelivered`); absent otherwise. */
export const ATTR_HOPTRACE_RABBITMQ_REDELIVERED = 'hoptrace.rabbitmq.redelivered';
/**
 * How many times the message was dead-lettered: the sum of the `count` fields of its `x-death`
 * header. Absent when the message was never dead-lettered.
 */
export const ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT = 'hoptrace.rabbitmq.death_count';
/** How the message was settled: `ack`, `nack`, `reject` (set when the process span ends on settle). */
export const ATTR_HOPTRACE_RABBITMQ_SETTLEMENT = 'hoptrace.rabbitmq.settlement';
/** The `requeue` flag of a `nack` or `reject`. */
export const ATTR_HOPTRACE_RABBITMQ_REQUEUE = 'hoptrace.rabbitmq.requeue';
/** The consumer tag a delivery came through. */
export const ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG = 'hoptrace.rabbitmq.consumer_tag';

/** `error.type` of a process span still open when its channel closed. */
export const ERROR_CHANNEL_CLOSED = 'channel_closed';
/** `error.type` of a process span still open when its connection closed or dropped. */
export const ERROR_CONNECTION_CLOSED = 'connection_closed';
/** `error.type` of a process span force-ended by `settleTimeoutMs`. */
export const ERROR_SETTLE_TIMEOUT = 'settle_timeout';
/** `error.type` of a process span whose message was nacked or rejected without requeue. */
export const ERROR_REJECTED = 'rejected';
/** `error.type` of a send span on a confirm channel when the broker nacks the message. */
export const ERROR_NACKED = 'nacked';

/**
 * The number of times a message was dead-lettered, from its `x-death` header (an array of tables
 * with a `count`). Never throws; anything unexpected yields `undefined`.
 */
export function deathCount(xDeath: unknown): number | undefined {
  if (!Array.isArray(xDeath) || xDeath.length === 0) return undefined;
  let total = 0;
  for (const entry of xDeath) {
    const count =
      entry !== null && typeof entry === 'object' ? (entry as { count?: unknown }).count : undefined;
    if (typeof count === 'number' && Number.isFinite(count)) total += count;
    else if (typeof count === 'bigint') total += Number(count);
  }
  return total;
}
