import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerEndpoint, deferred, useTestTracing } from '@hoptrace/test-kit';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

// The sandboxed processor file imports the built package (`pnpm --filter @hoptrace/bullmq build`).
// A file URL: BullMQ 5.34 accepts only .js/.cjs/.ts paths, but any file URL.
const processorFile = new URL('./fixtures/sandbox-processor.mjs', import.meta.url);
const exitingFile = new URL('./fixtures/sandbox-exit-processor.mjs', import.meta.url);
const maxStartedFile = new URL('./fixtures/sandbox-max-started-processor.mjs', import.meta.url);
const tracing = useTestTracing();
const dir = mkdtempSync(join(tmpdir(), 'hoptrace-sandbox-'));

interface ChildSpan {
  event?: 'start' | 'end';
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  status: { code: number; message?: string };
  attributes: Record<string, unknown>;
}

function childSpans(file: string): ChildSpan[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ChildSpan);
  } catch {
    return [];
  }
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MODES = BULLMQ_VERSIONS.flatMap(([label, bullmq]) =>
  [false, true].map((useWorkerThreads) => [label, bullmq, useWorkerThreads] as const),
);

describe.each(MODES)(
  'BullMQ %s: sandboxed processor (useWorkerThreads: %s)',
  (label, bullmq, useWorkerThreads) => {
    const workers: WorkerHandle[] = [];
    const queues: QueueHandle[] = [];
    afterEach(async () => cleanup(workers, queues));

    it('runs in a child process under the job creation context, and records failures there', async () => {
      const name = uniqueQueueName('sandbox');
      const connection = brokerEndpoint('redis');
      const raw = new bullmq.Queue(name, { connection });
      queues.push(raw);
      const queue = traceQueue(raw);
      const worker = new bullmq.Worker(name, processorFile, { connection, useWorkerThreads });
      workers.push(worker);
      const completed = deferred<unknown>();
      const failed = deferred<Error>();
      worker.on('completed', (_job, value) => completed.resolve(value));
      worker.on('failed', (_job, err) => failed.resolve(err));
      const spanFile = join(dir, `${label.replace(/\W/g, '')}-${useWorkerThreads}-${Date.now()}.jsonl`);

      const okJob = await queue.add('ok', { spanFile });
      const returned = (await completed.promise) as {
        traceId: string;
        spanId: string;
        parentSpanId: string;
        name: string;
      };
      const failJob = await queue.add('boom', { spanFile, fail: true }, { attempts: 1 });
      const err = await failed.promise;
      expect(err.message).toBe('sandboxed failure');

      const sends = tracing.current.spans().filter((s) => s.name === `send ${name}`);
      expect(sends).toHaveLength(2);
      const okSend = sends.find((s) => s.attributes['messaging.message.id'] === okJob.id);
      const failSend = sends.find((s) => s.attributes['messaging.message.id'] === failJob.id);
      expect(returned.name).toBe(`process ${name}`);
      expect(returned.traceId).toBe(okSend?.spanContext().traceId);
      expect(returned.parentSpanId).toBe(okSend?.spanContext().spanId);

      // The child's spans ended, with the right shape, and the failure was recorded there.
      const deadline = Date.now() + 5000;
      while (childSpans(spanFile).length < 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 25));
      const ended = childSpans(spanFile);
      expect(ended).toHaveLength(2);
      const okSpan = ended.find((s) => s.attributes['messaging.message.id'] === okJob.id);
      const failSpan = ended.find((s) => s.attributes['messaging.message.id'] === failJob.id);
      expect(okSpan?.spanId).toBe(returned.spanId);
      expect(okSpan?.kind).toBe(SpanKind.CONSUMER);
      expect(okSpan?.status.code).toBe(SpanStatusCode.UNSET);
      expect(okSpan?.attributes['bullmq.job.attempt']).toBe(1);
      expect(failSpan?.parentSpanId).toBe(failSend?.spanContext().spanId);
      expect(failSpan?.traceId).toBe(failSend?.spanContext().traceId);
      expect(failSpan?.status.code).toBe(SpanStatusCode.ERROR);
      expect(failSpan?.attributes['error.type']).toBe('TypeError');
    });
    it('a processor that ends its child with process.exit(1): the job fails as raw, the attempt span ends ERROR once', async () => {
      const connection = brokerEndpoint('redis');
      const outcome: Record<string, unknown> = {};
      const files: Record<string, string> = {};
      for (const traced of [false, true]) {
        const name = uniqueQueueName('sandbox-exit');
        const raw = new bullmq.Queue(name, { connection });
        queues.push(raw);
        const worker = new bullmq.Worker(name, exitingFile, { connection, useWorkerThreads });
        workers.push(worker);
        const failed = deferred<Error>();
        worker.on('failed', (_job, err) => failed.resolve(err));
        const spanFile = join(
          dir,
          `exit-${label.replace(/\W/g, '')}-${useWorkerThreads}-${traced}-${Date.now()}.jsonl`,
        );
        files[String(traced)] = spanFile;
        const job = await traceQueue(raw).add('exit', { spanFile, traced }, { attempts: 1 });
        const err = await failed.promise;
        const stored = await raw.getJob(job.id as string);
        outcome[String(traced)] = {
          message: err.message,
          state: await raw.getJobState(job.id as string),
          attemptsMade: stored?.attemptsMade,
          failedReason: stored?.failedReason,
        };
      }
      expect(outcome.true).toEqual(outcome.false);
      expect(childSpans(files.false as string)).toEqual([]);
      const events = childSpans(files.true as string);
      expect(events.map((e) => e.event)).toEqual(['start', 'end']);
      const [start, end] = events;
      expect(end?.spanId).toBe(start?.spanId);
      expect(end?.status.code).toBe(SpanStatusCode.ERROR);
      expect(end?.attributes['error.type']).toBe('shutdown');
    });

    // maxStartedAttempts came with BullMQ 6.
    if (label.startsWith('newest'))
      it("the worker's maxStartedAttempts, given to traceProcessor in the file: a job started that many times fails as the final attempt", async () => {
        const connection = brokerEndpoint('redis');
        const name = uniqueQueueName('sandbox-max-started');
        const raw = new bullmq.Queue(name, { connection });
        queues.push(raw);
        const worker = new bullmq.Worker(name, maxStartedFile, {
          connection,
          useWorkerThreads,
          maxStartedAttempts: 1,
        });
        workers.push(worker);
        const failed = deferred<Error>();
        worker.on('failed', (_job, err) => failed.resolve(err));
        const spanFile = join(dir, `max-started-${useWorkerThreads}-${Date.now()}.jsonl`);
        // Attempts remain, but BullMQ does not retry a job started maxStartedAttempts times.
        const job = await traceQueue(raw).add('x', { spanFile }, { attempts: 3 });
        expect((await failed.promise).message).toBe('no retry');
        expect(await raw.getJobState(job.id as string)).toBe('failed');
        const deadline = Date.now() + 5000;
        while (childSpans(spanFile).length < 1 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 25));
        const [attempt, ...more] = childSpans(spanFile);
        expect(more).toEqual([]);
        expect(attempt?.attributes['messaging.message.id']).toBe(job.id);
        expect(attempt?.status.code).toBe(SpanStatusCode.ERROR);
        expect(attempt?.attributes['hoptrace.attempt.final']).toBe(true);
        expect(attempt?.attributes['hoptrace.error.retryable']).toBe(false);
      });
  },
);
