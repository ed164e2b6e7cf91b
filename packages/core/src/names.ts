/**
 * hoptrace's own attribute, event, metric and header names: what the OpenTelemetry conventions do
 * not define yet. Everything here lives under `hoptrace.` (attributes, metrics) or `hoptrace-`
 * (headers), so it never collides with the conventions or a broker's own names.
 *
 * @packageDocumentation
 */

/** Hop number of a consumer span, when a hop budget is configured (1 = first hop after the producer). */
export const ATTR_HOPTRACE_HOP = 'hoptrace.hop';
/** `true` on a consumer span whose trace was restarted because the hop budget ran out. */
export const ATTR_HOPTRACE_BUDGET_EXCEEDED = 'hoptrace.trace_budget.exceeded';

/** Whether retrying the failed operation could succeed (from the error classifier or the broker). */
export const ATTR_HOPTRACE_ERROR_RETRYABLE = 'hoptrace.error.retryable';
/** `true` on the attempt after which no retry follows (attempts exhausted, or not retryable). */
export const ATTR_HOPTRACE_ATTEMPT_FINAL = 'hoptrace.attempt.final';

/** Event added when a handler signalled control flow (e.g. BullMQ's `DelayedError`), not failure. */
export const EVENT_HOPTRACE_CONTROL_FLOW = 'hoptrace.control_flow';
/** The control-flow signal's name, on {@link EVENT_HOPTRACE_CONTROL_FLOW}. */
export const ATTR_HOPTRACE_CONTROL_FLOW_REASON = 'hoptrace.control_flow.reason';

/**
 * On the span of a message that is a dead-letter or retry copy of an earlier failed one (see the
 * `hoptrace-*` lineage headers): the destination the failed message was consumed from.
 */
export const ATTR_HOPTRACE_FAILURE_DESTINATION = 'hoptrace.failure.destination';
/** The failed attempt's `error.type`. */
export const ATTR_HOPTRACE_FAILURE_ERROR_TYPE = 'hoptrace.failure.error.type';
/** Whether the failure was classified retryable. */
export const ATTR_HOPTRACE_FAILURE_RETRYABLE = 'hoptrace.failure.retryable';
/** How many attempts were made before the message was dead-lettered or sent for retry. */
export const ATTR_HOPTRACE_FAILURE_ATTEMPTS = 'hoptrace.failure.attempts';
/** The failed message's partition (Kafka). */
export const ATTR_HOPTRACE_FAILURE_PARTITION = 'hoptrace.failure.partition';
/** The failed message's offset (Kafka). */
export const ATTR_HOPTRACE_FAILURE_OFFSET = 'hoptrace.failure.offset';

/**
 * `hoptrace.messaging.time_in_queue` (histogram, seconds): from the moment a message was created
 * (Kafka message timestamp, AMQP `timestamp` property, BullMQ job due time) to the start of its
 * processing. Attributes: the processing's metric set as it starts (system, operation name,
 * destination when low-cardinality, consumer group, server address and port); never `error.type`.
 */
export const METRIC_HOPTRACE_TIME_IN_QUEUE = 'hoptrace.messaging.time_in_queue';

/**
 * Lineage headers a dead-letter or retry copy of a failed message carries, all plain strings so any
 * client in any language can read them. The failed attempt's trace context travels too, under
 * {@link HEADER_FAILED_CONTEXT_PREFIX} + each propagation field (`hoptrace-failed-traceparent` with
 * W3C, `hoptrace-failed-b3` with B3).
 */
export const FAILURE_HEADERS = {
  /** The destination the failed message was consumed from (topic, queue). */
  destination: 'hoptrace-original-destination',
  /** Kafka: the failed message's partition, decimal. */
  partition: 'hoptrace-original-partition',
  /** Kafka: the failed message's offset, decimal. */
  offset: 'hoptrace-original-offset',
  /** The failure's `error.type`. */
  errorType: 'hoptrace-error-type',
  /** The failure's message, cut to 256 characters. */
  errorMessage: 'hoptrace-error-message',
  /** `true` or `false`, when known. */
  retryable: 'hoptrace-error-retryable',
  /** Attempts made so far, decimal. */
  attempts: 'hoptrace-attempts',
} as const;

/** Prefix of the headers that carry the failed attempt's trace context (one per propagation field). */
export const HEADER_FAILED_CONTEXT_PREFIX = 'hoptrace-failed-';
