import { createLogFields } from '@hoptrace/core';
import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_METADATA_LENGTH } from '../src/carrier.ts';
import { deadLetterJobOptions, traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

class CardDeclined extends Error {
  override name = 'CardDeclined';
}

const classifyError = (error: unknown) =>
  error instanceof CardDeclined
    ? { type: 'CARD_DECLINED', attributes: { 'payment.reason': 'expired' } }
    : undefined;

/** The job's stored options read straight from Redis, with no OpenTelemetry involved. */
async function rawCarrier(queue: string, id: string): Promise<Record<string, string>> {
  const client = new Redis(brokerEndpoint('redis'));
  try {
    const opts = JSON.parse((await client.hget(`bull:${queue}:${id}`, 'opts')) ?? '{}') as {
      tm?: string;
      telemetry?: { metadata?: string };
    };
    return JSON.parse(opts.tm ?? opts.telemetry?.metadata ?? '{}') as Record<string, string>;
  } finally {
    client.disconnect();
  }
}

/** The queue's one attempt span is its final one: BullMQ gave up, so no retry is announced. */
async function expectOneFinalAttempt(queue: string): Promise<void> {
  const spans = await waitForSpans(
    tracing.current.spans,
    (s) => spansNamed(s, `process ${queue}`).length === 1,
  );
  expect(onlySpan(spans, `process ${queue}`).attributes).toMatchObject({
    'hoptrace.attempt.final': true,
    'hoptrace.error.retryable': false,
    'bullmq.job.attempt': 1,
  });
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: failure lineage on real Redis', (label, bullmq) => {
  const { Queue, Worker } = bullmq;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  const connection = () => brokerEndpoint('redis');
  afterEach(async () => cleanup(workers, queues));

  function queue(prefix: string) {
    const name = uniqueQueueName(prefix);
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    return { name, raw, traced: traceQueue(raw) };
  }

  it('attempts carry number, retryable and final; the dead-letter job continues the trace and links to the failed attempt', async () => {
    const main = queue('dl-main');
    const dlq = queue('dl-dead');
    const dead = deferred<string>();
    const worker = new Worker(
      main.name,
      traceProcessor(
        async () => {
          throw new CardDeclined('card expired');
        },
        { classifyError },
      ),
      { connection: connection() },
    );
    workers.push(worker);
    worker.on('failed', (job, error) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        void dlq.traced
          .add(job.name, job.data, deadLetterJobOptions(job, error, { classifyError }))
          .then((added) => dead.resolve(added.id as string));
      }
    });
    const processed = deferred<Record<string, unknown>>();
    const logFields = createLogFields();
    workers.push(
      new Worker(
        dlq.name,
        traceProcessor(async () => {
          // A log line while handling the dead letter: trace id and the original failure's code.
          processed.resolve({ ...logFields() });
        }),
        { connection: connection() },
      ),
    );
    const job = await main.traced.add('charge', { order: 7 }, { attempts: 2 });
    const deadId = await dead.promise;
    const logLine = await processed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) =>
        spansNamed(s, `process ${dlq.name}`).length === 1 && spansNamed(s, `send ${dlq.name}`).length === 1,
    );
    const send = onlySpan(spans, `send ${main.name}`);
    const attempts = spansNamed(spans, `process ${main.name}`).sort(
      (a, b) => Number(a.attributes['bullmq.job.attempt']) - Number(b.attributes['bullmq.job.attempt']),
    );
    expect(attempts).toHaveLength(2);
    for (const [i, attempt] of attempts.entries()) {
      expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
      expect(attempt.attributes).toMatchObject({
        'error.type': 'CARD_DECLINED',
        'payment.reason': 'expired',
        'bullmq.job.attempt': i + 1,
        'bullmq.job.attempts': 2,
        'hoptrace.attempt.final': i === 1,
        'hoptrace.error.retryable': i === 0,
      });
    }
    const failed = attempts[1];
    // The dead-letter send keeps the original creation context: a CLIENT span linked to it.
    const deadSend = onlySpan(spans, `send ${dlq.name}`);
    expect(deadSend.kind).toBe(SpanKind.CLIENT);
    expect(deadSend.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
    // The dead-letter consumer continues the original trace and links to the failed attempt.
    const deadProcess = onlySpan(spans, `process ${dlq.name}`);
    expect(deadProcess.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(parentSpanId(deadProcess)).toBe(send.spanContext().spanId);
    expect(deadProcess.links).toHaveLength(1);
    expect(deadProcess.links[0]?.context.spanId).toBe(failed?.spanContext().spanId);
    const lineage = {
      'hoptrace.failure.destination': main.name,
      'hoptrace.failure.error.type': 'CARD_DECLINED',
      'hoptrace.failure.attempts': 2,
    };
    expect(deadProcess.links[0]?.attributes).toEqual(lineage);
    expect(deadProcess.attributes).toMatchObject(lineage);
    expect(deadProcess.status.code).toBe(SpanStatusCode.UNSET);
    expect(logLine).toMatchObject({
      trace_id: send.spanContext().traceId,
      span_id: deadProcess.spanContext().spanId,
      'error.type': 'CARD_DECLINED',
    });
    // Read raw from Redis: plain strings any client can use.
    const raw = await rawCarrier(dlq.name, deadId);
    expect(raw).toMatchObject({
      traceparent: `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`,
      'hoptrace-original-destination': main.name,
      'hoptrace-error-type': 'CARD_DECLINED',
      'hoptrace-error-message': 'card expired',
      'hoptrace-attempts': '2',
      'hoptrace-failed-traceparent': `00-${failed?.spanContext().traceId}-${failed?.spanContext().spanId}-01`,
    });
    expect(job.id).toBeDefined();
  });

  it("a job whose metadata nearly fills BullMQ's 16 KB carries to its dead-letter copy its context and the lineage that fits (the failed attempt first), not metadata past the limit", async () => {
    const main = queue('dl-full');
    const dlq = queue('dl-full-dead');
    const traceId = 'c3'.repeat(16);
    const parent = 'd4'.repeat(8);
    // Another tool's key fills all but 300 characters: the whole lineage (a 256-character message
    // among it) does not fit beside it; the failed attempt's context, type and counts do.
    const shell = JSON.stringify({ traceparent: `00-${traceId}-${parent}-01`, 'x-other-tool': '' });
    const metadata = JSON.stringify({
      traceparent: `00-${traceId}-${parent}-01`,
      'x-other-tool': 'z'.repeat(MAX_METADATA_LENGTH - 300 - shell.length),
    });
    expect(metadata.length).toBe(MAX_METADATA_LENGTH - 300);
    const dead = deferred<string>();
    const worker = new Worker(
      main.name,
      traceProcessor(async () => {
        throw new CardDeclined(`card expired ${'!'.repeat(400)}`);
      }),
      { connection: connection() },
    );
    workers.push(worker);
    worker.on('failed', (job, error) => {
      if (job)
        void dlq.traced
          .add(job.name, job.data, deadLetterJobOptions(job, error))
          .then((added) => dead.resolve(added.id as string));
    });
    workers.push(
      new Worker(
        dlq.name,
        traceProcessor(async () => {}),
        { connection: connection() },
      ),
    );
    await main.raw.add('charge', { order: 8 }, { telemetry: { metadata } } as never);
    const deadId = await dead.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) =>
        spansNamed(s, `process ${dlq.name}`).length === 1 &&
        spansNamed(s, `process ${main.name}`).length === 1,
    );
    const failed = onlySpan(spans, `process ${main.name}`);
    expect(failed.spanContext().traceId).toBe(traceId);
    const deadProcess = onlySpan(spans, `process ${dlq.name}`);
    expect(deadProcess.spanContext().traceId).toBe(traceId);
    expect(parentSpanId(deadProcess)).toBe(parent);
    expect(deadProcess.links.map((l) => l.context.spanId)).toEqual([failed.spanContext().spanId]);
    expect(deadProcess.links[0]?.attributes).toMatchObject({
      'hoptrace.failure.destination': main.name,
      'hoptrace.failure.error.type': 'CardDeclined',
      'hoptrace.failure.attempts': 1,
    });
    const raw = await rawCarrier(dlq.name, deadId);
    expect(JSON.stringify(raw).length).toBeLessThanOrEqual(MAX_METADATA_LENGTH);
    expect(raw['x-other-tool']).toHaveLength(MAX_METADATA_LENGTH - 300 - shell.length);
    expect(raw).toMatchObject({
      traceparent: `00-${traceId}-${parent}-01`,
      'hoptrace-error-type': 'CardDeclined',
      'hoptrace-failed-traceparent': `00-${traceId}-${failed.spanContext().spanId}-01`,
    });
    expect(raw['hoptrace-error-message']).toBeUndefined();
  });

  it('an UnrecoverableError is the final attempt whatever attempts remain; no classifier: error.type is its class', async () => {
    const main = queue('unrecoverable');
    const failed = deferred();
    const worker = new Worker(
      main.name,
      traceProcessor(async () => {
        throw new bullmq.UnrecoverableError('gone');
      }),
      { connection: connection() },
    );
    workers.push(worker);
    worker.on('failed', () => failed.resolve());
    await main.traced.add('x', {}, { attempts: 5 });
    await failed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${main.name}`).length === 1,
    );
    const attempt = onlySpan(spans, `process ${main.name}`);
    expect(attempt.attributes).toMatchObject({
      'error.type': 'UnrecoverableError',
      'hoptrace.attempt.final': true,
      'hoptrace.error.retryable': false,
      'bullmq.job.attempt': 1,
    });
    expect(await main.raw.getJobState(String(attempt.attributes['messaging.message.id']))).toBe('failed');
  });

  it('a job BullMQ will not retry for another reason (5.x discard(), 6.x maxStartedAttempts) is the final attempt', async () => {
    const main = queue('given-up');
    const failed = deferred();
    const newest = label.startsWith('newest');
    const worker = new Worker(
      main.name,
      traceProcessor(async (job) => {
        if (!newest) (job as unknown as { discard(): void }).discard();
        throw new Error('no retry');
      }),
      // BullMQ 6: a job started as many times as maxStartedAttempts allows is not retried.
      { connection: connection(), ...(newest ? { maxStartedAttempts: 1 } : {}) },
    );
    workers.push(worker);
    worker.on('failed', () => failed.resolve());
    const job = await main.traced.add('x', {}, { attempts: 3 });
    await failed.promise;
    expect(await main.raw.getJobState(job.id as string)).toBe('failed');
    await expectOneFinalAttempt(main.name);
  });

  // maxStartedAttempts came with BullMQ 6.
  if (label.startsWith('newest'))
    it("manual processing: a job started as many times as the worker's maxStartedAttempts allows is the final attempt", async () => {
      const main = queue('given-up-manual');
      // No processor: the application fetches and settles jobs; BullMQ still reads the worker's options.
      const worker = new Worker(main.name, null, { connection: connection(), maxStartedAttempts: 1 });
      workers.push(worker);
      const handle = traceProcessor(async (_job: InstanceType<typeof bullmq.Job>) => {
        throw new Error('no retry');
      });
      const added = await main.traced.add('x', {}, { attempts: 3 });
      const token = 'manual-token';
      const job = (await worker.getNextJob(token)) as InstanceType<typeof bullmq.Job>;
      await expect(handle(job)).rejects.toThrow('no retry');
      await job.moveToFailed(new Error('no retry'), token, false);
      expect(await main.raw.getJobState(added.id as string)).toBe('failed');
      await expectOneFinalAttempt(main.name);
    });

  it('a dead-letter job made inside the failing processor links to the active attempt', async () => {
    const main = queue('dl-inline');
    const dlq = queue('dl-inline-dead');
    const processed = deferred();
    workers.push(
      new Worker(
        main.name,
        traceProcessor(async (job) => {
          const error = new CardDeclined('no funds');
          await dlq.traced.add(
            job.name,
            job.data,
            deadLetterJobOptions(job, error, { attempts: job.attemptsMade + 1 }),
          );
          throw error;
        }),
        { connection: connection() },
      ),
      new Worker(
        dlq.name,
        traceProcessor(async () => {
          processed.resolve();
        }),
        { connection: connection() },
      ),
    );
    await main.traced.add('charge', {});
    await processed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${dlq.name}`).length === 1,
    );
    const attempt = onlySpan(spans, `process ${main.name}`);
    const deadProcess = onlySpan(spans, `process ${dlq.name}`);
    expect(deadProcess.links[0]?.context.spanId).toBe(attempt.spanContext().spanId);
    expect(deadProcess.links[0]?.attributes).toMatchObject({
      'hoptrace.failure.error.type': 'CardDeclined',
      'hoptrace.failure.destination': main.name,
      'hoptrace.failure.attempts': 1,
    });
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  // `queueName`: the processor's option naming the queue in its spans (a sandboxed processor's);
  // the run's trace is the job's own whatever it says.
  for (const queueName of [undefined, 'billing']) {
    it(`a scheduled run's dead letter continues the run's own trace (as its attempts do), not the scheduler's, and links to the failed attempt${queueName ? ' (processor queueName option)' : ''}`, async () => {
      const main = queue('dl-sched');
      const dlq = queue('dl-sched-dead');
      const dead = deferred();
      const worker = new Worker(
        main.name,
        traceProcessor(
          async () => {
            throw new CardDeclined('card expired');
          },
          queueName ? { queueName } : {},
        ),
        { connection: connection() },
      );
      workers.push(worker);
      worker.on('failed', (job, error) => {
        if (job && job.attemptsMade >= (job.opts.attempts ?? 1))
          void dlq.traced
            .add(job.name, job.data, deadLetterJobOptions(job, error))
            .then(() => dead.resolve());
      });
      workers.push(
        new Worker(
          dlq.name,
          traceProcessor(async () => 'handled'),
          { connection: connection() },
        ),
      );
      await main.traced.upsertJobScheduler(
        'nightly',
        { every: 60_000 },
        { name: 'charge', data: { order: 7 } },
      );
      await dead.promise;
      await main.raw.removeJobScheduler('nightly');
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${dlq.name}`).length === 1,
      );
      const schedule = onlySpan(spans, `schedule ${main.name}`);
      const failed = onlySpan(spans, `process ${queueName ?? main.name}`);
      const deadProcess = onlySpan(spans, `process ${dlq.name}`);
      // The run is its own trace, linked to the scheduling context (not a child of it).
      expect(failed.spanContext().traceId).not.toBe(schedule.spanContext().traceId);
      // Its dead letter is handled in that run's trace, as a sibling of its attempts under the run's
      // root, and links to the failed attempt: not under the scheduler's span, where the dead letters
      // of every run of the schedule would pile up in one trace.
      expect(deadProcess.spanContext().traceId).toBe(failed.spanContext().traceId);
      expect(parentSpanId(deadProcess)).toBe(parentSpanId(failed));
      expect(deadProcess.links.map((l) => l.context.spanId)).toEqual([failed.spanContext().spanId]);
      expect(deadProcess.attributes).toMatchObject({
        // The failed job's own queue.
        'hoptrace.failure.destination': main.name,
        'hoptrace.failure.error.type': 'CardDeclined',
        'hoptrace.failure.attempts': 1,
      });
    });
  }
});
