import { randomUUID } from 'node:crypto';
import { MAX_DESTINATION_LENGTH } from '@hoptrace/core/adapter';
import {
  brokerEndpoint,
  collectMetrics,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  TestMetricReader,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { JobsOptions as JobsOptionsV5 } from 'bullmq-v5';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';
import {
  BULLMQ_VERSIONS,
  byMessageId,
  cleanup,
  type QueueHandle,
  uniqueQueueName,
  type WorkerHandle,
} from './helpers.ts';

const tracing = useTestTracing();

class PaymentDeclined extends Error {
  override name = 'PaymentDeclined';
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: trace shape on real Redis', (_label, bullmq) => {
  const { Queue, Worker, FlowProducer } = bullmq;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  const connection = () => brokerEndpoint('redis');

  afterEach(async () => {
    await cleanup(workers, queues);
  });

  function setup(prefix: string, options: Parameters<typeof traceQueue>[1] = {}) {
    const name = uniqueQueueName(prefix);
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    return { name, raw, queue: traceQueue(raw, options) };
  }

  function startWorker(
    name: string,
    fn: (job: InstanceType<typeof bullmq.Job>) => Promise<unknown>,
    options = {},
  ) {
    const worker = new Worker(name, traceProcessor(fn, options), { connection: connection() });
    workers.push(worker);
    return worker;
  }

  const tracer = () => trace.getTracer('test');

  it('add: send PRODUCER span under the caller, process CONSUMER span under the send span', async () => {
    const { name, raw, queue } = setup('add');
    const processedIn = deferred<string | undefined>();
    startWorker(name, async () => {
      processedIn.resolve(trace.getActiveSpan()?.spanContext().spanId);
      return 'ok';
    });
    const job = await tracer().startActiveSpan('request', async (span) => {
      try {
        return await queue.add('greet', { hello: 'world' }, { attempts: 2, priority: 0 });
      } finally {
        span.end();
      }
    });
    const activeInHandler = await processedIn.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 1,
    );
    const request = onlySpan(spans, 'request');
    const send = onlySpan(spans, `send ${name}`);
    const process = onlySpan(spans, `process ${name}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(parentSpanId(send)).toBe(request.spanContext().spanId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(process.spanContext().traceId).toBe(request.spanContext().traceId);
    // The parent already ties them: no link repeating it (parentLink is opt-in).
    expect(process.links).toEqual([]);
    expect(activeInHandler).toBe(process.spanContext().spanId);
    expect(send.attributes).toMatchObject({
      'messaging.system.name': 'bullmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': name,
      'messaging.message.id': job.id,
      'bullmq.job.name': 'greet',
      'bullmq.job.attempts': 2,
      'server.address': connection().host,
      'server.port': connection().port,
    });
    expect(process.attributes).toMatchObject({
      'messaging.system.name': 'bullmq',
      'messaging.operation.type': 'process',
      'messaging.destination.name': name,
      'messaging.message.id': job.id,
      'bullmq.job.name': 'greet',
      'bullmq.job.attempt': 1,
    });
    expect(typeof process.attributes['bullmq.job.time_in_queue']).toBe('number');
    expect(process.status.code).toBe(SpanStatusCode.UNSET);
    // The carrier is BullMQ's own: a JSON W3C map in opts.telemetry.metadata; job.data is untouched.
    const stored = await bullmq.Job.fromId(raw, job.id as string);
    expect(stored?.data).toEqual({ hello: 'world' });
    const metadata = JSON.parse(stored?.opts.telemetry?.metadata ?? '{}') as Record<string, string>;
    expect(metadata.traceparent).toBe(`00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`);
  });

  it('addBulk by default: one send span whose context every job carries, no create spans; a job with its own keeps it', async () => {
    const { name, queue } = setup('bulk-default');
    const done = deferred();
    let count = 0;
    startWorker(name, async () => {
      if (++count === 4) done.resolve();
    });
    const own = { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` };
    await queue.addBulk([
      { name: 'a', data: 1 },
      { name: 'b', data: 2 },
      { name: 'own', data: 3, opts: { telemetry: { metadata: JSON.stringify(own) } } },
      { name: 'd', data: 4, opts: { delay: 5 } },
    ]);
    await done.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 4,
    );
    const send = onlySpan(spans, `send ${name}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.links.map((l) => l.context.spanId)).toEqual(['d'.repeat(16)]);
    expect(send.attributes['messaging.batch.message_count']).toBe(4);
    expect(spansNamed(spans, `create ${name}`)).toHaveLength(0);
    const processes = spansNamed(spans, `process ${name}`);
    const mine = processes.filter((p) => p.spanContext().traceId === 'c'.repeat(32));
    expect(mine.map(parentSpanId)).toEqual(['d'.repeat(16)]);
    const others = processes.filter((p) => p.spanContext().traceId !== 'c'.repeat(32));
    expect(others).toHaveLength(3);
    for (const p of others) {
      expect(p.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(parentSpanId(p)).toBe(send.spanContext().spanId);
    }
  });

  it('addBulk with createSpans: a create span per job, a CLIENT send span linked to them, each job processed under its create span', async () => {
    const { name, queue } = setup('bulk', { createSpans: true });
    const done = deferred();
    let count = 0;
    startWorker(name, async () => {
      if (++count === 3) done.resolve();
    });
    const jobs = await queue.addBulk([
      { name: 'a', data: 1 },
      { name: 'b', data: 2, opts: { delay: 10 } },
      { name: 'c', data: 3 },
    ]);
    await done.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 3,
    );
    const send = onlySpan(spans, `send ${name}`);
    const creates = spansNamed(spans, `create ${name}`);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.attributes['messaging.batch.message_count']).toBe(3);
    expect(creates).toHaveLength(3);
    for (const c of creates) expect(c.kind).toBe(SpanKind.PRODUCER);
    expect(new Set(send.links.map((l) => l.context.spanId))).toEqual(
      new Set(creates.map((c) => c.spanContext().spanId)),
    );
    const createById = byMessageId(spans, `create ${name}`);
    const processById = byMessageId(spans, `process ${name}`);
    expect([...createById.keys()].sort()).toEqual(jobs.map((j) => j.id).sort());
    for (const job of jobs) {
      const create = createById.get(job.id as string)?.[0] as ReadableSpan;
      const process = processById.get(job.id as string)?.[0] as ReadableSpan;
      expect(create.attributes['bullmq.job.name']).toBe(job.name);
      expect(parentSpanId(process)).toBe(create.spanContext().spanId);
      expect(process.spanContext().traceId).toBe(create.spanContext().traceId);
    }
    expect(createById.get(jobs[1]?.id as string)?.[0]?.attributes['bullmq.job.delay']).toBe(10);
  });

  it("addBulk with createSpans, a job carrying the caller's own context: no create span of its own, the send span links to that context (as Kafka)", async () => {
    const { name, queue } = setup('bulk-own', { createSpans: true });
    const done = deferred();
    let count = 0;
    startWorker(name, async () => {
      if (++count === 2) done.resolve();
    });
    const own = { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` };
    const jobs = await queue.addBulk([
      { name: 'a', data: 1 },
      { name: 'own', data: 2, opts: { telemetry: { metadata: JSON.stringify(own) } } },
    ]);
    await done.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const send = onlySpan(spans, `send ${name}`);
    const create = onlySpan(spans, `create ${name}`);
    expect(create.attributes['messaging.message.id']).toBe(jobs[0]?.id);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(new Set(send.links.map((l) => l.context.spanId))).toEqual(
      new Set([create.spanContext().spanId, 'd'.repeat(16)]),
    );
    const processById = byMessageId(spans, `process ${name}`);
    expect(parentSpanId(processById.get(jobs[0]?.id as string)?.[0] as ReadableSpan)).toBe(
      create.spanContext().spanId,
    );
    expect(parentSpanId(processById.get(jobs[1]?.id as string)?.[0] as ReadableSpan)).toBe('d'.repeat(16));
  });

  it('delayed and prioritized jobs keep their creation context as parent', async () => {
    const { name, queue } = setup('delayed');
    const done = deferred();
    let count = 0;
    startWorker(name, async () => {
      if (++count === 2) done.resolve();
    });
    const delayed = await queue.add('later', {}, { delay: 300 });
    const prioritized = await queue.add('urgent', {}, { priority: 5 });
    await done.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const sends = byMessageId(spans, `send ${name}`);
    const processes = byMessageId(spans, `process ${name}`);
    const delayedSend = sends.get(delayed.id as string)?.[0] as ReadableSpan;
    const delayedProcess = processes.get(delayed.id as string)?.[0] as ReadableSpan;
    const prioSend = sends.get(prioritized.id as string)?.[0] as ReadableSpan;
    const prioProcess = processes.get(prioritized.id as string)?.[0] as ReadableSpan;
    expect(delayedSend.attributes['bullmq.job.delay']).toBe(300);
    expect(prioSend.attributes['bullmq.job.priority']).toBe(5);
    expect(parentSpanId(delayedProcess)).toBe(delayedSend.spanContext().spanId);
    expect(parentSpanId(prioProcess)).toBe(prioSend.spanContext().spanId);
    // Time in queue counts from the end of the delay, not from add().
    expect(delayedProcess.attributes['bullmq.job.time_in_queue']).toBeLessThan(250);
    const delayedStartMs = delayedProcess.startTime[0] * 1000 + delayedProcess.startTime[1] / 1e6;
    const sendStartMs = delayedSend.startTime[0] * 1000 + delayedSend.startTime[1] / 1e6;
    expect(delayedStartMs - sendStartMs).toBeGreaterThanOrEqual(290);
  });

  it('retried: 3 attempts are 3 sibling spans under the send span, 2 failed and 1 ok', async () => {
    const { name, raw, queue } = setup('retry');
    const completed = deferred();
    const worker = startWorker(name, async (job) => {
      if (job.attemptsMade < 2) throw new PaymentDeclined(`attempt ${job.attemptsMade + 1}`);
      return 'paid';
    });
    worker.on('completed', () => completed.resolve());
    const job = await queue.add('charge', {}, { attempts: 3 });
    await completed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 3,
    );
    const send = onlySpan(spans, `send ${name}`);
    const attempts = spansNamed(spans, `process ${name}`).sort(
      (a, b) => Number(a.attributes['bullmq.job.attempt']) - Number(b.attributes['bullmq.job.attempt']),
    );
    expect(attempts.map((s) => s.attributes['bullmq.job.attempt'])).toEqual([1, 2, 3]);
    for (const s of attempts) {
      expect(parentSpanId(s)).toBe(send.spanContext().spanId);
      expect(s.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(s.attributes['messaging.message.id']).toBe(job.id);
    }
    expect(attempts.map((s) => s.status.code)).toEqual([
      SpanStatusCode.ERROR,
      SpanStatusCode.ERROR,
      SpanStatusCode.UNSET,
    ]);
    expect(attempts[0]?.attributes['error.type']).toBe('PaymentDeclined');
    expect(attempts[0]?.status.message).toBe('attempt 1');
    expect(attempts[0]?.events.map((e) => e.name)).toEqual(['exception']);
    expect(attempts[2]?.attributes['error.type']).toBeUndefined();
    const stored = await bullmq.Job.fromId(raw, job.id as string);
    expect(stored?.returnvalue).toBe('paid');
    expect(stored?.attemptsMade).toBe(3);
  });

  it('failed for good: the error reaches BullMQ unchanged and every attempt is an ERROR span', async () => {
    const { name, raw, queue } = setup('fail');
    const failed = deferred<{ err: Error; attemptsMade: number }>();
    const thrown = new PaymentDeclined('card expired');
    const worker = startWorker(name, async () => {
      throw thrown;
    });
    worker.on('failed', (job, err) => {
      if (job && job.attemptsMade >= 2) failed.resolve({ err, attemptsMade: job.attemptsMade });
    });
    const job = await queue.add('charge', {}, { attempts: 2 });
    const { err, attemptsMade } = await failed.promise;
    expect(err).toBe(thrown);
    expect(attemptsMade).toBe(2);
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const send = onlySpan(spans, `send ${name}`);
    for (const s of spansNamed(spans, `process ${name}`)) {
      expect(s.status.code).toBe(SpanStatusCode.ERROR);
      expect(s.attributes['error.type']).toBe('PaymentDeclined');
      expect(parentSpanId(s)).toBe(send.spanContext().spanId);
    }
    expect(await raw.getJobState(job.id as string)).toBe('failed');
  });

  it('job scheduler: every run is a new trace (under its own derived run root) linked to the scheduling context', async () => {
    const { name, raw, queue } = setup('sched');
    const runs = deferred();
    let count = 0;
    startWorker(name, async () => {
      if (++count === 3) runs.resolve();
    });
    await tracer().startActiveSpan('deploy', async (span) => {
      try {
        await queue.upsertJobScheduler('tick', { every: 150 }, { name: 'tick-job', data: { n: 1 } });
      } finally {
        span.end();
      }
    });
    await runs.promise;
    await raw.removeJobScheduler('tick');
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length >= 3,
    );
    const deploy = onlySpan(spans, 'deploy');
    const schedule = onlySpan(spans, `schedule ${name}`);
    expect(parentSpanId(schedule)).toBe(deploy.spanContext().spanId);
    expect(schedule.attributes['bullmq.scheduler.id']).toBe('tick');
    const processes = spansNamed(spans, `process ${name}`).slice(0, 3);
    const traceIds = new Set(processes.map((p) => p.spanContext().traceId));
    expect(traceIds.size).toBe(3);
    expect(traceIds.has(deploy.spanContext().traceId)).toBe(false);
    const exported = new Set(spans.map((s) => s.spanContext().spanId));
    for (const p of processes) {
      // The parent is the run's virtual root: derived from the job id, never exported.
      expect(parentSpanId(p)).toMatch(/^[0-9a-f]{16}$/);
      expect(exported.has(parentSpanId(p) as string)).toBe(false);
      expect(p.links.map((l) => l.context.spanId)).toEqual([schedule.spanContext().spanId]);
      expect(p.links[0]?.context.traceId).toBe(deploy.spanContext().traceId);
      expect(p.attributes['bullmq.scheduler.id']).toBe('tick');
      expect(p.attributes['bullmq.job.name']).toBe('tick-job');
    }
  });

  /**
   * Runs of a cron job scheduler under two deployments that share the queue name and scheduler id
   * (other key prefixes, or another Redis database): BullMQ gives both runs of the same second the
   * same job id (`repeat:{scheduler}:{millis}`); their process spans, by job id.
   */
  async function cronRunsOfTwoDeployments(
    deployments: ReadonlyArray<{ prefix: string; db: number }>,
    traced: boolean,
  ): Promise<{ ids: string[][]; spans: ReadableSpan[][]; schedules: ReadableSpan[] }> {
    const name = uniqueQueueName('bullf-cron');
    const ran = deployments.map(() => new Set<string>());
    const spans: ReadableSpan[][] = deployments.map(() => []);
    const common = deferred<string>();
    const raws = deployments.map(({ prefix, db }, i) => {
      const connectionOf = { ...connection(), db };
      const raw = new Queue(name, { connection: connectionOf, prefix });
      queues.push(raw);
      workers.push(
        new Worker(
          name,
          traceProcessor(async (job) => {
            const id = job.id as string;
            ran[i]?.add(id);
            spans[i]?.push(trace.getActiveSpan() as unknown as ReadableSpan);
            if (ran.every((set) => set.has(id))) common.resolve(id);
          }),
          { connection: connectionOf, prefix },
        ),
      );
      return raw;
    });
    await Promise.all(
      raws.map((raw) =>
        (traced ? traceQueue(raw) : raw).upsertJobScheduler(
          'nightly',
          { pattern: '* * * * * *' },
          { name: 'report' },
        ),
      ),
    );
    await common.promise;
    for (const raw of raws) await raw.removeJobScheduler('nightly');
    return {
      ids: ran.map((set) => [...set]),
      spans,
      schedules: spansNamed(tracing.current.spans(), `schedule ${name}`),
    };
  }

  it.each([
    { case: 'other key prefixes, schedulers created untraced', traced: false, same: 'db' },
    { case: 'other Redis databases, same prefix, schedulers created traced', traced: true, same: 'prefix' },
  ])(
    'job scheduler runs of two deployments given the same job id ($case) are two traces, not one',
    async ({ traced, same }) => {
      const suffix = randomUUID().slice(0, 8);
      const deployments =
        same === 'db'
          ? [
              { prefix: `bullf-a-${suffix}`, db: 0 },
              { prefix: `bullf-b-${suffix}`, db: 0 },
            ]
          : [
              { prefix: `bullf-${suffix}`, db: 0 },
              { prefix: `bullf-${suffix}`, db: 1 },
            ];
      const { ids, spans, schedules } = await cronRunsOfTwoDeployments(deployments, traced);
      expect(schedules).toHaveLength(traced ? 2 : 0);
      const shared = (ids[0] ?? []).filter((id) => ids[1]?.includes(id));
      expect(shared.length).toBeGreaterThan(0);
      for (const id of shared) {
        const [a, b] = spans.map((list) => list.find((s) => s.attributes['messaging.message.id'] === id));
        expect(a).toBeDefined();
        expect(b).toBeDefined();
        // Two jobs of two deployments: two runs, each its own trace under its own run root.
        expect(a?.spanContext().traceId).not.toBe(b?.spanContext().traceId);
        expect(parentSpanId(a as ReadableSpan)).not.toBe(parentSpanId(b as ReadableSpan));
        if (traced) {
          // Each run still links to its own deployment's scheduling context.
          expect(a?.links.map((l) => l.context.spanId)).toHaveLength(1);
          expect(b?.links.map((l) => l.context.spanId)).toHaveLength(1);
          expect(a?.links[0]?.context.spanId).not.toBe(b?.links[0]?.context.spanId);
          for (const link of [a?.links[0], b?.links[0]])
            expect(schedules.map((s) => s.spanContext().spanId)).toContain(link?.context.spanId);
        }
      }
    },
  );

  it("job scheduler whose template carries the caller's own context: a CLIENT schedule span linked to it, the runs link to that context", async () => {
    const { name, raw, queue } = setup('sched-own');
    const ran = deferred();
    startWorker(name, async () => ran.resolve());
    const own = { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` };
    await queue.upsertJobScheduler(
      'own',
      { every: 60_000 },
      { name: 'tick', opts: { telemetry: { metadata: JSON.stringify(own) } } },
    );
    await ran.promise;
    await raw.removeJobScheduler('own');
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 1,
    );
    const schedule = onlySpan(spans, `schedule ${name}`);
    expect(schedule.kind).toBe(SpanKind.CLIENT);
    expect(schedule.links.map((l) => l.context.spanId)).toEqual(['d'.repeat(16)]);
    expect(onlySpan(spans, `process ${name}`).links.map((l) => l.context.spanId)).toEqual(['d'.repeat(16)]);
  });

  // BullMQ 6 removed legacy repeatable jobs (`add` ignores `repeat`), so this exists for 5.x only.
  if (bullmq === BULLMQ_VERSIONS[1]?.[1]) {
    it('repeat options on add (legacy repeatable jobs): every run is a new trace linked to the send span', async () => {
      const { name, raw, queue } = setup('repeat');
      // Typed against the oldest version, which still has `repeat` in its job options.
      const legacyRepeat: JobsOptionsV5 = { repeat: { every: 150 } };
      const runs = deferred();
      let count = 0;
      startWorker(name, async () => {
        if (++count === 2) runs.resolve();
      });
      await queue.add('every', { n: 1 }, legacyRepeat as Parameters<typeof queue.add>[2]);
      await runs.promise;
      for (const scheduler of await raw.getJobSchedulers()) await raw.removeJobScheduler(scheduler.key);
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length >= 2,
      );
      const send = onlySpan(spans, `send ${name}`);
      const processes = spansNamed(spans, `process ${name}`).slice(0, 2);
      expect(new Set(processes.map((p) => p.spanContext().traceId)).size).toBe(2);
      for (const p of processes) {
        expect(parentSpanId(p)).toMatch(/^[0-9a-f]{16}$/);
        expect(p.spanContext().traceId).not.toBe(send.spanContext().traceId);
        expect(p.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
        expect(typeof p.attributes['bullmq.scheduler.id']).toBe('string');
      }
    });
  }

  it('flows with createSpans: a send span for the flow, every node created under it and processed under its create span', async () => {
    const { name } = setup('flow-parent');
    const childQueue = setup('flow-child');
    const flow = traceFlowProducer(new FlowProducer({ connection: connection() }), { createSpans: true });
    const parentDone = deferred<unknown>();
    startWorker(childQueue.name, async (job) => `child-${String(job.data)}`);
    startWorker(name, async (job) => {
      const values = await job.getChildrenValues();
      parentDone.resolve(values);
      return 'parent';
    });
    try {
      const tree = await tracer().startActiveSpan('checkout', async (span) => {
        try {
          return await flow.add({
            name: 'order',
            queueName: name,
            data: 'o',
            children: [
              { name: 'reserve', queueName: childQueue.name, data: 1 },
              { name: 'bill', queueName: childQueue.name, data: 2 },
            ],
          });
        } finally {
          span.end();
        }
      });
      expect(Object.values((await parentDone.promise) as Record<string, string>).sort()).toEqual([
        'child-1',
        'child-2',
      ]);
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) =>
          spansNamed(s, `process ${name}`).length === 1 &&
          spansNamed(s, `process ${childQueue.name}`).length === 2,
      );
      const checkout = onlySpan(spans, 'checkout');
      const send = onlySpan(spans, `send ${name}`);
      expect(send.kind).toBe(SpanKind.CLIENT);
      expect(parentSpanId(send)).toBe(checkout.spanContext().spanId);
      expect(send.attributes['messaging.batch.message_count']).toBe(3);
      const creates = [
        ...spansNamed(spans, `create ${name}`),
        ...spansNamed(spans, `create ${childQueue.name}`),
      ];
      expect(creates).toHaveLength(3);
      for (const c of creates) expect(parentSpanId(c)).toBe(send.spanContext().spanId);
      const createById = new Map(creates.map((c) => [String(c.attributes['messaging.message.id']), c]));
      const processes = [
        ...spansNamed(spans, `process ${name}`),
        ...spansNamed(spans, `process ${childQueue.name}`),
      ];
      const ids = [tree.job.id, ...(tree.children ?? []).map((c) => c.job.id)];
      expect([...createById.keys()].sort()).toEqual([...ids].sort());
      for (const p of processes) {
        const create = createById.get(String(p.attributes['messaging.message.id']));
        expect(create).toBeDefined();
        expect(parentSpanId(p)).toBe(create?.spanContext().spanId);
        expect(p.spanContext().traceId).toBe(checkout.spanContext().traceId);
      }
      // The parent's processing links to each child's creation context (its own is its parent).
      const parentProcess = onlySpan(spans, `process ${name}`);
      const childCreates = spansNamed(spans, `create ${childQueue.name}`).map((c) => c.spanContext().spanId);
      expect(parentProcess.links.map((l) => l.context.spanId).sort()).toEqual([...childCreates].sort());
      const childProcess = spansNamed(spans, `process ${childQueue.name}`)[0];
      expect(String(childProcess?.attributes['bullmq.flow.parent'])).toContain(String(tree.job.id));
    } finally {
      await flow.close();
    }
  });

  it("flows with createSpans, a child carrying the caller's own context: no create span of its own, the send span and the parent's processing link to that context", async () => {
    const { name } = setup('flow-own-parent');
    const childQueue = setup('flow-own-child');
    const flow = traceFlowProducer(new FlowProducer({ connection: connection() }), { createSpans: true });
    const parentDone = deferred();
    startWorker(childQueue.name, async (job) => job.name);
    startWorker(name, async () => {
      parentDone.resolve();
    });
    const own = { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` };
    try {
      const tree = await flow.add({
        name: 'order',
        queueName: name,
        children: [
          { name: 'mine', queueName: childQueue.name },
          {
            name: 'theirs',
            queueName: childQueue.name,
            opts: { telemetry: { metadata: JSON.stringify(own) } },
          },
        ],
      });
      await parentDone.promise;
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) =>
          spansNamed(s, `process ${name}`).length === 1 &&
          spansNamed(s, `process ${childQueue.name}`).length === 2,
      );
      const send = onlySpan(spans, `send ${name}`);
      const childCreate = onlySpan(spans, `create ${childQueue.name}`);
      const [mine, theirs] = tree.children ?? [];
      expect(childCreate.attributes['messaging.message.id']).toBe(mine?.job.id);
      expect(onlySpan(spans, `create ${name}`).attributes['messaging.message.id']).toBe(tree.job.id);
      expect(send.links.map((l) => l.context.spanId)).toEqual(['d'.repeat(16)]);
      const processById = byMessageId(spans, `process ${childQueue.name}`);
      expect(parentSpanId(processById.get(theirs?.job.id as string)?.[0] as ReadableSpan)).toBe(
        'd'.repeat(16),
      );
      expect(parentSpanId(processById.get(mine?.job.id as string)?.[0] as ReadableSpan)).toBe(
        childCreate.spanContext().spanId,
      );
      const parentProcess = onlySpan(spans, `process ${name}`);
      expect(parentProcess.links.map((l) => l.context.spanId).sort()).toEqual(
        [childCreate.spanContext().spanId, 'd'.repeat(16)].sort(),
      );
    } finally {
      await flow.close();
    }
  });

  it.each(['link', 'root'] as const)(
    'relation %s: the process span starts a new trace linked to the send span',
    async (relation) => {
      const { name, queue } = setup(`rel-${relation}`);
      const done = deferred();
      startWorker(
        name,
        async () => {
          done.resolve();
        },
        { relation },
      );
      await queue.add('x', {});
      await done.promise;
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 1,
      );
      const send = onlySpan(spans, `send ${name}`);
      const process = onlySpan(spans, `process ${name}`);
      expect(parentSpanId(process)).toBeUndefined();
      expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
    },
  );

  it('parentLink true: the attempt is a child of the send span and links to it too', async () => {
    const { name, queue } = setup('rel-link');
    const done = deferred();
    startWorker(
      name,
      async () => {
        done.resolve();
      },
      { parentLink: true },
    );
    await queue.add('x', {});
    await done.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 1,
    );
    const send = onlySpan(spans, `send ${name}`);
    const process = onlySpan(spans, `process ${name}`);
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
  });

  it('a huge queue name (BullMQ takes any length) is cut to 1024 characters in span names, messaging.destination.name and metric attributes', async () => {
    const name = `${uniqueQueueName('huge')}-${'q'.repeat(20_000)}`;
    const capped = name.slice(0, MAX_DESTINATION_LENGTH);
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw, { meterProvider });
    startWorker(name, async () => 'ok', { meterProvider });
    await queue.add('job', {});
    const spans = await waitForSpans(
      () => tracing.current.spans(),
      (s) => spansNamed(s, `process ${capped}`).length === 1,
    );
    const send = onlySpan(spans, `send ${capped}`);
    const process = onlySpan(spans, `process ${capped}`);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    for (const span of [send, process]) expect(span.attributes['messaging.destination.name']).toBe(capped);
    const metrics = await collectMetrics(reader);
    const points = [
      ...(metrics.get('messaging.client.sent.messages') ?? []),
      ...(metrics.get('messaging.client.consumed.messages') ?? []),
    ];
    expect(points).toHaveLength(2);
    for (const point of points) expect(point.attributes['messaging.destination.name']).toBe(capped);
    await meterProvider.shutdown();
  });

  it('manual processing (getNextJob, moveToCompleted/moveToFailed): a traced processor called directly gives each job its span', async () => {
    const { name, queue } = setup('manual');
    await tracer().startActiveSpan('request', async (span) => {
      await queue.add('ok', { n: 1 });
      await queue.add('bad', { n: 2 });
      span.end();
    });
    const worker = new Worker(name, null, { connection: connection() });
    workers.push(worker);
    const token = 'manual-token';
    const handle = traceProcessor(async (job: InstanceType<typeof bullmq.Job>) => {
      if (job.name === 'bad') throw new PaymentDeclined('declined');
      return trace.getActiveSpan()?.spanContext().spanId;
    });
    const activeIds: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const job = (await worker.getNextJob(token)) as InstanceType<typeof bullmq.Job>;
      try {
        const result = await handle(job);
        activeIds.push(result);
        await job.moveToCompleted(result, token, false);
      } catch (error) {
        await job.moveToFailed(error as Error, token, false);
      }
    }
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const sends = spansNamed(spans, `send ${name}`);
    expect(sends).toHaveLength(2);
    const processes = spansNamed(spans, `process ${name}`);
    const byParent = new Map(processes.map((p) => [parentSpanId(p), p]));
    for (const send of sends) expect(byParent.has(send.spanContext().spanId)).toBe(true);
    const ok = processes.find((p) => p.status.code !== SpanStatusCode.ERROR);
    const bad = processes.find((p) => p.status.code === SpanStatusCode.ERROR);
    expect(ok?.kind).toBe(SpanKind.CONSUMER);
    expect(activeIds).toEqual([ok?.spanContext().spanId]);
    expect(bad?.attributes['error.type']).toBe('PaymentDeclined');
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});
