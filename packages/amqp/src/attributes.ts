/**
 * hoptrace's own RabbitMQ attribute keys, event names and `error.type` values (no convention exists
 * for these yet). Everything else comes from the conventions through `@hoptrace/core`.
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
/** Why the message was last dead-lettered (`rejected`, `expired`, `maxlen`, `delivery_limit`), from `x-death`. */
export const ATTR_HOPTRACE_RABBITMQ_DEATH_REASON = 'hoptrace.rabbitmq.death.reason';
/**
 * The queue the message was last dead-lettered from, from `x-death` (for a message dead-lettered
 * once: the queue it was first consumed from).
 */
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

/** Event on a process span that `maxOpenDeliveries` ended before its message was settled. */
export const EVENT_HOPTRACE_UNTRACKED = 'hoptrace.untracked';
/** The bound in force, on {@link EVENT_HOPTRACE_UNTRACKED}. */
export const ATTR_HOPTRACE_MAX_OPEN_DELIVERIES = 'hoptrace.max_open_deliveries';

/** `error.type` of a process span still open when its channel closed. */
export const ERROR_CHANNEL_CLOSED = 'channel_closed';
/** `error.type` of a process span still open when its connection closed or dropped. */
export const ERROR_CONNECTION_CLOSED = 'connection_closed';
/**
 * `error.type` of a process span still open when a delivery arrived with a tag not greater than
 * the last one (a new channel incarnation reused the tags; the old deliveries cannot be settled).
 */
export const ERROR_DELIVERY_TAG_REUSED = 'delivery_tag_reused';
/** `error.type` of a process span force-ended by `settleTimeoutMs`. */
export const ERROR_SETTLE_TIMEOUT = 'settle_timeout';
/** `error.type` of a process span whose message was nacked or rejected without requeue. */
export const ERROR_REJECTED = 'rejected';
/** `error.type` of a send span on a confirm channel when the broker nacks the message. */
export const ERROR_NACKED = 'nacked';
/**
 * `error.type` of a `mandatory` send span on a confirm channel when the broker returns the message
 * (`basic.return`: no queue it could be routed to).
 */
export const ERROR_RETURNED = 'returned';
