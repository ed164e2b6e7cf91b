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
import { traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

describe.each(BULLMQ_VERSIONS)('BullMQ %s: endOpenSpans (process shutdown)', (_label, bullmq) => {
  const { Queue, Worker } = bullmq;
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
});
