// Outcomes BullMQ decides after the processor returned: it fails a job it cannot complete (a child
// added to it while it ran: "has pending dependencies"), it does not retry a failure a custom backoff
// turned down (-1), it cannot record a job whose lock is gone. The attempt's span tells what BullMQ
// did with the job, not only what the processor returned.
import { brokerEndpoint, deferred, sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import * as bullmq6 from 'bullmq';
import * as bullmq5 from 'bullmq-v5';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { deadLetterJobOptions, traceProcessor, traceQueue } from '../src/index.ts';
import {
  type AnyJob,
  type AnyQueue,
  BULLMQ_VERSIONS,
  type BullMQ,
  cleanup,
  makeQueue,
  makeWorker,
  type QueueHandle,
  uniqueQueueName,
  type WorkerHandle,
} from './helpers.ts';

const tracing = useTestTracing();

const byStart = (a: ReadableSpan, b: ReadableSpan) =>
  a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1];

const redis = new Redis(brokerEndpoint('redis'));
afterAll(() => redis.quit());

/** A processor adding a child to its own job (in `children`, a queue without a worker), then returning. */
const addsChild = (children: { add: AnyQueue['add'] }) => async (job: AnyJob) => {
  await children.add('child', {}, { parent: { id: job.id as string, queue: `bull:${job.queueName}` } });
  return 'done';
};

