import { ERROR_SHUTDOWN, endOpenSpans } from '@hoptrace/core';
import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

describe.each(BULLMQ_VERSIONS)('BullMQ %s: endOpenSpans (process shutdown)', (_label, bullmq) => {
  const { FlowProducer, Queue, Worker } = bullmq;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  const connection = () => brokerEndpoint('redis');

  let release = deferred();

  afterEach(async () => {
    release.resolve();
    await cleanup(workers, queues);
  });

  it('ends the span of a job whose processor is still running, once; the worker completes the job afterwards and keeps working', async () => {
    const name = uniqueQueueName('shutdown');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const started = deferred();
    release = deferred();
    const workerErrors: unknown[] = [];
    const completed: unknown[] = [];
    const allDone = deferred();
    const worker = new Worker(
      name,
      traceProcessor(async (job: { name: string }) => {
        if (job.name === 'held') {
          started.resolve();
          await release.promise;
          return 'finished after shutdown';
        }
        return 'next';
      }),
      { connection: connection() },
    );
    workers.push(worker);
    worker.on('error', (error) => workerErrors.push(error));
    worker.on('failed', (_job, error) => workerErrors.push(error));
    worker.on('completed', (_job, value) => {
      completed.push(value);
      if (completed.length === 2) allDone.resolve();
    });
    const job = await trace.getTracer('test').startActiveSpan('request', async (span) => {
      try {
        return await queue.add('held', { n: 1 }, { attempts: 1 });
      } finally {
        span.end();
      }
    });
    await started.promise;
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${name}`]);

    expect(endOpenSpans()).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
    const request = onlySpan(tracing.current.spans(), 'request');
    const send = onlySpan(tracing.current.spans(), `send ${name}`);
    const process = onlySpan(tracing.current.spans(), `process ${name}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(process.attributes['error.type']).toBe(ERROR_SHUTDOWN);
    expect(process.attributes['messaging.message.id']).toBe(job.id);
    // The job's fate is BullMQ's (it stalls and runs again after a restart): no verdict on it.
    expect(process.attributes['hoptrace.attempt.final']).toBeUndefined();
    expect(process.attributes['hoptrace.error.retryable']).toBeUndefined();
    expect(process.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(send.status.code).toBe(SpanStatusCode.UNSET);

    // The client is left alone: the processor finishes, BullMQ completes the job, nothing throws.
    release.resolve();
    await queue.add('next', {});
    await allDone.promise;
    expect(completed).toEqual(['finished after shutdown', 'next']);
    expect(await raw.getJobState(job.id as string)).toBe('completed');
    expect(workerErrors).toEqual([]);
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const processes = spansNamed(spans, `process ${name}`);
    expect(processes.filter((s) => s.attributes['messaging.message.id'] === job.id)).toEqual([process]);
    const next = processes.find((s) => s !== process);
    expect(next?.status.code).toBe(SpanStatusCode.UNSET);
    expect(next?.attributes['error.type']).toBeUndefined();
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it('an attempt whose processor moved its own job and still runs (displaced by the next run) ends once with shutdown, as does the next run; both finish as without hoptrace', async () => {
    const name = uniqueQueueName('shutrev-displaced');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const firstHeld = deferred();
    const secondHeld = deferred();
    const releaseFirst = deferred();
    release = deferred();
    const workerErrors: unknown[] = [];
    const completed: unknown[] = [];
    const done = deferred();
    let calls = 0;
    const worker = new Worker(
      name,
      traceProcessor(
        async (job: { moveToDelayed(at: number, token?: string): Promise<void> }, token?: string) => {
          if (++calls === 1) {
            await job.moveToDelayed(Date.now() + 50, token);
            firstHeld.resolve();
            await releaseFirst.promise;
            throw new bullmq.DelayedError();
          }
          secondHeld.resolve();
          await release.promise;
          return 'done';
        },
      ),
      { connection: connection(), concurrency: 2 },
    );
    workers.push(worker);
    worker.on('error', (error) => workerErrors.push(error));
    worker.on('failed', (_job, error) => workerErrors.push(error));
    worker.on('completed', (_job, value) => {
      completed.push(value);
      done.resolve();
    });
    try {
      const job = await queue.add('j', { n: 1 });
      await firstHeld.promise;
      await secondHeld.promise;
      expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${name}`, `process ${name}`]);

      expect(endOpenSpans()).toBe(2);
      expect(tracing.current.openSpans()).toEqual([]);
      const processes = spansNamed(tracing.current.spans(), `process ${name}`);
      expect(processes).toHaveLength(2);
      for (const process of processes) {
        expect(process.status.code).toBe(SpanStatusCode.ERROR);
        expect(process.attributes['error.type']).toBe(ERROR_SHUTDOWN);
        expect(process.attributes['hoptrace.attempt.final']).toBeUndefined();
      }

      releaseFirst.resolve();
      release.resolve();
      await done.promise;
      await new Promise((r) => setTimeout(r, 300));
      expect(completed).toEqual(['done']);
      expect(await raw.getJobState(job.id as string)).toBe('completed');
      expect(workerErrors).toEqual([]);
      expect(spansNamed(tracing.current.spans(), `process ${name}`)).toEqual(processes);
    } finally {
      releaseFirst.resolve();
    }
  });

  it('processTimeoutMs: an attempt ended at shutdown is not ended again by its timer; one the timer abandoned first is left alone by endOpenSpans; the processors finish as without hoptrace', async () => {
    const name = uniqueQueueName('shutrev-timeout');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const holds = new Map([
      ['shutdown-first', deferred()],
      ['timeout-first', deferred()],
    ]);
    const started = new Map([
      ['shutdown-first', deferred()],
      ['timeout-first', deferred()],
    ]);
    const completed: unknown[] = [];
    const workerErrors: unknown[] = [];
    const both = deferred();
    const worker = new Worker(
      name,
      traceProcessor(
        async (job: { name: string }) => {
          started.get(job.name)?.resolve();
          await holds.get(job.name)?.promise;
          return `finished ${job.name}`;
        },
        { processTimeoutMs: 400 },
      ),
      { connection: connection() },
    );
    workers.push(worker);
    worker.on('error', (error) => workerErrors.push(error));
    worker.on('failed', (_job, error) => workerErrors.push(error));
    worker.on('completed', (_job, value) => {
      completed.push(value);
      if (completed.length === 2) both.resolve();
    });
    try {
      await queue.add('shutdown-first', {});
      await started.get('shutdown-first')?.promise;
      expect(endOpenSpans()).toBe(1);
      const first = onlySpan(tracing.current.spans(), `process ${name}`);
      expect(first.attributes['error.type']).toBe(ERROR_SHUTDOWN);
      await new Promise((r) => setTimeout(r, 600)); // past processTimeoutMs
      expect(spansNamed(tracing.current.spans(), `process ${name}`)).toEqual([first]);
      expect(first.attributes['error.type']).toBe(ERROR_SHUTDOWN);
      holds.get('shutdown-first')?.resolve();

      await queue.add('timeout-first', {});
      await started.get('timeout-first')?.promise;
      const timedOut = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 2,
      );
      const second = spansNamed(timedOut, `process ${name}`).find((s) => s !== first);
      expect(second?.attributes['error.type']).toBe('process_timeout');
      expect(endOpenSpans()).toBe(0);
      holds.get('timeout-first')?.resolve();
      await both.promise;
      expect(completed).toEqual(['finished shutdown-first', 'finished timeout-first']);
      expect(workerErrors).toEqual([]);
      expect(spansNamed(tracing.current.spans(), `process ${name}`)).toHaveLength(2);
      expect(second?.attributes['error.type']).toBe('process_timeout');
    } finally {
      for (const hold of holds.values()) hold.resolve();
    }
  });

  it('queue add, addBulk and flow add spans in flight end once with shutdown; the jobs are added and returned as without hoptrace', async () => {
    const name = uniqueQueueName('shutrev-add');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const rawFlows = new FlowProducer({ connection: connection() });
    const flows = traceFlowProducer(rawFlows, { createSpans: true });
    try {
      await raw.waitUntilReady();
      const added = queue.add('one', { n: 1 });
      const bulk = queue.addBulk([
        { name: 'b1', data: {} },
        { name: 'b2', data: {} },
      ]);
      const flow = flows.add({
        name: 'parent',
        queueName: name,
        children: [{ name: 'child', queueName: name }],
      });
      expect(tracing.current.openSpans().length).toBeGreaterThanOrEqual(3);
      expect(endOpenSpans()).toBe(3);
      expect(tracing.current.openSpans()).toEqual([]);
      const ended = tracing.current.spans();
      for (const span of ended) {
        expect(span.status.code).toBe(SpanStatusCode.ERROR);
        expect(span.attributes['error.type']).toBe(ERROR_SHUTDOWN);
      }
      const job = await added;
      const jobs = await bulk;
      const tree = await flow;
      expect(job.name).toBe('one');
      expect(jobs.map((j: { name: string }) => j.name)).toEqual(['b1', 'b2']);
      expect(tree.job.name).toBe('parent');
      expect(tree.children?.map((c: { job: { name: string } }) => c.job.name)).toEqual(['child']);
      expect(await raw.getJobCountByTypes('waiting', 'waiting-children')).toBe(5);
      // Nothing ended again, no span gained job ids after its end.
      expect(tracing.current.spans()).toEqual(ended);
      for (const span of ended) expect(span.attributes['messaging.message.id']).toBeUndefined();
    } finally {
      await rawFlows.close();
    }
  });
});
