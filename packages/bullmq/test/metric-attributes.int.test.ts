import {
  brokerEndpoint,
  collectMetrics,
  spansNamed,
  TestMetricReader,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

const INSTRUMENTS = [
  'messaging.client.operation.duration',
  'messaging.process.duration',
  'messaging.client.sent.messages',
  'messaging.client.consumed.messages',
  'hoptrace.messaging.time_in_queue',
] as const;

describe.each(BULLMQ_VERSIONS)('BullMQ %s: metric attributes on real Redis (metrics2)', (_label, bullmq) => {
  const { Queue, Worker } = bullmq;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  it('every point of the messaging metrics carries server.address and server.port, as the spans do', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    try {
      const connection = brokerEndpoint('redis');
      const name = uniqueQueueName('metrics2-server');
      const raw = new Queue(name, { connection });
      queues.push(raw);
      const queue = traceQueue(raw, { meterProvider });
      workers.push(
        new Worker(
          name,
          traceProcessor(async () => 'ok', { meterProvider }),
          { connection },
        ),
      );
      await queue.add('a', {});
      const done = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 1,
      );
      const server = {
        'server.address': spansNamed(done, `process ${name}`)[0]?.attributes['server.address'],
        'server.port': spansNamed(done, `process ${name}`)[0]?.attributes['server.port'],
      };
      expect(server['server.address']).toBeTypeOf('string');
      expect(spansNamed(done, `send ${name}`)[0]?.attributes).toMatchObject(server);
      const metrics = await collectMetrics(reader);
      for (const metric of INSTRUMENTS) {
        const points = metrics.get(metric) ?? [];
        expect(points.length, metric).toBeGreaterThan(0);
        for (const point of points) expect(point.attributes, metric).toMatchObject(server);
      }
    } finally {
      await meterProvider.shutdown();
    }
  });
});
