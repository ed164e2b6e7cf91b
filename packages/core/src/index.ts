/**
 * @hoptrace/core: broker-agnostic context propagation, context snapshots, span lifecycle, log
 * correlation, baggage allow-listing and messaging metrics for the hoptrace adapters.
 *
 * @packageDocumentation
 */

export { setSpanAttributes, withLegacyNames } from './attributes.ts';
export {
  type BaggageAllowList,
  type BaggageReader,
  compileBaggageAllowList,
  DEFAULT_MAX_BAGGAGE_VALUE_LENGTH,
} from './baggage.ts';
export { type HeaderCarrier, headerGetter, headerText, recordSetter } from './carrier.ts';
export { type StartedConsumerSpan, startConsumerSpan } from './consumer-span.ts';
export { errorTypeOf, recordFailure } from './errors.ts';
export { runHook } from './hooks.ts';
export { createInstrumentation, type Instrumentation } from './instrumentation.ts';
export {
  MAX_BAGGAGE_BYTES,
  MAX_BAGGAGE_MEMBERS,
  MAX_TRACESTATE_LENGTH,
  MAX_TRACESTATE_MEMBERS,
} from './limits.ts';
export { type LogFields, logFields } from './log-fields.ts';
export { type MessagingSpanSpec, OPERATION_SPAN_KIND, startMessagingSpan } from './messaging-span.ts';
export { MessagingMetrics } from './metrics.ts';
export {
  assertOptionalBoolean,
  assertOptionalFunction,
  assertOptionalInteger,
  assertOptionalNumber,
  assertOptionalOneOf,
  type ConsumerTracingOptions,
  type TracingOptions,
} from './options.ts';
export { extractContext, hasPropagationHeaders, injectContext, withContextHeaders } from './propagation.ts';
export {
  ATTR_HOPTRACE_BUDGET_EXCEEDED,
  ATTR_HOPTRACE_HOP,
  type ConsumerStart,
  consumerStart,
  HOP_TRACESTATE_KEY,
  hopCount,
  RELATION_POLICIES,
  type RelationPolicy,
  type TraceBudget,
} from './relation.ts';
export { type RunInSpanOptions, runInSpan } from './run-in-span.ts';
export {
  ATTR_ERROR_TYPE,
  ATTR_KAFKA_CLUSTER_ID,
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_ANONYMOUS,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_DESTINATION_TEMPLATE,
  ATTR_MESSAGING_DESTINATION_TEMPORARY,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_MESSAGE_CONVERSATION_ID,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM_NAME,
  ATTR_RABBITMQ_DESTINATION_ROUTING_KEY,
  ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ERROR_TYPE_OTHER,
  LEGACY_ATTRIBUTE_NAMES,
  MESSAGING_DURATION_BUCKETS,
  MESSAGING_SYSTEM,
  METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES,
  METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
  METRIC_MESSAGING_CLIENT_SENT_MESSAGES,
  METRIC_MESSAGING_PROCESS_DURATION,
  type MessagingOperationType,
  type MessagingSystem,
} from './semconv.ts';
export { type ContextSnapshot, captureSnapshot, fillSnapshot, restoreSnapshot } from './snapshot.ts';
export { SnapshotPool, type SnapshotPoolStats } from './snapshot-pool.ts';
export { SpanHandle } from './span-handle.ts';
