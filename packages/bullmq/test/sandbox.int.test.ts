import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerEndpoint, deferred, useTestTracing } from '@hoptrace/test-kit';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceQueue } from '../src/index.ts';
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
  links?: string[];
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
    it('a flow parent under one key prefix links to its children; a copy of its exact metadata (same queue name and id) under another prefix links to none', async () => {
      const connection = brokerEndpoint('redis');
      const parentName = uniqueQueueName('sandbox-pfx-parent');
      const childName = uniqueQueueName('sandbox-pfx-child');
      const staging = 'hoptrace-staging';
      const prod = '{hoptrace-prod}';
      for (const prefix of [staging, prod])
        for (const name of [parentName, childName])
          queues.push(new bullmq.Queue(name, { connection, prefix }));
      const inStaging = new bullmq.Queue(parentName, { connection, prefix: staging });
      const inProd = new bullmq.Queue(parentName, { connection, prefix: prod });
      queues.push(inStaging, inProd);
      const children = new bullmq.Worker(childName, async () => 'child', { connection, prefix: staging });
      const parents = new bullmq.Worker(parentName, processorFile, {
        connection,
        useWorkerThreads,
        prefix: staging,
      });
      const copies = new bullmq.Worker(parentName, processorFile, {
        connection,
        useWorkerThreads,
        prefix: prod,
      });
      workers.push(children, parents, copies);
      const parentDone = deferred<unknown>();
      const copyDone = deferred<unknown>();
      parents.on('completed', (_job, value) => parentDone.resolve(value));
      copies.on('completed', (_job, value) => copyDone.resolve(value));
      const spanFile = join(
        dir,
        `prefix-${label.replace(/\W/g, '')}-${useWorkerThreads}-${Date.now()}.jsonl`,
      );
      const flow = traceFlowProducer(new bullmq.FlowProducer({ connection, prefix: staging }), {
        createSpans: true,
      });
      const id = `order-${randomUUID()}`;
      try {
        await flow.add({
          name: 'order',
          queueName: parentName,
          data: { spanFile },
          opts: { jobId: id },
          children: [
            { name: 'a', queueName: childName },
            { name: 'b', queueName: childName },
          ],
        });
      } finally {
        await flow.close();
      }
      await parentDone.promise;
      const parent = await inStaging.getJob(id);
      const telemetry = parent?.opts.telemetry;
      if (!telemetry?.metadata) throw new Error('the flow parent carries no telemetry');
      await inProd.add('copy', { spanFile }, { telemetry, jobId: id });
      await copyDone.promise;

      const deadline = Date.now() + 5000;
      while (childSpans(spanFile).length < 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 25));
      const ended = childSpans(spanFile);
      expect(ended).toHaveLength(2);
      const childCreates = tracing.current
        .spans()
        .filter((s) => s.name === `create ${childName}`)
        .map((s) => s.spanContext().spanId);
      expect(childCreates).toHaveLength(2);
      const parentCreate = tracing.current.spans().find((s) => s.name === `create ${parentName}`);
      const parentSpan = ended.find((s) => s.attributes['bullmq.job.name'] === 'order');
      const copySpan = ended.find((s) => s.attributes['bullmq.job.name'] === 'copy');
      expect(parentSpan?.attributes['messaging.message.id']).toBe(id);
      expect([...(parentSpan?.links ?? [])].sort()).toEqual([...childCreates].sort());
      expect(copySpan?.attributes['messaging.message.id']).toBe(id);
      expect(copySpan?.parentSpanId).toBe(parentCreate?.spanContext().spanId);
      expect(copySpan?.links).toEqual([]);
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