describe('BullMQ 6: a job it cannot complete after its processor returned', () => {
  const bullmq = bullmq6;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  it('a job BullMQ cannot complete after its processor returned (pending dependencies) fails its span: ERROR with BullMQ reason, retried then final, ended before the application failed listener', async () => {
    const name = uniqueQueueName('bqout-pending');
    const raw = makeQueue(bullmq, name);
    // The child's queue has no worker: the child stays pending.
    const children = makeQueue(bullmq, `${name}-children`);
    queues.push(raw, children);
    const processor = traceProcessor(addsChild(children));
    const worker = makeWorker(bullmq, name, processor);
    workers.push(worker);
    const errors: string[] = [];
    worker.on('error', (error) => errors.push(error.message));
    const reasons: string[] = [];
    const seen: { ended: number; deadLetter: string }[] = [];
    const finallyFailed = deferred();
    worker.on('failed', (job, error) => {
      if (!job) return;
      reasons.push(job.failedReason);
      seen.push({
        ended: spansNamed(tracing.current.spans(), `process ${name}`).length,
        deadLetter: String(deadLetterJobOptions<bullmq6.JobsOptions>(job, error).telemetry?.metadata),
      });
      if (job.finishedOn) finallyFailed.resolve();
    });
    const added = await traceQueue(raw).add('parent', {}, { attempts: 2 });
    await finallyFailed.promise;
    // What BullMQ did, untouched: two failed attempts, the job failed.
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toContain('has pending dependencies');
    expect(await raw.getJobState(added.id as string)).toBe('failed');

    const attempts = spansNamed(tracing.current.spans(), `process ${name}`).sort(byStart);
    expect(attempts).toHaveLength(2);
    for (const [i, attempt] of attempts.entries()) {
      expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
      expect(attempt.status.message).toBe(reasons[i]);
      expect(attempt.attributes['error.type']).toBe('Error');
      expect(attempt.attributes['bullmq.job.attempt']).toBe(i + 1);
      expect(attempt.events.some((e) => e.name === 'exception')).toBe(true);
      // Ended (with its outcome) before the application's failed listener ran; a dead letter made
      // there links to it.
      expect(seen[i]?.ended).toBe(i + 1);
      expect(seen[i]?.deadLetter).toContain(attempt.spanContext().spanId);
    }
    expect(attempts[0]?.attributes['hoptrace.attempt.final']).toBe(false);
    expect(attempts[0]?.attributes['hoptrace.error.retryable']).toBe(true);
    expect(attempts[1]?.attributes['hoptrace.attempt.final']).toBe(true);
    expect(attempts[1]?.attributes['hoptrace.error.retryable']).toBe(false);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});

describe('BullMQ 5.34: a job it cannot complete after its processor returned', () => {
  const bullmq = bullmq5 as unknown as BullMQ;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  it('pending dependencies: BullMQ 5.34 drops the lock and leaves the job active (to stall): ERROR lock_lost, at once', async () => {
    const name = uniqueQueueName('bqout-pending5');
    const raw = makeQueue(bullmq, name);
    const children = makeQueue(bullmq, `${name}-children`);
    queues.push(raw, children);
    const worker = makeWorker(bullmq, name, traceProcessor(addsChild(children)));
    workers.push(worker);
    const events: string[] = [];
    worker.on('error', (error) => events.push(`error ${error.message}`));
    worker.on('completed', () => events.push('completed'));
    worker.on('failed', () => events.push('failed'));
    const added = await traceQueue(raw).add('parent', {});
    await until(() => events.length > 0, 'a worker event');
    await until(() => spansNamed(tracing.current.spans(), `process ${name}`).length === 1, 'the span', 5000);
    await sleep(100);
    expect(events).toEqual([`error Missing lock for job ${added.id}. moveToFinished`]);
    expect(await raw.getJobState(added.id as string)).toBe('active');
    const [attempt] = spansNamed(tracing.current.spans(), `process ${name}`);
    expect(attempt?.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt?.attributes['error.type']).toBe('lock_lost');
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});

describe.each(BULLMQ_VERSIONS)(
  'BullMQ %s: the attempt span carries the outcome BullMQ decided',
  (_v, bullmq) => {
    const workers: WorkerHandle[] = [];
    const queues: QueueHandle[] = [];
    afterEach(async () => cleanup(workers, queues));

    it('a failure a custom backoff turns down (-1) is final although attempts remain', async () => {
      const name = uniqueQueueName('bqout-backoff');
      const raw = makeQueue(bullmq, name);
      queues.push(raw);
      const processor = traceProcessor(async () => {
        throw new Error('boom');
      });
      const worker = makeWorker(bullmq, name, processor, { settings: { backoffStrategy: () => -1 } });
      workers.push(worker);
      const failed = deferred<AnyJob>();
      worker.on('failed', (job) => job && failed.resolve(job));
      await traceQueue(raw).add('job', {}, { attempts: 3, backoff: { type: 'custom' } });
      const job = await failed.promise;
      expect(job.attemptsMade).toBe(1);
      expect(await raw.getJobState(job.id as string)).toBe('failed');
      const [attempt, ...more] = spansNamed(tracing.current.spans(), `process ${name}`);
      expect(more).toHaveLength(0);
      expect(attempt?.status.code).toBe(SpanStatusCode.ERROR);
      expect(attempt?.status.message).toBe('boom');
      expect(attempt?.attributes['hoptrace.attempt.final']).toBe(true);
      expect(attempt?.attributes['hoptrace.error.retryable']).toBe(false);
      expect(tracing.current.openSpans()).toHaveLength(0);
    });

    it('a job whose lock is gone when its processor returned is not recorded as done: ERROR lock_lost, at once', async () => {
      const name = uniqueQueueName('bqout-lock');
      const raw = makeQueue(bullmq, name);
      queues.push(raw);
      const processor = traceProcessor(async (job: AnyJob) => {
        // As if the lock had expired (an event loop blocked past lockDuration): BullMQ cannot move it.
        await redis.del(`bull:${name}:${job.id}:lock`);
        return 'done';
      });
      const events: string[] = [];
      const worker = makeWorker(bullmq, name, processor);
      workers.push(worker);
      worker.on('error', (error) => events.push(`error ${error.message}`));
      worker.on('completed', () => events.push('completed'));
      worker.on('failed', () => events.push('failed'));
      const added = await traceQueue(raw).add('job', {});
      await until(() => events.some((e) => e.startsWith('error Missing lock')), 'BullMQ to miss the lock');
      await until(
        () => spansNamed(tracing.current.spans(), `process ${name}`).length === 1,
        'the span',
        5000,
      );
      await sleep(100);
      expect(events.every((e) => e.startsWith(`error Missing lock for job ${added.id}.`))).toBe(true);
      expect(await raw.getJobState(added.id as string)).toBe('active');
      const [attempt] = spansNamed(tracing.current.spans(), `process ${name}`);
      expect(attempt?.status.code).toBe(SpanStatusCode.ERROR);
      expect(attempt?.attributes['error.type']).toBe('lock_lost');
      expect(attempt?.attributes['hoptrace.attempt.final']).toBeUndefined();
      expect(tracing.current.openSpans()).toHaveLength(0);
    });

    it('a completed job: span UNSET, ended before the application completed listener', async () => {
      const name = uniqueQueueName('bqout-done');
      const raw = makeQueue(bullmq, name);
      queues.push(raw);
      const worker = makeWorker(
        bullmq,
        name,
        traceProcessor(async () => 'done'),
      );
      workers.push(worker);
      const completed = deferred<number>();
      worker.on('completed', () =>
        completed.resolve(spansNamed(tracing.current.spans(), `process ${name}`).length),
      );
      await traceQueue(raw).add('job', {});
      expect(await completed.promise).toBe(1);
      const [attempt] = spansNamed(tracing.current.spans(), `process ${name}`);
      expect(attempt?.status.code).toBe(SpanStatusCode.UNSET);
      expect(tracing.current.openSpans()).toHaveLength(0);
    });
  },
);
