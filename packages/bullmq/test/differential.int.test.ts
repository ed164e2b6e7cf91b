import { brokerEndpoint, sleep, until, useTestTracing } from '@hoptrace/test-kit';
import { describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';
import {
  type AnyQueue,
  type AnyWorker,
  BULLMQ_VERSIONS,
  type BullMQ,
  type AnyJob as Job,
  makeQueue,
  makeWorker,
  queueEventsCaughtUp,
  uniqueQueueName,
} from './helpers.ts';

// A differential harness: every scenario runs twice on real Redis, once with the raw BullMQ objects
// and once with hoptrace's wrappers (traceQueue, traceFlowProducer, traceProcessor), and what the
// APPLICATION observes must be the same: what calls return (jobs, their ids, options, data), what they
// throw (class, message), the jobs' state in Redis afterwards (attempt counters, failure reason,
// full stack traces, return value, delay, priority, progress, logs) and the events of the worker and
// of QueueEvents, in order, with their payloads. The only difference allowed is the context hoptrace
// writes into `opts.telemetry.metadata`.

const tracing = useTestTracing();

const makeFlow = (bullmq: BullMQ) => new bullmq.FlowProducer({ connection: brokerEndpoint('redis') });
type AnyFlow = ReturnType<typeof makeFlow>;

interface Ctx {
  bullmq: BullMQ;
  name: string;
  queue: AnyQueue;
  flow(): AnyFlow;
  worker(fn: (job: Job, token?: string) => unknown, opts?: object): AnyWorker;
  /** Records what the application saw (normalized, then compared). */
  note(label: string, value: unknown): void;
  /** Records a job as a call returned it. */
  noteJob(label: string, job: unknown): void;
  /** Records what a call threw (class and message), or what it returned. */
  attempt(label: string, call: () => Promise<unknown>): Promise<unknown>;
  waitFor(event: string, count?: number): Promise<void>;
  /** Job ids to describe from Redis at the end (jobs added by `add`/`addBulk` are tracked already). */
  track(id: unknown): void;
}

const QUEUE_EVENTS = [
  'active',
  'added',
  'completed',
  'deduplicated',
  'debounced',
  'delayed',
  'duplicated',
  'failed',
  'paused',
  'progress',
  'removed',
  'resumed',
  'retries-exhausted',
  'waiting',
  'waiting-children',
  'cleaned',
  'stalled',
];
// `drained` is left out: when it comes depends on timing, not on what the worker did.
const WORKER_EVENTS = ['active', 'completed', 'failed', 'error', 'progress', 'paused', 'resumed'];

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/** Keys whose values are clock times (milliseconds since the epoch), compared as "set" only. */
const TIMES = ['timestamp', 'processedOn', 'finishedOn', 'delayUntil', 'delay', 'prevMillis', 'next'];

/**
 * A stack trace (or BullMQ's list of them) as compared between the runs. Two differences are known
 * and left out here (see the stack trace test for what they are exactly): V8 names the processor's
 * frame after the worker's property holding it (\`Worker.processFn\`, \`[as processFn]\`), which in the
 * traced run holds the wrapper; and the frames of the wrapper and of OpenTelemetry's context API
 * between the processor and BullMQ, which push as many of BullMQ's own frames past
 * \`Error.stackTraceLimit\`. The frames compared are those the traced run keeps with at most
 * {@link MAX_INSERTED} frames inserted.
 */
function stackView(value: unknown, queue: string): unknown {
  if (Array.isArray(value)) return value.map((s) => stackView(s, queue));
  if (typeof value !== 'string') return value;
  const [head, ...frames] = value.split(queue).join('<Q>').split('\n');
  const kept = frames
    .filter((f) => !INSERTED_FRAME.test(f) && !TIMING_FRAME.test(f))
    .map((f) =>
      f
        .replace(/at Worker\.(processFn|<anonymous>) /, 'at Worker.<processor> ')
        .replace(/ \[as processFn\]/, ''),
    );
  return [head, ...kept.slice(0, STACK_FRAMES - MAX_INSERTED)].join('\n');
}
const STACK_FRAMES = 10;
const MAX_INSERTED = 4;
const INSERTED_FRAME = /packages\/(bullmq|core)\/src\/|@opentelemetry\/|node:internal\/async_local_storage/;
/** Frames of Node's timers and ticks: where the processor resumed, which timing decides. */
const TIMING_FRAME = /node:internal\/(process\/task_queues|timers)/;

/** hoptrace's context (a header map with a traceparent) is the one difference allowed. */
function withoutContext(opts: unknown): unknown {
  if (!opts || typeof opts !== 'object') return opts;
  const copy = { ...(opts as Record<string, unknown>) };
  const telemetry = copy.telemetry as Record<string, unknown> | undefined;
  if (telemetry && typeof telemetry === 'object' && typeof telemetry.metadata === 'string') {
    try {
      const parsed = JSON.parse(telemetry.metadata);
      if (parsed && typeof parsed === 'object' && 'traceparent' in parsed) {
        const { metadata: _m, ...rest } = telemetry;
        if (Object.keys(rest).length === 0) delete copy.telemetry;
        else copy.telemetry = rest;
      }
    } catch {
      // not hoptrace's
    }
  }
  return copy;
}

function errorShape(error: unknown): unknown {
  if (error instanceof Error)
    return { class: error.constructor.name, name: error.name, message: error.message };
  return { thrown: typeof error, value: error === undefined ? 'undefined' : JSON.stringify(error) };
}

/** What one run observed, with queue names, ids and times made comparable. */
async function observe(bullmq: BullMQ, traced: boolean, scenario: (ctx: Ctx) => Promise<void>) {
  const connection = brokerEndpoint('redis');
  const name = uniqueQueueName(`bulldiff-${traced ? 't' : 'r'}`);
  const rawQueue = makeQueue(bullmq, name);
  const queue = traced ? traceQueue(rawQueue) : rawQueue;
  const events = new bullmq.QueueEvents(name, { connection, lastEventId: '0-0' });
  await events.waitUntilReady();
  const log: unknown[] = [];
  const queueEvents: string[] = [];
  const workerEvents: string[] = [];
  const errors = new Set<string>();
  const ids = new Set<string>();
  let lastEvent: string | undefined;
  const counts = new Map<string, number>();
  const bump = (e: string) => counts.set(e, (counts.get(e) ?? 0) + 1);
  // BullMQ's generated ids (flows) differ between runs: named by first appearance.
  const aliases = new Map<string, string>();
  const alias = (text: string) =>
    text.replace(UUID, (id) => {
      if (!aliases.has(id)) aliases.set(id, `<id${aliases.size + 1}>`);
      return aliases.get(id) as string;
    });
  const norm = (value: unknown): unknown => {
    const json = JSON.stringify(value ?? null, (key, v) =>
      (TIMES.includes(key) && (typeof v === 'number' || typeof v === 'string') && Number(v) > 1e12) ||
      key === 'offset'
        ? 'T'
        : key === 'opts'
          ? withoutContext(v)
          : key === 'stack' || key === 'stacktrace'
            ? stackView(v, name)
            : v && typeof v === 'object' && !Array.isArray(v)
              ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (alias(a) < alias(b) ? -1 : 1)))
              : v,
    );
    // Times inside ids (`repeat:{scheduler}:{millis}`) too.
    return JSON.parse(alias(json.split(name).join('<Q>')).replace(/\b\d{13}\b/g, 'T'));
  };
  const jobView = (job: unknown): unknown => {
    if (!job || typeof job !== 'object') return job;
    const j = job as Job & Record<string, unknown>;
    if (j.id !== undefined) ids.add(String(j.id));
    return norm({
      class: j.constructor?.name,
      id: j.id,
      name: j.name,
      data: j.data,
      opts: withoutContext(j.opts),
      timestamp: j.timestamp,
      delay: j.delay,
      priority: j.priority,
      attemptsMade: j.attemptsMade,
      attemptsStarted: j.attemptsStarted,
      progress: j.progress,
      returnvalue: j.returnvalue,
      failedReason: j.failedReason,
      stacktrace: j.stacktrace,
      parentKey: j.parentKey,
      parent: j.parent,
      repeatJobKey: j.repeatJobKey,
      deduplicationId: (j as { deduplicationId?: unknown }).deduplicationId,
      queueQualifiedName: j.queueQualifiedName,
      keys: Object.keys(j).sort(),
    });
  };
  for (const e of QUEUE_EVENTS)
    events.on(e as 'active', (args: unknown, id: string) => {
      lastEvent = id;
      bump(`queue:${e}`);
      // The second argument is the event's stream id (a time): not compared.
      const a = args && typeof args === 'object' ? args : {};
      queueEvents.push(JSON.stringify(norm({ e, ...a })));
    });
  const workers: AnyWorker[] = [];
  const flows: AnyFlow[] = [];
  const ctx: Ctx = {
    bullmq,
    name,
    queue,
    flow() {
      const raw = makeFlow(bullmq);
      flows.push(raw);
      return traced ? traceFlowProducer(raw) : raw;
    },
    worker(fn, opts = {}) {
      const w = makeWorker(bullmq, name, traced ? traceProcessor(fn) : fn, opts);
      for (const e of WORKER_EVENTS)
        w.on(e as 'active', (...args: unknown[]) => {
          bump(e);
          if (e === 'error') {
            errors.add(JSON.stringify(errorShape(args[0])).split(name).join('<Q>'));
            return;
          }
          const [job, second] = args as [Job | undefined, unknown];
          const payload =
            e === 'failed'
              ? { error: errorShape(second), stack: (second as Error | undefined)?.stack }
              : e === 'completed' || e === 'progress'
                ? second
                : undefined;
          workerEvents.push(
            JSON.stringify(norm({ e, id: job && typeof job === 'object' ? job.id : job, payload })),
          );
        });
      workers.push(w);
      return w;
    },
    note(label, value) {
      log.push([label, norm(value)]);
    },
    noteJob(label, job) {
      log.push([label, Array.isArray(job) ? job.map(jobView) : jobView(job)]);
    },
    async attempt(label, call) {
      try {
        const value = await call();
        log.push([label, 'returned', Array.isArray(value) ? value.map(jobView) : jobView(value)]);
        return value;
      } catch (error) {
        log.push([label, 'threw', norm(errorShape(error))]);
        return undefined;
      }
    },
    async waitFor(event, count = 1) {
      await until(() => (counts.get(event) ?? 0) >= count, `${count} ${event}`, 15_000);
    },
    track(id) {
      ids.add(String(id));
    },
  };
  const jobs: unknown[] = [];
  try {
    await scenario(ctx);
    // Once closed gracefully, the workers are done with every job they took (their events recorded);
    // then QueueEvents is waited for until it delivered every event in the stream.
    for (const w of workers) await w.close();
    for (const f of flows) await f.close();
    for (const id of ids) {
      const job = (await bullmq.Job.fromId(rawQueue, id)) as Job | undefined;
      const state = job ? await job.getState() : 'gone';
      const logs = await rawQueue.getJobLogs(id);
      jobs.push({ state, logs, job: job ? jobView(job) : null });
    }
    await queueEventsCaughtUp(rawQueue, QUEUE_EVENTS, () => lastEvent);
  } finally {
    for (const w of workers) await w.close().catch(() => undefined);
    for (const f of flows) await f.close().catch(() => undefined);
    await events.close();
    await rawQueue.obliterate({ force: true }).catch(() => undefined);
    await rawQueue.close();
  }
  return { log, jobs, queueEvents, workerEvents, errors: [...errors].sort() };
}

