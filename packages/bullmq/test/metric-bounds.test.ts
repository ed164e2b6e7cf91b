import { DEFAULT_METRIC_ATTRIBUTE_SETS } from '@hoptrace/core/adapter';
import { metricPoints, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';

useTestTracing();

const WRAPPERS = DEFAULT_METRIC_ATTRIBUTE_SETS + 144;

describe('the metric series cap holds across wrappers (a Queue or a Worker per queue name)', () => {
  it('queues traced one per name never add series past the cap: past it, new queues are counted without a name', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    for (let i = 0; i < WRAPPERS; i++) {
      const queue = traceQueue(
        { name: `q-${i}`, opts: {}, add: async (..._args: unknown[]) => ({ id: '1' }) },
        { meterProvider },
      );
      await queue.add('job', {});
    }
    const sent = await metricPoints(reader, 'messaging.client.sent.messages');
    expect(sent.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    expect(sent.reduce((n, p) => n + Number(p.value), 0)).toBe(WRAPPERS);
    expect(sent.some((p) => p.attributes['messaging.destination.name'] === undefined)).toBe(true);
    await meterProvider.shutdown();
  });

  it('processors traced one per worker never add series past the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    for (let i = 0; i < WRAPPERS; i++) {
      const processor = traceProcessor(async (_job: unknown) => 'ok', { meterProvider });
      await processor({ id: '1', name: 'n', queueName: `q-${i}`, attemptsMade: 1 });
    }
    const consumed = await metricPoints(reader, 'messaging.client.consumed.messages');
    expect(consumed.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    expect(consumed.reduce((n, p) => n + Number(p.value), 0)).toBe(WRAPPERS);
    await meterProvider.shutdown();
  });

  it('queues and flow producers share the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const half = Math.ceil(WRAPPERS / 2);
    for (let i = 0; i < half; i++) {
      const queue = traceQueue(
        { name: `q-${i}`, opts: {}, add: async (..._args: unknown[]) => ({ id: '1' }) },
        { meterProvider },
      );
      await queue.add('job', {});
      const flow = traceFlowProducer(
        { opts: {}, add: async (..._args: unknown[]) => ({ job: { id: '1' } }) },
        { meterProvider },
      );
      await flow.add({ name: 'root', queueName: `f-${i}` });
    }
    const sent = await metricPoints(reader, 'messaging.client.sent.messages');
    expect(sent.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    await meterProvider.shutdown();
  });
});
