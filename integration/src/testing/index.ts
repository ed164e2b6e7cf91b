export { onlySpan, parentSpanId, spansNamed, waitForSpans } from './spans.ts';
export { installTestTracing, makePropagator, type TestPropagator, type TestTracing } from './tracing.ts';
export { useTestTracing } from './vitest.ts';
