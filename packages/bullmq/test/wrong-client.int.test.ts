import { brokerEndpoint, useTestTracing } from '@hoptrace/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

describe.each(BULLMQ_VERSIONS)('BullMQ %s: the wrong client is refused when you wrap', (_label, bullmq) => {
  const queues: QueueHandle[] = [];
  const closers: Array<{ close(): Promise<void> }> = [];
  const workers: WorkerHandle[] = [];
  afterEach(async () => {
    await cleanup(workers, queues);
    for (const c of closers.splice(0)) await c.close().catch(() => undefined);
  });

  it('traceQueue refuses a FlowProducer and traceFlowProducer a Queue (both have add), naming what they got', async () => {
    const queue = new bullmq.Queue(uniqueQueueName('wrong-client'), { connection: brokerEndpoint('redis') });
    queues.push(queue);
    const flow = new bullmq.FlowProducer({ connection: brokerEndpoint('redis') });
    closers.push(flow);
    // Before: both were wrapped. A FlowProducer as a queue made `send undefined` spans and stored no
    // context on any node; a Queue as a flow producer traced no add at all. Without a word.
    expect(() => traceQueue(flow as never)).toThrow(
      new TypeError('Expected `queue` to be a BullMQ Queue, got a FlowProducer without a name'),
    );
    expect(() => traceFlowProducer(queue as never)).toThrow(
      new TypeError(
        'Expected `flowProducer` to be a BullMQ FlowProducer, got a Queue (wrap it with traceQueue)',
      ),
    );
    // Each wrapper still takes its own client, and adds to it traced.
    const tracedQueue = traceQueue(queue);
    const tracedFlow = traceFlowProducer(flow);
    const job = await tracedQueue.add('a', {});
    await tracedFlow.add({ name: 'root', queueName: queue.name, data: {} });
    const sends = tracing.current.spans().filter((s) => s.name === `send ${queue.name}`);
    expect(sends).toHaveLength(2);
    expect(JSON.parse(String(job.opts.telemetry?.metadata)).traceparent).toBe(
      `00-${sends[0]?.spanContext().traceId}-${sends[0]?.spanContext().spanId}-01`,
    );
  });

  it('refuses null, a plain object and a Worker with the same message shape', () => {
    const worker = new bullmq.Worker(uniqueQueueName('wrong-client'), null, {
      connection: brokerEndpoint('redis'),
      autorun: false,
    });
    workers.push(worker);
    for (const [value, got] of [
      [null, 'null'],
      [{}, 'an object without add()'],
      [worker, 'a Worker without add()'],
    ] as const) {
      expect(() => traceQueue(value as never)).toThrow(
        new TypeError(`Expected \`queue\` to be a BullMQ Queue, got ${got}`),
      );
      expect(() => traceFlowProducer(value as never)).toThrow(
        new TypeError(`Expected \`flowProducer\` to be a BullMQ FlowProducer, got ${got}`),
      );
    }
  });
});
