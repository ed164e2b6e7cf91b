/**
 * Semantic-convention keys hoptrace emits, copied from `@opentelemetry/semantic-conventions` 1.45.0
 * (messaging: status Development). Copied rather than imported from its `/incubating` entry, which
 * may change in a minor release, as that package's README advises.
 *
 * @packageDocumentation
 */

/** `messaging.system.name` (replaces the deprecated `messaging.system`). */
export const ATTR_MESSAGING_SYSTEM_NAME = 'messaging.system.name';
/** `messaging.operation.name`: the system-specific operation, e.g. `send`, `process`, `ack`. */
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
/** `messaging.operation.type`: one of {@link MessagingOperationType}. */
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
/** `messaging.destination.name`. */
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
/** `messaging.destination.template`: a low-cardinality form of the destination. */
export const ATTR_MESSAGING_DESTINATION_TEMPLATE = 'messaging.destination.template';
/** `messaging.destination.temporary`. */
export const ATTR_MESSAGING_DESTINATION_TEMPORARY = 'messaging.destination.temporary';
/** `messaging.destination.anonymous`. */
export const ATTR_MESSAGING_DESTINATION_ANONYMOUS = 'messaging.destination.anonymous';
/** `messaging.destination.partition.id` (a string). */
export const ATTR_MESSAGING_DESTINATION_PARTITION_ID = 'messaging.destination.partition.id';
/** `messaging.consumer.group.name`. */
export const ATTR_MESSAGING_CONSUMER_GROUP_NAME = 'messaging.consumer.group.name';
/** `messaging.message.id`. */
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
/** `messaging.message.conversation_id` (RabbitMQ correlation id). */
export const ATTR_MESSAGING_MESSAGE_CONVERSATION_ID = 'messaging.message.conversation_id';
/** `messaging.message.body.size` in bytes (opt-in). */
export const ATTR_MESSAGING_MESSAGE_BODY_SIZE = 'messaging.message.body.size';
/** `messaging.batch.message_count` (batch operations only). */
export const ATTR_MESSAGING_BATCH_MESSAGE_COUNT = 'messaging.batch.message_count';
/** `messaging.client.id`. */
export const ATTR_MESSAGING_CLIENT_ID = 'messaging.client.id';
/** `server.address` (stable). */
export const ATTR_SERVER_ADDRESS = 'server.address';
/** `server.port` (stable). */
export const ATTR_SERVER_PORT = 'server.port';
/** `error.type` (stable). */
export const ATTR_ERROR_TYPE = 'error.type';
/** The fallback `error.type` value when nothing better is known. */
export const ERROR_TYPE_OTHER = '_OTHER';

/** `kafka.message.key` (single-message spans, never when null). */
export const ATTR_KAFKA_MESSAGE_KEY = 'kafka.message.key';
/** `kafka.offset` (int). */
export const ATTR_KAFKA_OFFSET = 'kafka.offset';
/** `kafka.message.tombstone` (only when true). */
export const ATTR_KAFKA_MESSAGE_TOMBSTONE = 'kafka.message.tombstone';
/** `kafka.cluster.id`. */
export const ATTR_KAFKA_CLUSTER_ID = 'kafka.cluster.id';
/** `rabbitmq.destination.routing_key` (when not empty). */
export const ATTR_RABBITMQ_DESTINATION_ROUTING_KEY = 'rabbitmq.destination.routing_key';
/** `rabbitmq.message.delivery_tag`. */
export const ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG = 'rabbitmq.message.delivery_tag';

/** `messaging.system.name` values hoptrace uses (`bullmq` is hoptrace's own; no convention exists). */
export const MESSAGING_SYSTEM = { kafka: 'kafka', rabbitmq: 'rabbitmq', bullmq: 'bullmq' } as const;
/** A value of {@link MESSAGING_SYSTEM}. */
export type MessagingSystem = (typeof MESSAGING_SYSTEM)[keyof typeof MESSAGING_SYSTEM];

/** `messaging.operation.type` values. */
export type MessagingOperationType = 'create' | 'send' | 'receive' | 'process' | 'settle';

/** `messaging.client.operation.duration` (histogram, seconds). */
export const METRIC_MESSAGING_CLIENT_OPERATION_DURATION = 'messaging.client.operation.duration';
/** `messaging.process.duration` (histogram, seconds). */
export const METRIC_MESSAGING_PROCESS_DURATION = 'messaging.process.duration';
/** `messaging.client.sent.messages` (counter). */
export const METRIC_MESSAGING_CLIENT_SENT_MESSAGES = 'messaging.client.sent.messages';
/** `messaging.client.consumed.messages` (counter). */
export const METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES = 'messaging.client.consumed.messages';
/** Bucket boundaries the conventions advise for the duration histograms, in seconds. */
export const MESSAGING_DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/**
 * Older attribute names that backends and dashboards still key on, by the newest name they were
 * renamed to (several when a key was renamed more than once and both older names are in use:
 * `kafka.offset` was `messaging.kafka.offset` before 1.45, which the OpenTelemetry JS kafkajs
 * instrumentation emits, and `messaging.kafka.message.offset` before that, which older agents emit).
 * Emitted in addition to the newest names when `legacyAttributes` is on.
 */
export const LEGACY_ATTRIBUTE_NAMES: Readonly<Record<string, string | readonly string[]>> = {
  [ATTR_MESSAGING_SYSTEM_NAME]: 'messaging.system',
  [ATTR_MESSAGING_OPERATION_TYPE]: 'messaging.operation',
  [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: 'messaging.kafka.consumer.group',
  [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: 'messaging.kafka.destination.partition',
  [ATTR_KAFKA_MESSAGE_KEY]: 'messaging.kafka.message.key',
  [ATTR_KAFKA_OFFSET]: ['messaging.kafka.offset', 'messaging.kafka.message.offset'],
  [ATTR_KAFKA_MESSAGE_TOMBSTONE]: 'messaging.kafka.message.tombstone',
  [ATTR_KAFKA_CLUSTER_ID]: 'messaging.kafka.cluster.id',
  [ATTR_RABBITMQ_DESTINATION_ROUTING_KEY]: 'messaging.rabbitmq.destination.routing_key',
  [ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG]: 'messaging.rabbitmq.message.delivery_tag',
};
