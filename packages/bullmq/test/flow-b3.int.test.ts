import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

// B3 single-header registered globally: every context, the flow children's included, must use it.
const tracing = useTestTracing({ propagator: 'b3' });

describe.each(BULLMQ_VERSIONS)('BullMQ %s: flows under the B3 propagator', (_label, bullmq) => {
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  it('children contexts go through the registered propagator: the parent links to each child, nodes carry b3', async () => {
    const connection = brokerEndpoint('redis');
    const parentName = uniqueQueueName('b3-parent');
    const childName = uniqueQueueName('b3-child');
    for (const name of [parentName, childName]) queues.push(new bullmq.Queue(name, { connection }));
    const flow = traceFlowProducer(new bullmq.FlowProducer({ connection }), { createSpans: true });
    const done = deferred();
    workers.push(
      new bullmq.Worker(
        childName,
        traceProcessor(async () => 'child'),
        { connection },
      ),
      new bullmq.Worker(
        parentName,
        traceProcessor(async () => {
          done.resolve();
        }),
        { connection },
      ),
    );
    try {
      const tree = await flow.add({
        name: 'order',
        queueName: parentName,
        children: [
          { name: 'a', queueName: childName },
          { name: 'b', queueName: childName },
        ],
      });
      await done.promise;
      const stored = await bullmq.Job.fromId(
        queues[0] as InstanceType<typeof bullmq.Queue>,
        tree.job.id as string,
      );
      const carrier = JSON.parse(stored?.opts.telemetry?.metadata ?? '{}') as Record<string, unknown>;
      expect(typeof carrier.b3).toBe('string');
      expect(carrier.traceparent).toBeUndefined();
      const children = carrier['hoptrace-children'] as Record<string, unknown>[];
      expect(children).toHaveLength(2);
      for (const child of children) expect(Object.keys(child)).toEqual(['b3']);
    } finally {
      await flow.close();
    }
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) =>
        spansNamed(s, `process ${parentName}`).length === 1 &&
        spansNamed(s, `process ${childName}`).length === 2,
    );
    const parentProcess = onlySpan(spans, `process ${parentName}`);
    const parentCreate = onlySpan(spans, `create ${parentName}`);
    const childCreates = spansNamed(spans, `create ${childName}`).map((c) => c.spanContext().spanId);
    expect(parentSpanId(parentProcess)).toBe(parentCreate.spanContext().spanId);
    expect(parentProcess.links.map((l) => l.context.spanId).sort()).toEqual([...childCreates].sort());
  });
});
