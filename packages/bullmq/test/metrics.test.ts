import { METRIC_HOPTRACE_TIME_IN_QUEUE } from '@hoptrace/core';
import { collectMetrics, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { traceProcessor, traceQueue } from '../src/index.ts';

useTestTracing();

describe('metrics', () => {
  it('records sent and consumed jobs, durations, failures and time in queue', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const queue = traceQueue(
      {
        name: 'orders',
        async add(..._args: unknown[]) {
          return { id: '1' };
        },
      },
      { meterProvider },
    );
    await queue.add('a', {});
    const ok = traceProcessor(async (_job: unknown) => 'ok', { meterProvider });
    const bad = traceProcessor(
      async (_job: unknown) => {
        throw new RangeError('x');
      },
      { meterProvider },
    );
    const job = {
      id: '1',
      name: 'a',
      queueName: 'orders',
      attemptsMade: 0,
      timestamp: Date.now() - 2000,
      opts: { delay: 1000 },
    };
    await ok(job);
    await expect(bad({ ...job, attemptsMade: 1 })).rejects.toThrow(RangeError);
    const metrics = await collectMetrics(reader);
    const base = { 'messaging.system.name': 'bullmq', 'messaging.destination.name': 'orders' };
    expect(metrics.get('messaging.client.sent.messages')).toEqual([
      {
        attributes: { ...base, 'messaging.operation.name': 'send', 'messaging.operation.type': 'send' },
        value: 1,
      },
    ]);
    const consumed = metrics.get('messaging.client.consumed.messages') ?? [];
    expect(consumed).toHaveLength(2);
    expect(consumed).toContainEqual({
      attributes: { ...base, 'messaging.operation.name': 'process' },
      value: 1,
    });
    expect(consumed).toContainEqual({
      attributes: { ...base, 'messaging.operation.name': 'process', 'error.type': 'RangeError' },
      value: 1,
    });
    expect(metrics.get('messaging.process.duration')).toHaveLength(2);
    expect(metrics.get('messaging.client.operation.duration')).toHaveLength(1);
    // Only the first attempt records time in queue: timestamp + delay was ~1 s ago.
    // Core's one time-in-queue metric (name and unit shared with the other adapters).
    expect(METRIC_HOPTRACE_TIME_IN_QUEUE).toBe('hoptrace.messaging.time_in_queue');
    expect(metrics.units.get(METRIC_HOPTRACE_TIME_IN_QUEUE)).toBe('s');
    expect([...metrics.keys()].filter((name) => name.includes('time_in_queue'))).toEqual([
      METRIC_HOPTRACE_TIME_IN_QUEUE,
    ]);
    const waited = metrics.get(METRIC_HOPTRACE_TIME_IN_QUEUE) ?? [];
    expect(waited).toHaveLength(1);
    const histogram = waited[0]?.value as { count: number; sum: number };
    expect(histogram.count).toBe(1);
    expect(histogram.sum).toBeGreaterThanOrEqual(0.99);
    expect(histogram.sum).toBeLessThan(1.5);
    await meterProvider.shutdown();
  });
});
