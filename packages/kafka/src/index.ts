/**
 * @hoptrace/kafka: explicit OpenTelemetry tracing wrappers for kafkajs producers and consumers,
 * including batches and transactions. No monkey-patching: wrap the objects you already have.
 *
 * @packageDocumentation
 */

export { MAX_PENDING_TRANSACTION_SENDS } from '@hoptrace/core/adapter';
export {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME,
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  ERROR_TRANSACTION_ABORTED,
} from './attributes.ts';
export { withMessageContext } from './batch.ts';
export { traceConsumer } from './consumer.ts';
export { type DeadLetterOptions, deadLetterMessage, type FailedKafkaMessage } from './dead-letter.ts';
export { traceKafka } from './kafka.ts';
export {
  type BatchSpans,
  DEFAULT_MAX_BATCH_LINKS,
  type KafkaClientOptions,
  type KafkaConsumerOptions,
  type KafkaOptions,
  type KafkaProducerOptions,
} from './options.ts';
export { traceProducer } from './producer.ts';
