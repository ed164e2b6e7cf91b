/**
 * @hoptrace/core: what applications call. Carry a trace context through any message headers, keep
 * it across deferred work as a JSON-safe snapshot, put trace ids, business codes and error codes on
 * log lines, and describe failures that travel to dead-letter and retry destinations. The option
 * types every hoptrace wrapper shares are here too.
 *
 * The plumbing the broker adapters are built from lives at `@hoptrace/core/adapter`.
 *
 * @packageDocumentation
 */

export type { BaggageAllowList } from './baggage.ts';
export { type HeaderCarrier, type HeaderMap, MAX_HEADER_NAME_LENGTH } from './carrier.ts';
export type { ErrorClassification, ErrorClassifier } from './errors.ts';
export { HOP_TRACESTATE_KEY, type TraceBudget } from './hops.ts';
export {
  type FailureInput,
  type FailureLineage,
  failureHeaders,
  failureLineageOf,
  readFailureLineage,
} from './lineage.ts';
export { createLogFields, type LogFields, type LogFieldsOptions, logFields } from './log-fields.ts';
export {
  ATTR_HOPTRACE_ATTEMPT_FINAL,
  ATTR_HOPTRACE_BUDGET_EXCEEDED,
  ATTR_HOPTRACE_CONTROL_FLOW_REASON,
  ATTR_HOPTRACE_ERROR_RETRYABLE,
  ATTR_HOPTRACE_FAILURE_ATTEMPTS,
  ATTR_HOPTRACE_FAILURE_DESTINATION,
  ATTR_HOPTRACE_FAILURE_ERROR_TYPE,
  ATTR_HOPTRACE_FAILURE_OFFSET,
  ATTR_HOPTRACE_FAILURE_PARTITION,
  ATTR_HOPTRACE_FAILURE_RETRYABLE,
  ATTR_HOPTRACE_HOP,
  EVENT_HOPTRACE_CONTROL_FLOW,
  FAILURE_HEADERS,
  HEADER_FAILED_CONTEXT_PREFIX,
  METRIC_HOPTRACE_TIME_IN_QUEUE,
} from './names.ts';
export {
  type EndOpenSpansProcessor,
  ERROR_SHUTDOWN,
  endOpenSpans,
  endOpenSpansOnShutdown,
  MAX_TRACKED_OPEN_OPERATIONS,
} from './open-spans.ts';
export type { ConsumerTracingOptions, TracingOptions } from './options.ts';
export { extractContext, injectContext, withContextHeaders } from './propagation.ts';
export type { RelationPolicy } from './relation.ts';
export type { UnsampledMode } from './sampling.ts';
export {
  type ContextSnapshot,
  captureSnapshot,
  restoreSnapshot,
  SNAPSHOT_VERSION,
} from './snapshot.ts';
