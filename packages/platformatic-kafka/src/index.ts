/**
 * @hoptrace/platformatic-kafka: explicit OpenTelemetry tracing wrappers for @platformatic/kafka
 * producers and consumer streams, speaking the same headers, span names and attributes as
 * @hoptrace/kafka. No monkey-patching and no global subscription: wrap the clients you have.
 *
 * @packageDocumentation
 */

export {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME,
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  ATTR_HOPTRACE_PROCESS_TIMED_OUT,
  ERROR_STREAM_CLOSED,
  ERROR_TRANSACTION_ABORTED,
  MAX_PENDING_TRANSACTION_SENDS,
} from './attributes.ts';
export { type TraceableConsumer, traceConsumer } from './consumer.ts';
export {
  type DeadLetterMessage,
  type DeadLetterOptions,
  deadLetterMessage,
  type FailedMessage,
} from './dead-letter.ts';
export { withBatchContext, withMessageContext } from './message-spans.ts';
export {
  type BatchSpans,
  DEFAULT_MAX_BATCH_LINKS,
  DEFAULT_MAX_PROCESSING_MS,
  type PlatformaticClientOptions,
  type PlatformaticConsumerOptions,
  type PlatformaticProducerOptions,
} from './options.ts';
export { type TraceableProducer, traceProducer } from './producer.ts';
export { MAX_OPEN_STREAM_SENDS, STREAM_CLOSE_GRACE_MS } from './producer-stream.ts';
