import { type LogLine, memoryLogger, type Pipeline, startPipeline } from '@hoptrace/integration/pipeline';
import {
  brokerEndpoint,
  installTestTracing,
  type TestPropagator,
  type TestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderTrace } from './helpers.ts';

// The same pipeline under a B3 propagator, and with sampling off: context must still flow end to end.
async function withPipeline(options: { propagator?: TestPropagator; sampled?: boolean }) {
  const tracing = installTestTracing(options);
  const logs = memoryLogger();
  const pipeline = await startPipeline({
    endpoints: {
      kafka: brokerEndpoint('kafka'),
      rabbitmq: brokerEndpoint('rabbitmq'),
      redis: brokerEndpoint('redis'),
    },
    logger: logs.logger,
  });
  return { tracing, pipeline, lines: logs.lines };
}

describe.each<TestPropagator>(['b3', 'b3multi'])(
  'the pipeline with the %s propagator registered',
  (propagator) => {
    let env: { tracing: TestTracing; pipeline: Pipeline; lines: LogLine[] };
    beforeAll(async () => {
      env = await withPipeline({ propagator });
    });
    afterAll(async () => {
      await env.pipeline.stop();
      await env.tracing.assertNoOpenSpans(5000);
      await env.tracing.uninstall();
    });

    it('keeps one trace across all three brokers', async () => {
      const { traceId, done } = await env.pipeline.placeOrder({
        id: `order-${propagator}`,
        tenant: 'acme',
        items: 1,
      });
      await expect(done).resolves.toMatchObject({ status: 'fulfilled' });
      await waitForSpans(
        env.tracing.spans,
        (all) => all.filter((s) => s.spanContext().traceId === traceId).length >= 7,
      );
      const t = orderTrace(env.tracing.spans(), traceId, env.pipeline.names);
      expect(t.bullProcess).toHaveLength(1);
      expect(t.bullProcess[0]?.attributes['tenant.id']).toBe('acme');
    });
  },
);

describe('the pipeline with sampling off', () => {
  let env: { tracing: TestTracing; pipeline: Pipeline; lines: LogLine[] };
  beforeAll(async () => {
    env = await withPipeline({ sampled: false });
  });
  afterAll(async () => {
    await env.pipeline.stop();
    await env.tracing.uninstall();
  });

  it('records no spans but carries the trace id to every hop', async () => {
    const { traceId, done } = await env.pipeline.placeOrder({
      id: 'order-unsampled',
      tenant: 'acme',
      items: 1,
    });
    await expect(done).resolves.toMatchObject({ status: 'fulfilled' });
    const hops = ['http', 'kafka', 'rabbitmq', 'bullmq'];
    const lines = env.lines.filter((l) => (l as { orderId?: string }).orderId === 'order-unsampled');
    expect(new Set(lines.map((l) => l.hop))).toEqual(new Set(hops));
    for (const line of lines) {
      expect(line.trace_id).toBe(traceId);
      expect(line.trace_flags).toBe('00');
    }
    // Each hop ran in a span of its own (distinct span ids), though none was recorded.
    expect(new Set(lines.map((l) => l.span_id)).size).toBe(hops.length);
    expect(env.tracing.spans()).toHaveLength(0);
  });
});
