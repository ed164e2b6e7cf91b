import { brokerEndpoint, deferred, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

describe.each(BULLMQ_VERSIONS)('BullMQ %s: messaging conventions on real Redis', (_label, bullmq) => {
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  const connection = () => brokerEndpoint('redis');
  afterEach(async () => cleanup(workers, queues));

  it('every span: name, kind, system, operation, destination, server.*; batch count on batches only; no payload', async () => {
    const name = uniqueQueueName('conv');
    const raw = new bullmq.Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const second = new bullmq.Queue(name, { connection: connection() });
    queues.push(second);
    const withCreates = traceQueue(second, { createSpans: true });
    const flows = traceFlowProducer(new bullmq.FlowProducer({ connection: connection() }));
    const done = deferred();
    let processed = 0;
    const worker = new bullmq.Worker(
      name,
      traceProcessor(async () => {
        if (++processed === 6) done.resolve();
      }),
      { connection: connection() },
    );
    workers.push(worker);
    await queue.add('one', { secret: 'payload' }, { attempts: 2, jobId: 'job-1' });
    await queue.add('plain', { secret: 'payload' });
    await withCreates.addBulk([
      { name: 'b1', data: { secret: 'payload' } },
      { name: 'b2', data: { secret: 'payload' } },
    ]);
    await flows.add({ name: 'parent', queueName: name, children: [{ name: 'child', queueName: name }] });
    await done.promise;
    await flows.close();
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 6,
    );
    const server = { 'server.address': connection().host, 'server.port': connection().port };
    const base = { 'messaging.system.name': 'bullmq', 'messaging.destination.name': name, ...server };
    const kinds = new Set<string>();
    for (const span of spans) {
      const operation = span.attributes['messaging.operation.name'];
      expect(span.name).toBe(`${String(operation)} ${name}`);
      expect(span.attributes).toMatchObject(base);
      expect(JSON.stringify(span.attributes)).not.toContain('payload');
      kinds.add(
        `${SpanKind[span.kind]} ${span.name} ${String(span.attributes['messaging.batch.message_count'] ?? '-')}`,
      );
    }
    // add: single-message send; addBulk with create spans: CLIENT send of 2; flow.add: send of 2 nodes.
    expect([...kinds].sort()).toEqual(
      [
        `PRODUCER send ${name} -`,
        `CLIENT send ${name} 2`,
        `PRODUCER send ${name} 2`,
        `PRODUCER create ${name} -`,
        `CONSUMER process ${name} -`,
      ].sort(),
    );
    const byId = new Map(
      spansNamed(spans, `process ${name}`).map((s) => [String(s.attributes['messaging.message.id']), s]),
    );
    const one = byId.get('job-1') as ReadableSpan;
    expect(one.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'bullmq.job.name': 'one',
      'bullmq.job.attempt': 1,
      'bullmq.job.attempts': 2,
    });
    // A job added without attempts: BullMQ stores 0, which is no configured count.
    for (const span of byId.values()) {
      if (span !== one) expect(span.attributes['bullmq.job.attempts']).toBeUndefined();
    }
  });
});
