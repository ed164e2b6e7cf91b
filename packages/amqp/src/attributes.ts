/**
 * hoptrace's own RabbitMQ attribute keys and `error.type` values (no convention exists for these
 * yet), and the readers of RabbitMQ's own headers. Everything else comes from the conventions
 * through `@hoptrace/core`.
 *
 * @packageDocumentation
 */

import { capValue } from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';

/** `true` when RabbitMQ redelivers the message (`fields.redelivered`); absent otherwise. */
export const ATTR_HOPTRACE_RABBITMQ_REDELIVERED = 'hoptrace.rabbitmq.redelivered';
/**
 * How many times the message was dead-lettered: the sum of the `count` fields of its `x-death`
 * header. Absent when the message was never dead-lettered.
 */
export const ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT = 'hoptrace.rabbitmq.death_count';
/** Why the message was last dead-lettered (`rejected`, `expired`, `maxlen`, `delivery_limit`), from `x-death`. */
export const ATTR_HOPTRACE_RABBITMQ_DEATH_REASON = 'hoptrace.rabbitmq.death.reason';
/** The queue the message was last dead-lettered from, from `x-death`. */
export const ATTR_HOPTRACE_RABBITMQ_DEATH_QUEUE = 'hoptrace.rabbitmq.death.queue';
/** The exchange the message had been published to before it was last dead-lettered, from `x-death`. */
export const ATTR_HOPTRACE_RABBITMQ_DEATH_EXCHANGE = 'hoptrace.rabbitmq.death.exchange';
/**
 * How the delivery's process span ended: `ack`, `nack`, `reject`, `recovered` (`channel.recover()`
 * asked for redelivery), or `untracked` (more deliveries were open on the channel than
 * `maxOpenDeliveries`: the oldest span ended without waiting for its settle).
 */
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

/** One `x-death` entry, as amqplib decodes it. */
interface DeathEntry {
  count?: unknown;
  reason?: unknown;
  queue?: unknown;
  exchange?: unknown;
}

/**
 * The number of times a message was dead-lettered, from its `x-death` header (an array of tables
 * with a `count`). Never throws; anything unexpected yields `undefined`.
 */
export function deathCount(xDeath: unknown): number | undefined {
  if (!Array.isArray(xDeath) || xDeath.length === 0) return undefined;
  let total = 0;
  for (const entry of xDeath.slice(0, 64)) {
    const count = entry !== null && typeof entry === 'object' ? (entry as DeathEntry).count : undefined;
    if (typeof count === 'number' && Number.isFinite(count)) total += count;
    else if (typeof count === 'bigint') total += Number(count);
  }
  return total;
}

/**
 * Attributes describing a dead-lettered message from its `x-death` header: total count, and the
 * most recent death's reason, queue and exchange (RabbitMQ puts the most recent first). Values are
 * capped; anything unexpected is skipped. Never throws.
 */
export function deathAttributes(xDeath: unknown, out: Attributes): void {
  const count = deathCount(xDeath);
  if (count === undefined) return;
  out[ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT] = count;
  const latest = (xDeath as unknown[])[0];
  if (latest === null || typeof latest !== 'object') return;
  const { reason, queue, exchange } = latest as DeathEntry;
  if (typeof reason === 'string' && reason !== '')
    out[ATTR_HOPTRACE_RABBITMQ_DEATH_REASON] = capValue(reason, 64);
  if (typeof queue === 'string' && queue !== '') out[ATTR_HOPTRACE_RABBITMQ_DEATH_QUEUE] = capValue(queue);
  if (typeof exchange === 'string' && exchange !== '')
    out[ATTR_HOPTRACE_RABBITMQ_DEATH_EXCHANGE] = capValue(exchange);
}