/**
 * Runs `scenario` raw, then traced, and compares. With `unordered`, events are compared as sorted
 * lists (a worker with concurrency emits them in an order timing decides).
 */
async function differential(
  bullmq: BullMQ,
  scenario: (ctx: Ctx) => Promise<void>,
  { unordered = false } = {},
) {
  const raw = await observe(bullmq, false, scenario);
  const traced = await observe(bullmq, true, scenario);
  const order = (events: string[]) => (unordered ? [...events].sort() : events);
  expect(traced.log).toEqual(raw.log);
  expect(traced.jobs).toEqual(raw.jobs);
  expect(order(traced.workerEvents)).toEqual(order(raw.workerEvents));
  expect(order(traced.queueEvents)).toEqual(order(raw.queueEvents));
  expect(traced.errors).toEqual(raw.errors);
  expect(tracing.current.openSpans()).toHaveLength(0);
  return { raw, traced };
}

const failures = new WeakMap<object, number>();
function failedCount(worker: AnyWorker): number {
  if (!failures.has(worker)) {
    failures.set(worker, 0);
    worker.on('failed', () => failures.set(worker, (failures.get(worker) ?? 0) + 1));
  }
  return failures.get(worker) ?? 0;
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: raw vs traced, as the application sees it', (label, bullmq) => {
  const v6 = label.startsWith('newest');

  it('add with every common option, and addBulk with mixed options', async () => {
    await differential(bullmq, async (ctx) => {
      const parent = await ctx.queue.add('parent', { p: 1 }, { jobId: 'parent-1' });
      ctx.noteJob('parent', parent);
      const options: Record<string, object> = {
        jobId: { jobId: 'custom-1' },
        delay: { delay: 60_000 },
        priority: { priority: 7 },
        backoff: { attempts: 4, backoff: { type: 'exponential', delay: 50 } },
        removeNum: { removeOnComplete: 3, removeOnFail: 5 },
        removeObj: { removeOnComplete: { age: 60, count: 2 }, removeOnFail: { age: 120 } },
        lifo: { lifo: true },
        dedup: { deduplication: { id: 'dd-1' } },
        dedupTtl: { deduplication: { id: 'dd-2', ttl: 60_000 } },
        parent: { parent: { id: 'parent-1', queue: `bull:${ctx.name}` } },
        telemetryOmit: { telemetry: { omitContext: true } },
        stackLimit: { stackTraceLimit: 2, keepLogs: 3, sizeLimit: 10_000 },
      };
      for (const [label, opts] of Object.entries(options)) {
        const frozen = structuredClone(opts);
        await ctx.attempt(`add ${label}`, () => ctx.queue.add(label, { label }, opts));
        ctx.note(`opts untouched ${label}`, JSON.stringify(opts) === JSON.stringify(frozen));
      }
      await ctx.attempt('add dedup again', () =>
        ctx.queue.add('dedup', { again: true }, { deduplication: { id: 'dd-1' } }),
      );
      await ctx.attempt('add jobId again', () =>
        ctx.queue.add('dup', { again: true }, { jobId: 'custom-1' }),
      );
      await ctx.attempt('add integer jobId', () => ctx.queue.add('bad', {}, { jobId: '12' }));
      await ctx.attempt('add bad priority', () => ctx.queue.add('bad', {}, { priority: -1 }));
      await ctx.attempt('add unknown parent', () =>
        ctx.queue.add('orphan', {}, { parent: { id: 'nope', queue: `bull:${ctx.name}` } }),
      );
      await ctx.attempt('addBulk', () =>
        ctx.queue.addBulk([
          { name: 'b1', data: { i: 1 } },
          { name: 'b2', data: { i: 2 }, opts: { jobId: 'bulk-2', priority: 3 } },
          { name: 'b3', data: { i: 3 }, opts: { delay: 30_000, attempts: 2 } },
          { name: 'b4', data: { i: 4 }, opts: { removeOnComplete: true, lifo: true } },
          { name: 'b5', data: { i: 5 }, opts: { deduplication: { id: 'dd-1' } } },
        ]),
      );
      await ctx.attempt('addBulk with a bad job', () =>
        ctx.queue.addBulk([
          { name: 'ok', data: {} },
          { name: 'bad', data: {}, opts: { jobId: '77' } },
        ]),
      );
      ctx.note('counts', await ctx.queue.getJobCounts());
    });
  });

  it('job schedulers, deduplication modes, and options or arguments BullMQ cannot take', async () => {
    await differential(bullmq, async (ctx) => {
      await ctx.attempt('scheduler', () =>
        ctx.queue.upsertJobScheduler(
          'sched',
          { every: 60_000 },
          { name: 's', data: { s: 1 }, opts: { priority: 2 } },
        ),
      );
      ctx.note('schedulers', await ctx.queue.getJobSchedulers());
      await ctx.attempt('dedup extend', () =>
        ctx.queue.add('x', { v: 1 }, {
          delay: 5_000,
          deduplication: { id: 'ext', ttl: 5_000, extend: true },
        } as never),
      );
      await ctx.attempt('dedup replace', () =>
        ctx.queue.add('x', { v: 2 }, {
          delay: 5_000,
          deduplication: { id: 'ext', ttl: 5_000, extend: true, replace: true },
        } as never),
      );
      await ctx.attempt('debounce', () => ctx.queue.add('d', {}, { debounce: { id: 'deb' } } as never));
      await ctx.attempt('debounce again', () => ctx.queue.add('d', {}, { debounce: { id: 'deb' } } as never));
      await ctx.attempt('add no name', () => ctx.queue.add(undefined as never, {}));
      // Options BullMQ cannot take: what it does with them (a string's characters read as options
      // it cannot encode) is what the traced add must do.
      await ctx.attempt('add string opts', () => ctx.queue.add('x', {}, 'nope' as never));
      await ctx.attempt('add number opts', () => ctx.queue.add('x', {}, 42 as never));
      await ctx.attempt('add null opts', () => ctx.queue.add('x', {}, null as never));
      await ctx.attempt('addBulk string opts', () =>
        ctx.queue.addBulk([{ name: 'x', data: {}, opts: 'nope' as never }]),
      );
      await ctx.attempt('add delay and repeat immediately', () =>
        ctx.queue.add('x', {}, { repeat: { every: 1000, immediately: true }, delay: 10 } as never),
      );
      await ctx.attempt('addBulk not an array', () => ctx.queue.addBulk('nope' as never));
      await ctx.attempt('addBulk null entry', () => ctx.queue.addBulk([null as never]));
      await ctx.attempt('removeJobScheduler', () => ctx.queue.removeJobScheduler('sched'));
      ctx.note('counts', await ctx.queue.getJobCounts());
    });
  });

  it('a processor that throws an Error, a string, undefined, an object, or rejects: attempts, backoff, stack traces', async () => {
    const { traced } = await differential(
      bullmq,
      async (ctx) => {
        for (const kind of ['error', 'sync-error', 'string', 'undefined', 'object', 'reject', 'after-await'])
          await ctx.attempt(`add ${kind}`, () =>
            ctx.queue.add(kind, {}, { attempts: 2, backoff: { type: 'exponential', delay: 20 } }),
          );
        ctx.worker(async (job) => {
          const kind = job.name;
          if (kind === 'error') throw new Error(`boom ${job.attemptsMade}`);
          if (kind === 'sync-error')
            return (() => {
              throw new TypeError('sync');
            })();
          if (kind === 'string') throw 'a string';
          if (kind === 'undefined') throw undefined;
          if (kind === 'object') throw { code: 42 };
          if (kind === 'reject') return Promise.reject(new RangeError('rejected'));
          if (kind === 'after-await') {
            await sleep(5);
            throw new Error('after await');
          }
          return 'ok';
        });
        // Where each job ends: six fail twice (their second failure final); `throw undefined` leaves
        // BullMQ unable to read the error's message: one worker 'error', the job left active.
        await ctx.waitFor('failed', 12);
        await ctx.waitFor('queue:failed', 6);
        await ctx.waitFor('queue:retries-exhausted', 6);
        await ctx.waitFor('error');
      },
      { unordered: true },
    );
    expect(traced.jobs.length).toBe(7);
  });

  it('a plain (non-async) processor that throws synchronously: the same stack trace in Redis', async () => {
    await differential(bullmq, async (ctx) => {
      ctx.worker((job) => {
        if (job.name === 'x') throw new Error('sync throw');
        return 'fine';
      });
      await ctx.queue.add('x', {});
      await ctx.waitFor('queue:failed');
    });
  });

  it("a synchronous throw's stack trace in Redis: BullMQ's frames, with only the wrapper's and the context API's frames inserted", async () => {
    const stacks: string[] = [];
    for (const traced of [false, true]) {
      const name = uniqueQueueName(`bulldiff-stack-${traced ? 't' : 'r'}`);
      const queue = makeQueue(bullmq, name);
      const fn = async () => {
        throw new Error('sync part');
      };
      const worker = makeWorker(bullmq, name, traced ? traceProcessor(fn) : fn);
      try {
        const job = await queue.add('j', {});
        await until(() => failedCount(worker) > 0, 'failed', 10_000);
        const stored = await bullmq.Job.fromId(queue, job.id as string);
        stacks.push(String(stored?.stacktrace?.[0]));
      } finally {
        await worker.close();
        await queue.obliterate({ force: true });
        await queue.close();
      }
    }
    const frames = (stack: string) =>
      stack
        .split('\n')
        .slice(1)
        .map((f) => f.trim());
    const [raw, traced] = [frames(stacks[0] as string), frames(stacks[1] as string)];
    const inserted = traced.filter((f) => INSERTED_FRAME.test(f));
    // The wrapper itself, and what OpenTelemetry's context API needs to make the span active: no
    // frame of hoptrace's own bookkeeping (its attempt, its promise chain) between them.
    expect(inserted.filter((f) => /packages\/(bullmq|core)\/src\//.test(f))).toHaveLength(1);
    expect(inserted.length).toBeLessThanOrEqual(MAX_INSERTED);
    // Every other frame is the raw run's, in order (V8 names the processor's frame after the
    // worker's property holding it: the wrapper in the traced run).
    const rest = traced.filter((f) => !INSERTED_FRAME.test(f));
    expect(rest.slice(1)).toEqual(raw.slice(1, rest.length));
    expect(rest.length).toBe(Math.min(raw.length, STACK_FRAMES - inserted.length));
  });

  it('UnrecoverableError, DelayedError, WaitingChildrenError and RateLimitError', async () => {
    await differential(bullmq, async (ctx) => {
      const calls = new Map<string, number>();
      const w = ctx.worker(async (job, token) => {
        const n = (calls.get(job.name) ?? 0) + 1;
        calls.set(job.name, n);
        if (job.name === 'unrecoverable') throw new ctx.bullmq.UnrecoverableError('give up');
        if (job.name === 'delayed' && n === 1) {
          await job.moveToDelayed(Date.now() + 50, token);
          throw new ctx.bullmq.DelayedError();
        }
        if (job.name === 'limited' && n === 1) {
          await w.rateLimit(50);
          throw ctx.bullmq.Worker.RateLimitError();
        }
        if (job.name === 'parent' && n === 1) {
          await ctx.queue.add(
            'child',
            {},
            { parent: { id: job.id as string, queue: job.queueQualifiedName } },
          );
          if (await job.moveToWaitingChildren(token as string)) throw new ctx.bullmq.WaitingChildrenError();
        }
        if (job.name === 'parent') return Object.values(await job.getChildrenValues());
        return `${job.name} ${n}`;
      });
      await ctx.queue.add('unrecoverable', {}, { attempts: 3 });
      await ctx.waitFor('queue:failed');
      await ctx.queue.add('delayed', {});
      await ctx.waitFor('queue:completed', 1);
      await ctx.queue.add('limited', {});
      await ctx.waitFor('queue:completed', 2);
      await ctx.queue.add('parent', {}, { jobId: 'the-parent' });
      await ctx.waitFor('queue:completed', 4);
      const children = await ctx.queue.getJobs(['completed']);
      for (const c of children) ctx.track(c.id);
    });
  });

  it('updateData, updateProgress and log inside the processor; getJob then job.retry()', async () => {
    await differential(bullmq, async (ctx) => {
      let fail = true;
      ctx.worker(async (job) => {
        await job.updateData({ ...(job.data as object), seen: true });
        await job.updateProgress(50);
        await job.updateProgress({ step: 'two' });
        ctx.note('log count', await job.log(`line ${job.attemptsMade}`));
        if (fail) throw new Error('first run fails');
        return { done: true };
      });
      const added = await ctx.queue.add('j', { n: 1 }, { attempts: 1 });
      await ctx.waitFor('queue:failed');
      fail = false;
      const job = await ctx.queue.getJob(added.id as string);
      ctx.noteJob('got', job);
      await job?.retry('failed');
      await ctx.waitFor('queue:completed');
      ctx.noteJob('after retry', await ctx.queue.getJob(added.id as string));
    });
  });

  it('Queue pause, resume, drain and obliterate', async () => {
    await differential(bullmq, async (ctx) => {
      await ctx.queue.pause();
      ctx.note('paused', await ctx.queue.isPaused());
      await ctx.queue.add('a', {});
      await ctx.queue.add('d', {}, { delay: 60_000 });
      ctx.note('counts paused', await ctx.queue.getJobCounts());
      ctx.worker(async (job) => job.name);
      await sleep(200);
      await ctx.queue.resume();
      await ctx.waitFor('queue:completed');
      await ctx.queue.drain(true);
      ctx.note('counts drained', await ctx.queue.getJobCounts());
      await ctx.queue.add('b', {});
      await ctx.waitFor('queue:completed', 2);
      await ctx.attempt('obliterate', () => ctx.queue.obliterate({ force: true }));
      ctx.note('counts obliterated', await ctx.queue.getJobCounts());
    });
  });

  it('a worker with concurrency 3 and a limiter', async () => {
    const { traced } = await differential(
      bullmq,
      async (ctx) => {
        ctx.worker(
          async (job) => {
            await sleep(20);
            const { i } = job.data as { i: number };
            if (i % 4 === 0) throw new Error(`bad ${i}`);
            return i;
          },
          { concurrency: 3, limiter: { max: 4, duration: 200 } },
        );
        await ctx.attempt('addBulk', () =>
          ctx.queue.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: `n${i}`, data: { i } }))),
        );
        await ctx.waitFor('queue:completed', 9);
        await ctx.waitFor('queue:failed', 3);
      },
      { unordered: true },
    );
    expect(traced.jobs).toHaveLength(12);
  });

  it('a flow: returned tree and stored jobs', async () => {
    await differential(bullmq, async (ctx) => {
      const flow = ctx.flow();
      const tree = (await flow.add({
        name: 'root',
        queueName: ctx.name,
        data: { r: 1 },
        opts: { jobId: 'root-1' },
        children: [
          { name: 'c1', queueName: ctx.name, data: { c: 1 } },
          { name: 'c2', queueName: ctx.name, data: { c: 2 }, opts: { priority: 2, attempts: 2 } },
        ],
      })) as { job: Job; children: { job: Job }[] };
      ctx.noteJob('root', tree.job);
      ctx.noteJob(
        'children',
        tree.children.map((c) => c.job),
      );
      ctx.worker(async (job) => (job.name === 'root' ? job.getChildrenValues() : job.name));
      await ctx.waitFor('queue:completed', 3);
      if (v6) ctx.note('v6', true);
    });
  });
});
