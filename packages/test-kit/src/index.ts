/**
 * @hoptrace/test-kit: what hoptrace's tests share. In-memory test tracing with a leak check and
 * a check of the SDK's span-misuse complaints, span
 * look-ups, an on-demand metric reader, the endpoint of each real broker the harness resolved, and
 * small async helpers. The broker harness itself (resolution, local Kafka, Testcontainers) is under
 * `@hoptrace/test-kit/harness`.
 *
 * @packageDocumentation
 */

export { type Deferred, deferred, sleep, until } from './async.ts';
export { brokerEndpoint } from './harness/endpoint.ts';
export type { BrokerEndpoints, BrokerKind } from './harness/types.ts';
export { type AllUndefined, allUndefined, type MaybeSet } from './options.ts';
export {
  collectMetrics,
  type MetricPoint,
  metricPoints,
  TestMetricReader,
} from './tracing/metrics.ts';
export { assertNoSpanMisuse, takeSpanMisuse, watchSpanMisuse } from './tracing/span-misuse.ts';
export {
  onlySpan,
  parentSpanId,
  type SpanShape,
  spanShapes,
  spanShapesOf,
  spansNamed,
  waitForSpans,
} from './tracing/spans.ts';
export {
  installTestTracing,
  makePropagator,
  type TestPropagator,
  type TestTracing,
  type TestTracingOptions,
} from './tracing/tracing.ts';
export { useTestTracing } from './tracing/vitest.ts';
