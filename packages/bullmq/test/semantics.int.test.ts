import { randomUUID } from 'node:crypto';
import { injectContext, METRIC_HOPTRACE_TIME_IN_QUEUE } from '@hoptrace/core';
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
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();
const tracer = () => trace.getTracer('test');

function controlFlowEvents(span: ReadableSpan | undefined): unknown[] {
  return (span?.events ?? [])
    .filter((e) => e.name === 'hoptrace.control_flow')
    .map((e) => e.attributes?.['hoptrace.control_flow.reason']);
}

function byAttempt(spans: ReadableSpan[]): ReadableSpan[] {
  return [...spans].sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: graph and control flow on real Redis', (label, bullmq) => {
  const { Queue, Worker } = bullmq;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  const connection = () => brokerEndpoint('redis');
  afterEach(async () => cleanup(workers, queues));

  function setup(prefix: string) {
    const name = uniqueQueueName(prefix);
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    return { name, raw, queue: traceQueue(raw) };
  }

  function worker(
    name: string,
    fn: (job: InstanceType<typeof bullmq.Job>, token?: string) => Promise<unknown>,
    options: Parameters<typeof traceProcessor>[1] = {},
    workerOpts = {},
  ) {
    const w = new Worker(name, traceProcessor(fn, options), { connection: connection(), ...workerOpts });
    workers.push(w);
    return w;
  }

  it('DelayedError and RateLimitError: the attempt span is UNSET with a control_flow event, then the job completes', async () => {
    const { name, queue } = setup('ctl');
    const completed = deferred();
    let calls = 0;
    const w = worker(name, async (job, token) => {
      calls++;
      if (calls === 1) {
        await job.moveToDelayed(Date.now() + 20, token);
        throw new bullmq.DelayedError();
      }
      if (calls === 2) {
        await w.rateLimit(20);
        throw Worker.RateLimitError();
      }
      return 'done';
    });
    w.on('completed', () => completed.resolve());
    await queue.add('ctl', {}, { attempts: 1 });
    await completed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 3,
    );
    const attempts = byAttempt(spansNamed(spans, `process ${name}`));
    expect(attempts.map((s) => s.status.code)).toEqual([
      SpanStatusCode.UNSET,
      SpanStatusCode.UNSET,
      SpanStatusCode.UNSET,
    ]);
    expect(attempts.map(controlFlowEvents)).toEqual([['DelayedError'], ['RateLimitError'], []]);
    for (const s of attempts) {
      expect(s.attributes['error.type']).toBeUndefined();
      expect(s.attributes['hoptrace.attempt.final']).toBeUndefined();
      expect(s.events.some((e) => e.name === 'exception')).toBe(false);
    }
  });

  it('a job re-run after a DelayedError records its time in queue once, on its first start', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const { name, queue } = setup('ctl-tiq');
    const completed = deferred();
    let calls = 0;
    const w = worker(
      name,
      async (job, token) => {
        if (++calls === 1) {
          await job.moveToDelayed(Date.now() + 200, token);
          throw new bullmq.DelayedError();
        }
        return 'ok';
      },
      { meterProvider },
    );
    w.on('completed', () => completed.resolve());
    await queue.add('tiq', {});
    await completed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const [first, rerun] = byAttempt(spansNamed(spans, `process ${name}`));
    expect(first?.attributes['bullmq.job.time_in_queue']).toBeTypeOf('number');
    expect(rerun?.attributes['bullmq.job.time_in_queue']).toBeUndefined();
    const waited = (await collectMetrics(reader)).get(METRIC_HOPTRACE_TIME_IN_QUEUE) ?? [];
    expect((waited[0]?.value as { count: number } | undefined)?.count).toBe(1);
    await meterProvider.shutdown();
  });

  it('time in queue: a job timestamp no clock could have given (1 s after the epoch, a day ahead) records nothing, on the metric and the span', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const { name, queue } = setup('tiq-bad');
    let done = 0;
    worker(
      name,
      async () => {
        done++;
      },
      { meterProvider },
    );
    await queue.add('epoch', {}, { timestamp: 1000 });
    await queue.add('ahead', {}, { timestamp: Date.now() + 86_400_000 });
    await queue.add('real', {}, { timestamp: Date.now() - 5000 });
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 3,
    );
    expect(done).toBe(3);
    const waitedMs = Object.fromEntries(
      spansNamed(spans, `process ${name}`).map((s) => [
        s.attributes['bullmq.job.name'],
        s.attributes['bullmq.job.time_in_queue'],
      ]),
    );
    expect(waitedMs.epoch).toBeUndefined();
    expect(waitedMs.ahead).toBeUndefined();
    expect(waitedMs.real).toBeGreaterThanOrEqual(5000);
    const waited = (await collectMetrics(reader)).get(METRIC_HOPTRACE_TIME_IN_QUEUE) ?? [];
    const histogram = waited[0]?.value as { count: number; min: number; max: number };
    expect(histogram.count).toBe(1);
    expect(histogram.min).toBeGreaterThanOrEqual(5);
    expect(histogram.max).toBeLessThan(60);
    await meterProvider.shutdown();
  });

  it('time in queue: a delayed job promoted (job.promote) or re-delayed shorter (job.changeDelay) before its delay ran out still records its wait, on the metric and the span', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const { name, queue } = setup('todayrev-tiq-promoted');
    worker(name, async () => undefined, { meterProvider });
    const promoted = await queue.add('promoted', {}, { delay: 600_000 });
    const changed = await queue.add('changed', {}, { delay: 600_000 });
    await promoted.promote();
    await changed.changeDelay(50);
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    for (const span of spansNamed(spans, `process ${name}`)) {
      const waitedMs = span.attributes['bullmq.job.time_in_queue'];
      expect(waitedMs, String(span.attributes['bullmq.job.name'])).toBeTypeOf('number');
      expect(waitedMs).toBeGreaterThanOrEqual(0);
      expect(waitedMs).toBeLessThan(60_000);
    }
    const waited = (await collectMetrics(reader)).get(METRIC_HOPTRACE_TIME_IN_QUEUE) ?? [];
    expect((waited[0]?.value as { count: number } | undefined)?.count).toBe(2);
    await meterProvider.shutdown();
  });

  it('time in queue: each run of a job scheduler counts from when it became due (its timestamp + delay), not from when it was scheduled', async () => {
    const { name, queue } = setup('todayrev-tiq-scheduler');
    worker(name, async () => undefined);
    await queue.upsertJobScheduler('every', { every: 700 }, { name: 'tick' });
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length >= 3,
      10_000,
    );
    await queue.removeJobScheduler('every');
    for (const span of spansNamed(spans, `process ${name}`).slice(0, 3)) {
      const waitedMs = span.attributes['bullmq.job.time_in_queue'];
      expect(waitedMs).toBeTypeOf('number');
      expect(waitedMs).toBeGreaterThanOrEqual(0);
      expect(waitedMs).toBeLessThan(600); // an idle worker picks a due run up at once; 700 without the delay
    }
  });

  it("a flow parent relayed with its own telemetry: the relayed job's process span continues the parent's context and links to none of its children", async () => {
    const parentName = uniqueQueueName('relay-parent');
    const childName = uniqueQueueName('relay-child');
    const { name: nextName, queue: next } = setup('relay-next');
    for (const name of [parentName, childName]) queues.push(new Queue(name, { connection: connection() }));
    const flow = traceFlowProducer(new bullmq.FlowProducer({ connection: connection() }), {
      createSpans: true,
    });
    const relayed = deferred();
    worker(childName, async () => 'child');
    worker(parentName, async (job) => {
      const telemetry = job.opts.telemetry;
      await next.add('relayed', {}, telemetry ? { telemetry } : {});
    });
    worker(nextName, async () => {
      relayed.resolve();
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
    }
    // The parent's attempt ends when BullMQ records its completion, which can come after the relayed
    // job ran: wait for both.
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) =>
        spansNamed(s, `process ${nextName}`).length === 1 &&
        spansNamed(s, `process ${parentName}`).length === 1,
    );
    const parentProcess = onlySpan(spans, `process ${parentName}`);
    expect(parentProcess.links).toHaveLength(2);
    const parentCreate = onlySpan(spans, `create ${parentName}`);
    const relay = onlySpan(spans, `process ${nextName}`);
    expect(relay.spanContext().traceId).toBe(parentCreate.spanContext().traceId);
    expect(relay.links).toEqual([]);
  });

  it("a flow parent's metadata copied by an untraced add (same or another job id): the copies' process spans link to none of the parent's children", async () => {
    const parentName = uniqueQueueName('copy-parent');
    const childName = uniqueQueueName('copy-child');
    const { name: nextName, raw: untraced } = setup('copy-next');
    for (const name of [parentName, childName]) queues.push(new Queue(name, { connection: connection() }));
    const flow = traceFlowProducer(new bullmq.FlowProducer({ connection: connection() }), {
      createSpans: true,
    });
    const copies = deferred();
    let processed = 0;
    let relayedMetadata: string | undefined;
    worker(childName, async () => 'child');
    worker(parentName, async (job) => {
      // Another tool (or a plain Queue) relays the metadata as it is, hoptrace's child list included.
      const { telemetry } = job.opts;
      relayedMetadata = telemetry?.metadata;
      if (!telemetry || job.id === undefined) throw new Error('the flow parent carries no telemetry or id');
      await untraced.add('copy', {}, { telemetry });
      await untraced.add('same-id', {}, { telemetry, jobId: job.id });
    });
    worker(nextName, async () => {
      if (++processed === 2) copies.resolve();
    });
    const parentId = `order-${randomUUID()}`;
    try {
      await flow.add({
        name: 'order',
        queueName: parentName,
        opts: { jobId: parentId },
        children: [
          { name: 'a', queueName: childName },
          { name: 'b', queueName: childName },
        ],
      });
      await copies.promise;
    } finally {
      await flow.close();
    }
    // The parent's attempt ends when BullMQ records its completion, which can come after the copies
    // ran: wait for it too.
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) =>
        spansNamed(s, `process ${nextName}`).length === 2 &&
        spansNamed(s, `process ${parentName}`).length === 1,
    );
    expect(relayedMetadata).toContain('hoptrace-children');
    const parentProcess = onlySpan(spans, `process ${parentName}`);
    expect(parentProcess.attributes['messaging.message.id']).toBe(parentId);
    const childCreates = spansNamed(spans, `create ${childName}`).map((c) => c.spanContext().spanId);
    expect(parentProcess.links.map((l) => l.context.spanId).sort()).toEqual(childCreates.sort());
    const parentCreate = onlySpan(spans, `create ${parentName}`);
    for (const copy of spansNamed(spans, `process ${nextName}`)) {
      // The copy continues the parent's context (its metadata), but it is not the flow's parent.
      expect(parentSpanId(copy)).toBe(parentCreate.spanContext().spanId);
      expect(copy.links, String(copy.attributes['bullmq.job.name'])).toEqual([]);
    }
  });

  it.each([
    { given: "the FlowProducer's prefix", parentId: true },
    { given: "the nodes' own prefix", parentId: false },
  ])(
    "a flow parent under one key prefix ($given): a copy of its exact metadata (same queue name and id) under another prefix links to none of its children, a copy of an earlier release's marker (no prefix) still does",
    async ({ given, parentId: withId }) => {
      const parentName = uniqueQueueName('pfx-parent');
      const childName = uniqueQueueName('pfx-child');
      // Two environments (or tenants) sharing one Redis, and a third that runs an earlier release.
      const staging = 'hoptrace-staging';
      const prod = '{hoptrace-prod}';
      const legacy = 'hoptrace-legacy';
      for (const prefix of [staging, prod, legacy])
        for (const name of [parentName, childName])
          queues.push(new Queue(name, { connection: connection(), prefix }));
      const inProd = new Queue(parentName, { connection: connection(), prefix: prod });
      const inLegacy = new Queue(parentName, { connection: connection(), prefix: legacy });
      queues.push(inProd, inLegacy);
      const byProducer = given === "the FlowProducer's prefix";
      const flow = traceFlowProducer(
        new bullmq.FlowProducer({ connection: connection(), ...(byProducer ? { prefix: staging } : {}) }),
        { createSpans: true },
      );
      const copies = deferred();
      let processed = 0;
      let marker: unknown;
      worker(childName, async () => 'child', {}, { prefix: staging });
      worker(
        parentName,
        async (job) => {
          const { telemetry } = job.opts;
          if (!telemetry?.metadata || job.id === undefined)
            throw new Error('the flow parent carries no telemetry or id');
          const carrier = JSON.parse(telemetry.metadata) as Record<string, unknown>;
          marker = carrier['hoptrace-children-of'];
          // The exact metadata, under the same queue name and job id, in another environment.
          await inProd.add('copy', {}, { telemetry, jobId: job.id });
          // The marker an earlier release wrote (no prefix), copied the same way.
          const { prefix: _prefix, ...earlier } = marker as Record<string, unknown>;
          const metadata = JSON.stringify({ ...carrier, 'hoptrace-children-of': earlier });
          await inLegacy.add('earlier-release', {}, { telemetry: { metadata }, jobId: job.id });
        },
        {},
        { prefix: staging },
      );
      for (const prefix of [prod, legacy])
        worker(
          parentName,
          async () => {
            if (++processed === 2) copies.resolve();
          },
          {},
          { prefix },
        );
      const id = `order-${randomUUID()}`;
      const nodePrefix = byProducer ? {} : { prefix: staging };
      try {
        await flow.add({
          name: 'order',
          queueName: parentName,
          ...nodePrefix,
          ...(withId ? { opts: { jobId: id } } : {}),
          children: [
            { name: 'a', queueName: childName, ...nodePrefix },
            { name: 'b', queueName: childName, ...nodePrefix },
          ],
        });
        await copies.promise;
      } finally {
        await flow.close();
      }
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${parentName}`).length === 3,
      );
      const processes = spansNamed(spans, `process ${parentName}`);
      const named = (jobName: string) => {
        const found = processes.filter((s) => s.attributes['bullmq.job.name'] === jobName);
        expect(found, jobName).toHaveLength(1);
        return found[0] as ReadableSpan;
      };
      const parentProcess = named('order');
      const parentJobId = parentProcess.attributes['messaging.message.id'];
      if (withId) expect(parentJobId).toBe(id);
      expect(marker).toEqual(
        withId ? { prefix: staging, queue: parentName, id } : { prefix: staging, queue: parentName },
      );
      const childCreates = spansNamed(spans, `create ${childName}`).map((c) => c.spanContext().spanId);
      expect(childCreates).toHaveLength(2);
      expect(parentProcess.links.map((l) => l.context.spanId).sort()).toEqual([...childCreates].sort());
      const parentCreate = onlySpan(spans, `create ${parentName}`);
      const copy = named('copy');
      expect(copy.attributes['messaging.message.id']).toBe(parentJobId);
      expect(parentSpanId(copy)).toBe(parentCreate.spanContext().spanId);
      expect(copy.links).toEqual([]);
      const earlier = named('earlier-release');
      expect(earlier.attributes['messaging.message.id']).toBe(parentJobId);
      expect(parentSpanId(earlier)).toBe(parentCreate.spanContext().spanId);
      expect(earlier.links.map((l) => l.context.spanId).sort()).toEqual([...childCreates].sort());
    },
  );

  it('a flow parent added without a jobId is the job BullMQ adds raw: no opts.jobId on the returned or stored job, and a copy of its options adds a new job (differential)', async () => {
    const connection = brokerEndpoint('redis');
    const outcome = async (traced: boolean) => {
      const parentName = uniqueQueueName('noid-parent');
      const childName = uniqueQueueName('noid-child');
      const parents = new Queue(parentName, { connection });
      queues.push(parents, new Queue(childName, { connection }));
      const raw = new bullmq.FlowProducer({ connection });
      const flow = traced ? traceFlowProducer(raw, { createSpans: true }) : raw;
      try {
        const tree = await flow.add({
          name: 'order',
          queueName: parentName,
          children: [{ name: 'a', queueName: childName }],
        });
        const stored = await parents.getJob(tree.job.id as string);
        if (!stored) throw new Error('the flow parent was not stored');
        // A common way to run a job again: add one with its name, data and options.
        const again = await parents.add(stored.name, stored.data, stored.opts);
        return {
          returnedJobId: tree.job.opts.jobId,
          storedJobId: stored.opts.jobId,
          againIsNew: again.id !== stored.id,
          waiting: await parents.getWaitingCount(),
          waitingChildren: await parents.getWaitingChildrenCount(),
        };
      } finally {
        await raw.close();
      }
    };
    const untraced = await outcome(false);
    expect(untraced).toEqual({
      returnedJobId: undefined,
      storedJobId: undefined,
      againIsNew: true,
      waiting: 1,
      waitingChildren: 1,
    });
    expect(await outcome(true)).toEqual(untraced);
  });

  it('subclasses are what BullMQ takes them for: a DelayedError subclass is control flow, an UnrecoverableError subclass the final attempt', async () => {
    class RetryLater extends bullmq.DelayedError {}
    class Gone extends bullmq.UnrecoverableError {}
    const { name, queue, raw } = setup('ctl-sub');
    const failed = deferred();
    let calls = 0;
    const w = worker(name, async (job, token) => {
      if (++calls === 1) {
        await job.moveToDelayed(Date.now() + 20, token);
        throw new RetryLater();
      }
      throw new Gone('gone');
    });
    w.on('failed', () => failed.resolve());
    const job = await queue.add('ctl', {}, { attempts: 5 });
    await failed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const [delayed, final] = byAttempt(spansNamed(spans, `process ${name}`));
    expect(delayed?.status.code).toBe(SpanStatusCode.UNSET);
    expect(controlFlowEvents(delayed)).toEqual(['DelayedError']);
    expect(delayed?.attributes['hoptrace.attempt.final']).toBeUndefined();
    expect(final?.status.code).toBe(SpanStatusCode.ERROR);
    expect(final?.attributes).toMatchObject({
      'hoptrace.attempt.final': true,
      'hoptrace.error.retryable': false,
    });
    // BullMQ agrees: the job failed for good on its second run, with attempts to spare.
    expect(await raw.getJobState(String(job.id))).toBe('failed');
    expect(calls).toBe(2);
  });

  it('a processor returning a value whose `then` getter throws: BullMQ fails the job with that error, and the attempt span says so', async () => {
    const strict = () =>
      new Proxy({} as Record<string, unknown>, {
        get(_target, property) {
          if (property === 'then') throw new Error('strict: no then');
          return undefined;
        },
      });
    /** Runs one job through a worker (traced or not) whose processor returns `strict()` synchronously. */
    async function run(traced: boolean) {
      const { name, queue, raw } = setup('ctl-then');
      const failed = deferred();
      const processor = (() => strict()) as unknown as (job: unknown) => Promise<unknown>;
      const w = new Worker(name, traced ? traceProcessor(processor) : processor, {
        connection: connection(),
      });
      workers.push(w);
      w.on('failed', () => failed.resolve());
      const job = await (traced ? queue : raw).add('then', {});
      await failed.promise;
      const stored = await raw.getJob(String(job.id));
      return { name, state: await raw.getJobState(String(job.id)), reason: stored?.failedReason };
    }
    const withoutHoptrace = await run(false);
    expect(withoutHoptrace).toMatchObject({ state: 'failed', reason: 'strict: no then' });
    const traced = await run(true);
    expect({ state: traced.state, reason: traced.reason }).toEqual({
      state: withoutHoptrace.state,
      reason: withoutHoptrace.reason,
    });
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${traced.name}`).length === 1,
    );
    const attempt = onlySpan(spans, `process ${traced.name}`);
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt.events.map((e) => e.name)).toContain('exception');
  });

  it("the user's own classes named like BullMQ's (not extending them) are failures, as BullMQ takes them", async () => {
    class DelayedError extends Error {}
    class UnrecoverableError extends Error {}
    const { name, queue, raw } = setup('ctl-own');
    const failed = deferred();
    let calls = 0;
    const w = worker(name, async () => {
      if (++calls === 1) throw new DelayedError('mine');
      throw new UnrecoverableError('mine too');
    });
    w.on('failed', (job) => {
      if ((job?.attemptsMade ?? 0) >= 3) failed.resolve();
    });
    const job = await queue.add('ctl', {}, { attempts: 3 });
    await failed.promise;
    // BullMQ failed the first attempt and retried the second: neither is one of its own errors.
    expect(await raw.getJobState(String(job.id))).toBe('failed');
    expect(calls).toBe(3);
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 3,
    );
    const attempts = byAttempt(spansNamed(spans, `process ${name}`));
    for (const span of attempts) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(controlFlowEvents(span)).toEqual([]);
    }
    expect(attempts.map((s) => s.attributes['hoptrace.attempt.final'])).toEqual([false, false, true]);
  });

  it('an error named like a signal this BullMQ does not take as one is a failure (RateLimitError by name; WaitingError before 5.41)', async () => {
    const named = (errorName: string, message: string): Error => {
      const error = new Error(message);
      error.name = errorName;
      return error;
    };
    // BullMQ tells a rate limit by its message only; WaitingError came with Job.moveToWait (5.41).
    const waitingIsSignal = label.startsWith('newest');
    const thrown = [
      named('RateLimitError', 'slow down'),
      ...(waitingIsSignal ? [] : [named('WaitingError', 'mine')]),
    ];
    const { name, queue, raw } = setup('ctl-named');
    const failed = deferred();
    let calls = 0;
    const w = worker(name, async () => {
      throw thrown[calls++];
    });
    w.on('failed', (job) => {
      if ((job?.attemptsMade ?? 0) >= thrown.length) failed.resolve();
    });
    const job = await queue.add('ctl', {}, { attempts: thrown.length });
    await failed.promise;
    expect(await raw.getJobState(String(job.id))).toBe('failed');
    expect(calls).toBe(thrown.length);
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === thrown.length,
    );
    const attempts = byAttempt(spansNamed(spans, `process ${name}`));
    expect(attempts.map((s) => s.status.code)).toEqual(thrown.map(() => SpanStatusCode.ERROR));
    expect(attempts.map((s) => s.attributes['error.type'])).toEqual(thrown.map((e) => e.name));
    expect(attempts.map(controlFlowEvents)).toEqual(thrown.map(() => []));
  });

  it('a rate limit is recognised by its message, whatever the error is named', async () => {
    const { name, queue } = setup('ctl-rate');
    const completed = deferred();
    let calls = 0;
    const w = worker(name, async () => {
      if (++calls === 1) {
        const error = new Error('bullmq:rateLimitExceeded');
        error.name = 'DelayedError'; // BullMQ checks the rate-limit message first
        throw error;
      }
      return 'done';
    });
    w.on('completed', () => completed.resolve());
    await queue.add('r', {});
    await completed.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const attempts = byAttempt(spansNamed(spans, `process ${name}`));
    expect(attempts.map(controlFlowEvents)).toEqual([['RateLimitError'], []]);
    expect(attempts.map((s) => s.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
  });

  it('WaitingChildrenError: the parent attempt that waits is UNSET with a control_flow event', async () => {
    const parent = setup('ctl-parent');
    const child = setup('ctl-child');
    const done = deferred();
    let calls = 0;
    worker(child.name, async () => 'child');
    const w = worker(parent.name, async (job, token) => {
      if (++calls === 1) {
        // A child added while processing: the parent waits for it.
        await child.queue.add('c', {}, { parent: { id: job.id as string, queue: job.queueQualifiedName } });
        if (await job.moveToWaitingChildren(token as string)) throw new bullmq.WaitingChildrenError();
      }
      return 'parent';
    });
    w.on('completed', (job) => {
      if (job.queueName === parent.name) done.resolve();
    });
    await parent.queue.add('p', {});
    await done.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${parent.name}`).length === 2,
    );
    const attempts = byAttempt(spansNamed(spans, `process ${parent.name}`));
    expect(attempts.map((s) => s.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
    expect(attempts.map(controlFlowEvents)).toEqual([['WaitingChildrenError'], []]);
  });

  if (label.startsWith('newest')) {
    it('a failed job retried with its counters reset (BullMQ 6) records its time in queue once, on its first start', async () => {
      const reader = new TestMetricReader();
      const meterProvider = new MeterProvider({ readers: [reader] });
      const { name, queue, raw } = setup('retry-tiq');
      const failed = deferred();
      const completed = deferred();
      let fail = true;
      const w = worker(
        name,
        async () => {
          if (fail) throw new Error('first');
          return 'ok';
        },
        { meterProvider },
      );
      w.on('failed', () => failed.resolve());
      w.on('completed', () => completed.resolve());
      const added = await queue.add('tiq', {});
      await failed.promise;
      fail = false;
      const job = await bullmq.Job.fromId(raw, added.id as string);
      await job?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      await completed.promise;
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 2,
      );
      const [first, rerun] = byAttempt(spansNamed(spans, `process ${name}`));
      expect(first?.attributes['bullmq.job.time_in_queue']).toBeTypeOf('number');
      expect(rerun?.attributes['bullmq.job.attempt']).toBe(1);
      expect(rerun?.attributes['bullmq.job.time_in_queue']).toBeUndefined();
      const waited = (await collectMetrics(reader)).get(METRIC_HOPTRACE_TIME_IN_QUEUE) ?? [];
      expect((waited[0]?.value as { count: number } | undefined)?.count).toBe(1);
      await meterProvider.shutdown();
    });

    it('WaitingError (BullMQ 6): UNSET with a control_flow event', async () => {
      const { name, queue } = setup('ctl-wait');
      const completed = deferred();
      let calls = 0;
      const w = worker(name, async (job, token) => {
        if (++calls === 1) {
          await (job as unknown as { moveToWait(token?: string): Promise<number> }).moveToWait(token);
          throw new (bullmq as unknown as { WaitingError: new () => Error }).WaitingError();
        }
        return 'done';
      });
      w.on('completed', () => completed.resolve());
      await queue.add('w', {});
      await completed.promise;
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 2,
      );
      const attempts = byAttempt(spansNamed(spans, `process ${name}`));
      expect(attempts.map(controlFlowEvents)).toEqual([['WaitingError'], []]);
      expect(attempts[0]?.status.code).toBe(SpanStatusCode.UNSET);
    });
  }

  if (label.startsWith('newest')) {
    it('a (job, token, signal) processor still gets the AbortSignal of BullMQ 6: cancelJob aborts it', async () => {
      const { name, queue } = setup('signal');
      const started = deferred();
      const aborted = deferred<unknown>();
      const processor = traceProcessor(async (_job: unknown, _token?: string, signal?: AbortSignal) => {
        started.resolve();
        await new Promise<void>((resolve) => {
          signal?.addEventListener('abort', () => {
            aborted.resolve(signal.reason);
            resolve();
          });
        });
        throw new Error('cancelled');
      });
      const w = new Worker(name, processor, { connection: connection() });
      workers.push(w);
      const job = await queue.add('long', {});
      await started.promise;
      expect(
        (w as unknown as { cancelJob(id: string, reason?: string): boolean }).cancelJob(
          job.id as string,
          'stop',
        ),
      ).toBe(true);
      await expect(aborted.promise).resolves.toBe('stop');
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 1,
      );
      expect(onlySpan(spans, `process ${name}`).status.code).toBe(SpanStatusCode.ERROR);
    });
  }

  it("retries of one scheduled run are siblings in that run's trace; each run has its own trace", async () => {
    const { name, raw, queue } = setup('sched-retry');
    const runs = deferred();
    let completedRuns = 0;
    const w = worker(name, async (job) => {
      if (job.attemptsMade === 0) throw new Error('first attempt fails');
      return 'ok';
    });
    w.on('completed', () => {
      if (++completedRuns === 2) runs.resolve();
    });
    await queue.upsertJobScheduler(
      'tick',
      { every: 200 },
      { name: 'tick', opts: { attempts: 2, backoff: 0 } },
    );
    await runs.promise;
    await raw.removeJobScheduler('tick');
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length >= 4,
    );
    const byJob = new Map<string, ReadableSpan[]>();
    for (const s of spansNamed(spans, `process ${name}`)) {
      const id = String(s.attributes['messaging.message.id']);
      byJob.set(id, [...(byJob.get(id) ?? []), s]);
    }
    const complete = [...byJob.values()].filter((list) => list.length === 2).slice(0, 2);
    expect(complete).toHaveLength(2);
    const traces = new Set<string>();
    for (const attempts of complete) {
      const [first, second] = byAttempt(attempts);
      expect(first?.attributes['bullmq.job.attempt']).toBe(1);
      expect(second?.attributes['bullmq.job.attempt']).toBe(2);
      expect(first?.status.code).toBe(SpanStatusCode.ERROR);
      expect(second?.spanContext().traceId).toBe(first?.spanContext().traceId);
      expect(parentSpanId(second as ReadableSpan)).toBe(parentSpanId(first as ReadableSpan));
      traces.add(String(first?.spanContext().traceId));
    }
    expect(traces.size).toBe(2);
  });

  it("a job carrying the caller's own context: a CLIENT send span linked to it, processed under it (as Kafka and AMQP)", async () => {
    const { name, queue } = setup('own-ctx');
    const done = deferred();
    worker(name, async () => {
      done.resolve();
    });
    const own = tracer().startSpan('own creation');
    own.end();
    const metadata = JSON.stringify(injectContext(trace.setSpan(context.active(), own)));
    await queue.add('mine', {}, { telemetry: { metadata } });
    await done.promise;
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 1,
    );
    const send = onlySpan(spans, `send ${name}`);
    const process = onlySpan(spans, `process ${name}`);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.links.map((l) => l.context.spanId)).toEqual([own.spanContext().spanId]);
    expect(parentSpanId(process)).toBe(own.spanContext().spanId);
    expect(process.spanContext().traceId).toBe(own.spanContext().traceId);
  });

  it.each(['link', 'root'] as const)(
    'relation %s with the worker created inside an active span: the process span never parents to it',
    async (relation) => {
      const { name, queue } = setup(`startup-${relation}`);
      const done = deferred();
      const startup = tracer().startSpan('app.startup');
      context.with(trace.setSpan(context.active(), startup), () => {
        worker(
          name,
          async () => {
            done.resolve();
          },
          { relation },
        );
      });
      await queue.add('x', {});
      await done.promise;
      startup.end();
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 1,
      );
      const send = onlySpan(spans, `send ${name}`);
      const process = onlySpan(spans, `process ${name}`);
      expect(parentSpanId(process)).toBeUndefined();
      expect(process.spanContext().traceId).not.toBe(startup.spanContext().traceId);
      expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
    },
  );

  it('relation parent, worker created inside an active span, a job with no context: a new trace, not the startup span', async () => {
    const { name, raw } = setup('startup-parent');
    const done = deferred();
    const startup = tracer().startSpan('app.startup');
    context.with(trace.setSpan(context.active(), startup), () => {
      worker(name, async () => {
        done.resolve();
      });
    });
    await raw.add('untraced', {});
    await done.promise;
    startup.end();
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 1,
    );
    const process = onlySpan(spans, `process ${name}`);
    expect(parentSpanId(process)).toBeUndefined();
    expect(process.spanContext().traceId).not.toBe(startup.spanContext().traceId);
    expect(process.links).toEqual([]);
  });

  it('five-hop relay forwarding the consumed context: the hop count grows, and past maxHops a new linked trace starts', async () => {
    const hops = [1, 2, 3, 4, 5].map((n) => setup(`relay${n}`));
    const last = deferred();
    for (const [i, hop] of hops.entries()) {
      const next = hops[i + 1];
      worker(
        hop.name,
        async (job) => {
          if (!next) {
            last.resolve();
            return;
          }
          // The relay pattern: the next job carries the consumed job's own telemetry metadata.
          await next.queue.add('relay', job.data, {
            telemetry: { metadata: String(job.opts.telemetry?.metadata) },
          });
        },
        { traceBudget: { maxHops: 3 } },
      );
    }
    await hops[0]?.queue.add('start', { n: 1 });
    await last.promise;
    const spans = await waitForSpans(tracing.current.spans, (s) =>
      hops.every((h) => spansNamed(s, `process ${h.name}`).length === 1),
    );
    const processes = hops.map((h) => onlySpan(spans, `process ${h.name}`));
    // Within the budget the relayed context keeps its trace and its hop count grows; hop 4 restarts
    // (a new trace linked to the original), and hop 5, still forwarding the original metadata,
    // continues that new trace as its first hop.
    expect(processes.map((p) => p.attributes['hoptrace.hop'])).toEqual([1, 2, 3, 0, 1]);
    const first = processes[0]?.spanContext().traceId;
    expect(processes.slice(0, 3).every((p) => p.spanContext().traceId === first)).toBe(true);
    const [restarted, continued] = processes.slice(3);
    if (!restarted || !continued) throw new Error('hops 4 and 5 were not processed');
    expect(restarted.attributes['hoptrace.trace_budget.exceeded']).toBe(true);
    expect(restarted.spanContext().traceId).not.toBe(first);
    expect(parentSpanId(restarted)).toBeUndefined();
    expect(restarted.links.map((l) => l.context.traceId)).toEqual([first]);
    expect(continued.spanContext().traceId).toBe(restarted.spanContext().traceId);
    expect(continued.attributes['hoptrace.trace_budget.exceeded']).toBeUndefined();
  });
});
