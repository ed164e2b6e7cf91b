import { brokerEndpoint, deferred, useTestTracing } from '@hoptrace/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { deadLetterJobOptions, traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

useTestTracing();

const TRACEPARENT = `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-01`;

/**
 * Metadata within the parse limit whose one extra key is nested thousands of levels deep: parsed
 * fine, but `JSON.stringify` of it overflows the stack.
 */
function deepMetadata(depth: number): string {
  return `{"traceparent":"${TRACEPARENT}","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: deeply nested telemetry metadata', (_label, bullmq) => {
  const { Queue, Worker } = bullmq;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  const connection = () => brokerEndpoint('redis');
  afterEach(async () => cleanup(workers, queues));

  it('a job relayed with its own options and its dead-letter options: neither throws, as without hoptrace', async () => {
    const metadata = deepMetadata(7000);
    expect(metadata.length).toBeLessThan(16_384);
    const inName = uniqueQueueName('deep-in');
    const outName = uniqueQueueName('deep-out');
    const rawIn = new Queue(inName, { connection: connection() });
    const rawOut = new Queue(outName, { connection: connection() });
    queues.push(rawIn, rawOut);
    const out = traceQueue(rawOut);
    const done = deferred<{ relay: unknown; deadLetter: unknown; relayedMetadata: unknown }>();
    const worker = new Worker(
      inName,
      traceProcessor(
        async (job: { opts: { telemetry?: { metadata?: string } }; name: string; data: unknown }) => {
          let relay: unknown = 'ok';
          let deadLetter: unknown = 'ok';
          let relayedMetadata: unknown;
          try {
            const added = await out.add(job.name, job.data, job.opts as never);
            relayedMetadata = (added.opts as { telemetry?: { metadata?: string } }).telemetry?.metadata;
          } catch (error) {
            relay = error;
          }
          try {
            deadLetterJobOptions(job as never, new Error('failed'));
          } catch (error) {
            deadLetter = error;
          }
          done.resolve({ relay, deadLetter, relayedMetadata });
        },
      ),
      { connection: connection() },
    );
    workers.push(worker);
    await rawIn.add('deep', { n: 1 }, { telemetry: { metadata } });
    const result = await done.promise;
    expect(result.relay).toBe('ok');
    expect(result.deadLetter).toBe('ok');
    // The caller's metadata is stored as they gave it, as raw BullMQ stores it.
    expect(result.relayedMetadata).toBe(metadata);
  }, 30_000);
});
