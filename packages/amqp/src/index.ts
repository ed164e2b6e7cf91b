/**
 * @hoptrace/amqp: explicit OpenTelemetry tracing for amqplib channels and connections. Publishes
 * carry their creation context in the message headers, deliveries continue the trace, and every
 * consumer span ends when its message is settled.
 *
 * @packageDocumentation
 */

export {
  ATTR_HOPTRACE_MAX_OPEN_DELIVERIES,
  ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG,
  ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT,
  ATTR_HOPTRACE_RABBITMQ_DEATH_EXCHANGE,
  ATTR_HOPTRACE_RABBITMQ_DEATH_QUEUE,
  ATTR_HOPTRACE_RABBITMQ_DEATH_REASON,
  ATTR_HOPTRACE_RABBITMQ_REDELIVERED,
  ATTR_HOPTRACE_RABBITMQ_REQUEUE,
  ATTR_HOPTRACE_RABBITMQ_SETTLEMENT,
  ERROR_CHANNEL_CLOSED,
  ERROR_CONNECTION_CLOSED,
  ERROR_DELIVERY_TAG_REUSED,
  ERROR_NACKED,
  ERROR_REJECTED,
  ERROR_RETURNED,
  ERROR_SETTLE_TIMEOUT,
  EVENT_HOPTRACE_UNTRACKED,
} from './attributes.ts';
export { traceChannel } from './channel.ts';
export { traceConnection } from './connection.ts';
export {
  type DeadLetterOptions,
  type DeadLetterPublishOptions,
  type DeadLetterSource,
  deadLetterOptions,
} from './dead-letter.ts';
export {
  consumerDestination,
  DIRECT_REPLY_TO,
  defaultSpanDestination,
  destinationTemplate,
  isAnonymous,
  isServerNamed,
  producerDestination,
  type SpanNameParts,
} from './destination.ts';
export { type AmqpTracingOptions, DEFAULT_MAX_OPEN_DELIVERIES } from './options.ts';
export type { TraceableChannel, TraceableConnection } from './types.ts';
