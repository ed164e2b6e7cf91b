/**
 * @hoptrace/core/adapter: the plumbing hoptrace's broker adapters are built from. One way to wrap a
 * client (`interceptMethods`), one way to settle an operation (`Operation`), span templates and
 * consumer/producer span starts under the relation policy, parse-once propagation helpers, bounded
 * caches, classification, failure lineage, conventions constants and option validation.
 *
 * Applications need only the root entry, `@hoptrace/core`; this entry is for adapter authors.
 *
 * @packageDocumentation
 */

export {
  capValue,
  MAX_ATTRIBUTE_VALUE_LENGTH,
  MAX_DESTINATION_LENGTH,
  messageLink,
  setSpanAttributes,
  withLegacyNames,
} from './attributes.ts';
export {
  type BaggageReader,
  compileBaggageAllowList,
  DEFAULT_MAX_BAGGAGE_VALUE_LENGTH,
} from './baggage.ts';
export {
  headerGetter,
  headerName,
  headerText,
  limitedText,
  mapHeaderView,
  receivedHeaderGetter,
  recordSetter,
} from './carrier.ts';
export { type ClientAttributes, clientTemplates } from './client-templates.ts';
export { copyWith } from './copy.ts';
export { type DeliverySpan, startDeliverySpan } from './delivery.ts';
export {
  classifyError,
  describeError,
  errorTypeOf,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_ERROR_TYPE_LENGTH,
  type ResolvedFailure,
  recordedErrorType,
  recordFailure,
} from './errors.ts';
export {
  checkFailureCopyOptions,
  FAILURE_COPY_OPTION_KEYS,
  type FailureCopyOptions,
  isLineageHeader,
  nextFailureHeaders,
} from './failure-copy.ts';
export { fieldCaseVariants, propagatorFields } from './field-case.ts';
export { FirstDeliveries, MAX_FIRST_DELIVERY_TOPICS } from './first-deliveries.ts';
export { runHook } from './hooks.ts';
export { hopCount, relayHop, restartedFrom, withBudgetRestart } from './hops.ts';
export {
  type ControlFlowSignal,
  createInstrumentation,
  type Instrumentation,
  type InstrumentationScope,
} from './instrumentation.ts';
export {
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  addKafkaMessageAttributes,
  addKafkaPositionAttributes,
  type KafkaMessageFields,
  type MessagePosition,
  messagePositions,
  type ProducedPartition,
} from './kafka-message.ts';
export {
  ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME,
  ERROR_TRANSACTION_ABORTED,
  holdTransactionalSend,
  KAFKA_OPERATIONS,
  type KafkaOperation,
  MAX_PENDING_TRANSACTION_SENDS,
  PendingSends,
  runTransactionalSend,
  settleAllTransactions,
  settleTransaction,
  startTransactionEnd,
  type TransactionOutcome,
} from './kafka-transaction.ts';
export {
  acceptHeaderText,
  acceptTraceState,
  MAX_BAGGAGE_BYTES,
  MAX_BAGGAGE_MEMBERS,
  MAX_HEADER_NAMES_LISTED,
  MAX_PROPAGATION_HEADER_LENGTH,
  MAX_TRACESTATE_LENGTH,
  MAX_TRACESTATE_MEMBERS,
} from './limits.ts';
export {
  lineageAttributes,
  lineageLinks,
  MAX_LINEAGE_MESSAGE_LENGTH,
  withFailureLineage,
} from './lineage.ts';
export type { Listener, ListenerOptions, Receiver } from './listener-receiver.ts';
export {
  DEFAULT_METRIC_ATTRIBUTE_SETS,
  MetricAttributeCache,
  type MetricServer,
  metricAttributesOf,
  metricServerOf,
  type OperationMetric,
  operationMetric,
} from './metric-attributes.ts';
export { createMessagingMetrics, MessagingMetrics, type MetricOperation } from './metrics.ts';
export { Operation } from './operation.ts';
export {
  assertKnownOptions,
  CONSUMER_TRACING_OPTION_KEYS,
  type OptionKeys,
  TRACING_OPTION_KEYS,
} from './option-keys.ts';
export { type OwnEmitter, type OwnListenerSpec, type OwnListeners, ownListeners } from './own-listeners.ts';
export {
  callerSpanContext,
  extractContextUnchecked,
  fieldsToAdd,
  injectContextUnchecked,
  type MessageContext,
  readMessageContext,
  sendHeaders,
} from './propagation.ts';
export { type ConsumerStart, consumerStart, RELATION_POLICIES } from './relation.ts';
export { UNSAMPLED_MODES, UnsampledPolicy, unsampledParent } from './sampling.ts';
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
export {
  DEFAULT_SPAN_TEMPLATES,
  MESSAGING_SPAN_OPERATIONS,
  OPERATION_SPAN_KIND,
  OperationTemplates,
  type SpanOperation,
  type SpanTemplate,
  SpanTemplates,
} from './span-templates.ts';
export {
  type ConsumerSpan,
  type StartOptions,
  startClientSpan,
  startConsumerSpan,
  startSpanFromTemplate,
} from './spans.ts';
export { TIME_IN_QUEUE_MAX_MS, TIME_IN_QUEUE_MAX_SKEW_MS, timeInQueueSeconds } from './time-in-queue.ts';
export {
  assertClient,
  assertContext,
  assertOptionalBoolean,
  assertOptionalFunction,
  assertOptionalHost,
  assertOptionalInteger,
  assertOptionalNumber,
  assertOptionalOneOf,
  assertOptionalString,
  assertOptionsObject,
  describeKind,
  describeValue,
  isHostName,
  MAX_TIMEOUT_MS,
  redactCredentials,
} from './validate.ts';
export {
  asAwaited,
  existingWrapper,
  type InterceptOptions,
  type Interceptor,
  interceptMethods,
  isThenable,
  isWrapper,
  registerWrapper,
} from './wrap.ts';
