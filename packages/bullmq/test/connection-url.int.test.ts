import { brokerEndpoint, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

describe.each(BULLMQ_VERSIONS)('BullMQ %s: a `url` connection', (_label, bullmq) => {
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];

  afterEach(async () => {
    await cleanup(workers, queues);
  });

  it('gives the send and process spans the URL host and port as server.*, without its credentials', async () => {
    const { host, port } = brokerEndpoint('redis');
    const connection = { url: `redis://default:secret@${host}:${port}` };
    const name = uniqueQueueName('url');
    const raw = new bullmq.Queue(name, { connection });
    queues.push(raw);
    const worker = new bullmq.Worker(
      name,
      traceProcessor(async () => 'ok'),
      { connection },
    );
    workers.push(worker);
    await traceQueue(raw).add('greet', {});
    const spans = await waitForSpans(
      tracing.current.spans,
      (all) => spansNamed(all, `process ${name}`).length === 1,
    );
    for (const span of [...spansNamed(spans, `send ${name}`), ...spansNamed(spans, `process ${name}`)]) {
      expect(span.attributes['server.address'], span.name).toBe(host);
      expect(span.attributes['server.port'], span.name).toBe(port);
      expect(JSON.stringify(span.attributes)).not.toContain('secret');
    }
  });
});
