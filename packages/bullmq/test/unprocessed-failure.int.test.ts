// BullMQ 6 moves some jobs to active and fails them without calling the processor: a flow parent
// whose `failParentOnFailure` child failed, and a job started more often than the worker's
// `maxStartedAttempts` allows. Their attempt gets a failed process span all the same.
import { deferred, parentSpanId, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { context, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import * as bullmq from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { deadLetterJobOptions, traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';
import {
  cleanup,
  makeQueue,
  makeWorker,
  type QueueHandle,
  uniqueQueueName,
  type WorkerHandle,
} from './helpers.ts';

const tracing = useTestTracing();

describe('BullMQ 6: a job failed without its processor being called still has its attempt span', () => {
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  it('a flow parent failed by its failParentOnFailure child: ERROR UnrecoverableError, final, under the flow send span; the job fails as raw, and a dead letter made in the application failed listener links to it', async () => {
    const name = uniqueQueueName('unprocessed-flow');
    const raw = makeQueue(bullmq, name);
    queues.push(raw);
    const calls: string[] = [];
    const processor = traceProcessor(async (job: bullmq.Job) => {
      calls.push(job.name);
      if (job.name === 'bad') throw new Error('child broke');
      return 'ok';
    });
    const worker = makeWorker(bullmq, name, processor);
    workers.push(worker);
    const parentFailed = deferred<{ reason: string; deadLetter: string }>();
    // The application's own listener, added before hoptrace's watch exists: the attempt span is
    // there when it runs, so a dead-letter copy made there links to it.
    worker.on('failed', (job, error) => {
      if (job?.name === 'p')
        parentFailed.resolve({
          reason: job.failedReason,
          deadLetter: String(deadLetterJobOptions<bullmq.JobsOptions>(job, error).telemetry?.metadata),
        });
    });
    const rawFlow = new bullmq.FlowProducer({ connection: raw.opts.connection });
    const flow = traceFlowProducer(rawFlow);
    try {
      const tree = await flow.add({
        name: 'p',
        queueName: name,
        children: [{ name: 'bad', queueName: name, opts: { failParentOnFailure: true } }],
      });
      const failed = await parentFailed.promise;
      // What BullMQ did, untouched: the processor never saw the parent.
      expect(calls).toEqual(['bad']);
      expect(await raw.getJobState(tree.job.id as string)).toBe('failed');

      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 2,
      );
      const processes = spansNamed(spans, `process ${name}`);
      expect(processes).toHaveLength(2);
      const parent = processes.find((s) => s.attributes['messaging.message.id'] === tree.job.id);
      const child = processes.find((s) => s.attributes['messaging.message.id'] !== tree.job.id);
      expect(child?.status.code).toBe(SpanStatusCode.ERROR);
      expect(parent?.kind).toBe(SpanKind.CONSUMER);
      expect(parent?.status.code).toBe(SpanStatusCode.ERROR);
      expect(parent?.status.message).toBe(failed.reason);
      expect(parent?.attributes['error.type']).toBe('UnrecoverableError');
      expect(parent?.attributes['hoptrace.attempt.final']).toBe(true);
      expect(parent?.attributes['hoptrace.error.retryable']).toBe(false);
      expect(parent?.attributes['bullmq.job.attempt']).toBe(1);
      expect(parent?.events.some((e) => e.name === 'exception')).toBe(true);
      // The parent's attempt sits in the flow's trace, under the flow's send span.
      const sends = spans.filter((s) => s.kind === SpanKind.PRODUCER);
      // One send span for the whole flow (its two jobs).
      expect(sends).toHaveLength(1);
      const parentSend = sends[0];
      expect(parentSend?.attributes['messaging.batch.message_count']).toBe(2);
      expect(parent?.spanContext().traceId).toBe(parentSend?.spanContext().traceId);
      expect(parent && parentSpanId(parent)).toBe(parentSend?.spanContext().spanId);
      expect(failed.deadLetter).toContain(parent?.spanContext().spanId);
      expect(tracing.current.openSpans()).toHaveLength(0);
    } finally {
      await rawFlow.close();
    }
  });

  it('a job started past the worker maxStartedAttempts: its last start fails without the processor and has an ERROR span too', async () => {
    const name = uniqueQueueName('unprocessed-started');
    const raw = makeQueue(bullmq, name);
    queues.push(raw);
    const queue = traceQueue(raw);
    let calls = 0;
    const processor = traceProcessor(async (job: bullmq.Job, token?: string) => {
      calls++;
      // Back to delayed: BullMQ starts it again, and the second start is past the limit.
      await job.moveToDelayed(Date.now() + 10, token);
      throw new bullmq.DelayedError();
    });
    const worker = makeWorker(bullmq, name, processor, { maxStartedAttempts: 1 });
    workers.push(worker);
    const failed = deferred<string>();
    worker.on('failed', (job) => failed.resolve(job?.failedReason ?? ''));
    const tracer = trace.getTracer('test');
    const root = tracer.startSpan('request');
    const added = await context.with(trace.setSpan(context.active(), root), () => queue.add('job', {}));
    root.end();
    const reason = await failed.promise;
    expect(reason).toBe('job started more than allowable limit');
    expect(calls).toBe(1);

    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const attempts = spansNamed(spans, `process ${name}`).sort(
      (a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1],
    );
    expect(attempts).toHaveLength(2);
    expect(attempts[0]?.status.code).toBe(SpanStatusCode.UNSET);
    expect(attempts[1]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempts[1]?.attributes['error.type']).toBe('UnrecoverableError');
    expect(attempts[1]?.attributes['hoptrace.attempt.final']).toBe(true);
    expect(attempts[1]?.attributes['messaging.message.id']).toBe(added.id);
    // Both attempts are siblings under the job's send span, in the request's trace.
    const send = spans.find((s) => s.kind === SpanKind.PRODUCER);
    for (const attempt of attempts) {
      expect(attempt.spanContext().traceId).toBe(root.spanContext().traceId);
      expect(parentSpanId(attempt)).toBe(send?.spanContext().spanId);
    }
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('a processor that throws an UnrecoverableError worded as BullMQ words it is one span, not two', async () => {
    const name = uniqueQueueName('unprocessed-own');
    const raw = makeQueue(bullmq, name);
    queues.push(raw);
    const processor = traceProcessor(async () => {
      throw new bullmq.UnrecoverableError('job started more than allowable limit');
    });
    const worker = makeWorker(bullmq, name, processor, { maxStartedAttempts: 5 });
    workers.push(worker);
    const failed = deferred();
    worker.on('failed', () => failed.resolve());
    await traceQueue(raw).add('job', {});
    await failed.promise;
    await new Promise((r) => setTimeout(r, 200));
    expect(spansNamed(tracing.current.spans(), `process ${name}`)).toHaveLength(1);
  });

  it('a worker whose jobs so far were unsampled (no span built): a sampled flow parent it fails without the processor still has its ERROR span', async () => {
    const name = uniqueQueueName('unprocessed-after-unsampled');
    const childName = uniqueQueueName('unprocessed-after-unsampled-child');
    const raw = makeQueue(bullmq, name);
    const rawChild = makeQueue(bullmq, childName);
    queues.push(raw, rawChild);
    const calls: string[] = [];
    // `unsampled: 'skip'`: an unsampled job's processor runs without a span, straight in its context.
    const processor = traceProcessor(
      async (job: bullmq.Job) => {
        calls.push(job.name);
        return 'ok';
      },
      { unsampled: 'skip' },
    );
    const worker = makeWorker(bullmq, name, processor);
    workers.push(worker);
    // The flow's child runs on a worker of its own, so the parent's worker calls its processor only
    // for the unsampled job.
    const childWorker = makeWorker(
      bullmq,
      childName,
      traceProcessor(async () => {
        throw new Error('child broke');
      }),
    );
    workers.push(childWorker);
    const done = deferred<void>();
    const parentFailed = deferred<string>();
    worker.on('completed', (job) => {
      if (job.name === 'unsampled') done.resolve();
    });
    worker.on('failed', (job) => {
      if (job?.name === 'p') parentFailed.resolve(job.failedReason);
    });
    const unsampledParent = trace.setSpanContext(context.active(), {
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      traceFlags: TraceFlags.NONE,
    });
    await context.with(unsampledParent, () => traceQueue(raw, { unsampled: 'skip' }).add('unsampled', {}));
    await done.promise;
    expect(spansNamed(tracing.current.spans(), `process ${name}`)).toHaveLength(0);

    const rawFlow = new bullmq.FlowProducer({ connection: raw.opts.connection });
    try {
      const tree = await traceFlowProducer(rawFlow).add({
        name: 'p',
        queueName: name,
        children: [{ name: 'bad', queueName: childName, opts: { failParentOnFailure: true } }],
      });
      const reason = await parentFailed.promise;
      expect(calls).toEqual(['unsampled']);
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 1,
      );
      const parent = spansNamed(spans, `process ${name}`)[0];
      expect(parent?.attributes['messaging.message.id']).toBe(tree.job.id);
      expect(parent?.status.code).toBe(SpanStatusCode.ERROR);
      expect(parent?.status.message).toBe(reason);
      expect(parent?.attributes['error.type']).toBe('UnrecoverableError');
      const send = spans.find((s) => s.kind === SpanKind.PRODUCER);
      expect(parent?.spanContext().traceId).toBe(send?.spanContext().traceId);
      expect(parent && parentSpanId(parent)).toBe(send?.spanContext().spanId);
      expect(tracing.current.openSpans()).toHaveLength(0);
    } finally {
      await rawFlow.close();
    }
  });
});
