import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { FlowProducer, type Job, Queue, Worker } from 'bullmq';
import { BullMQOtel } from 'bullmq-otel';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';
import { cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

/** Spans by who made them: hoptrace's scope, or BullMQ's own telemetry (bullmq-otel). */
function fromScope(spans: readonly ReadableSpan[], scope: string, name: string): ReadableSpan {
  const found = spans.filter((s) => s.instrumentationScope.name === scope && s.name === name);
  expect(found, `${scope}: ${name}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

// bullmq-otel 2 requires BullMQ >= 6: this runs on the newest supported BullMQ.
describe('BullMQ 6 with its own telemetry (bullmq-otel) on the same Queue and Worker as hoptrace', () => {
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  it('each tool makes its own spans, every parent is one of the spans exported, one trace end to end', async () => {
    const connection = brokerEndpoint('redis');
    const name = uniqueQueueName('otel');
    const telemetry = new BullMQOtel({ tracerName: 'bullmq-own' });
    const raw = new Queue(name, { connection, telemetry });
    queues.push(raw);
    const queue = traceQueue(raw);
    const activeInProcessor = deferred<string | undefined>();
    const worker = new Worker(
      name,
      traceProcessor(async () => {
        activeInProcessor.resolve(trace.getActiveSpan()?.spanContext().spanId);
        return 'ok';
      }),
      { connection, telemetry },
    );
    workers.push(worker);
    const completed = deferred();
    worker.on('completed', () => completed.resolve());
    await trace.getTracer('test').startActiveSpan('request', async (span) => {
      try {
        await queue.add('job', { a: 1 });
      } finally {
        span.end();
      }
    });
    await completed.promise;
    const spans = await waitForSpans(tracing.current.spans, (s) =>
      s.some((x) => x.instrumentationScope.name === 'bullmq-own' && x.name === `process ${name}`),
    );
    const request = onlySpan(spans, 'request');
    const send = fromScope(spans, '@hoptrace/bullmq', `send ${name}`);
    const add = fromScope(spans, 'bullmq-own', `add ${name}.job`);
    const ownProcess = fromScope(spans, 'bullmq-own', `process ${name}`);
    const process = fromScope(spans, '@hoptrace/bullmq', `process ${name}`);
    // hoptrace's send wraps BullMQ's add; BullMQ 6 then stores its own add span's context in the job
    // (it replaces the metadata on add), so both processing spans are children of BullMQ's add span.
    expect(parentSpanId(send)).toBe(request.spanContext().spanId);
    expect(parentSpanId(add)).toBe(send.spanContext().spanId);
    expect(add.kind).toBe(SpanKind.PRODUCER);
    expect(parentSpanId(ownProcess)).toBe(add.spanContext().spanId);
    expect(parentSpanId(process)).toBe(add.spanContext().spanId);
    expect(await activeInProcessor.promise).toBe(process.spanContext().spanId);
    const exported = new Set(spans.map((s) => s.spanContext().spanId));
    const traceId = request.spanContext().traceId;
    for (const s of [send, add, ownProcess, process]) {
      expect(s.spanContext().traceId).toBe(traceId);
      expect(exported.has(parentSpanId(s) as string), s.name).toBe(true);
    }
  });

  it("a hoptrace flow parent's metadata relayed by bullmq-otel's addBulk and flow nodes (kept as given): the relayed jobs link to none of the parent's children", async () => {
    const connection = brokerEndpoint('redis');
    const telemetry = new BullMQOtel({ tracerName: 'bullmq-own' });
    const parentName = uniqueQueueName('otel-parent');
    const childName = uniqueQueueName('otel-child');
    const nextName = uniqueQueueName('otel-next');
    const next = new Queue(nextName, { connection, telemetry });
    const theirFlow = new FlowProducer({ connection, telemetry });
    for (const q of [new Queue(parentName, { connection }), new Queue(childName, { connection }), next])
      queues.push(q);
    const flow = traceFlowProducer(new FlowProducer({ connection }), { createSpans: true });
    let relayedMetadata: string | undefined;
    let processed = 0;
    const relayed = deferred();
    const run = (name: string, fn: (job: Job) => Promise<unknown>) => {
      const worker = new Worker(name, traceProcessor(fn), { connection });
      workers.push(worker);
    };
    run(childName, async () => 'child');
    run(parentName, async (job) => {
      const { telemetry } = job.opts;
      relayedMetadata = telemetry?.metadata;
      if (!telemetry) throw new Error('the flow parent carries no telemetry');
      const opts = { telemetry };
      await next.addBulk([{ name: 'bulk', data: {}, opts }]);
      await theirFlow.add({ name: 'node', queueName: nextName, data: {}, opts });
    });
    run(nextName, async () => {
      if (++processed === 2) relayed.resolve();
    });
    try {
      await flow.add({
        name: 'order',
        queueName: parentName,
        children: [
          { name: 'a', queueName: childName },
          { name: 'b', queueName: childName },
        ],
      });
      await relayed.promise;
    } finally {
      await flow.close();
      await theirFlow.close();
    }
    // The parent's attempt ends when BullMQ records its completion, which can come after the relayed
    // jobs ran: wait for it too.
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) =>
        spansNamed(s, `process ${nextName}`).length === 2 &&
        spansNamed(s, `process ${parentName}`).length === 1,
    );
    expect(relayedMetadata).toContain('hoptrace-children');
    expect(onlySpan(spans, `process ${parentName}`).links).toHaveLength(2);
    const parentCreate = onlySpan(spans, `create ${parentName}`);
    for (const process of spansNamed(spans, `process ${nextName}`)) {
      // bullmq-otel kept the metadata it was given: the relayed job continues the parent's context.
      expect(parentSpanId(process)).toBe(parentCreate.spanContext().spanId);
      expect(process.links, String(process.attributes['bullmq.job.name'])).toEqual([]);
    }
  });
});
