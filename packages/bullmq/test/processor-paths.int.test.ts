import { brokerEndpoint, parentSpanId, sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { traceProcessor, traceQueue } from '../src/index.ts';
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

// BullMQ's less common processor paths, each run twice on real Redis: with the raw BullMQ objects
// and with hoptrace's. Job states, attempt counts, return values, failure reasons, stack traces and
// events (worker and QueueEvents) must be the same; the traced run's spans are checked on top.

const tracing = useTestTracing();

/** What the application and Redis observe of one run of a scenario. */
interface Observed {
  worker: string[];
  /** The worker's distinct `error` messages, sorted: BullMQ's timers repeat them a varying number of times. */
  errors: string[];
  queueEvents: string[];
  jobs: Record<string, unknown>[];
  extra: unknown[];
}

/** What a scenario gets: the queue (traced in the traced run) and helpers that record the run. */
interface Ctx {
  bullmq: BullMQ;
  name: string;
  queue: AnyQueue;
  /** A worker on the scenario's queue; the processor is wrapped in the traced run. */
  worker(fn: ((job: Job, token?: string) => Promise<unknown>) | null, opts?: object): AnyWorker;
  /** The processor as the run uses it: wrapped by `traceProcessor` in the traced run. */
  processor<F extends (job: Job) => Promise<unknown>>(fn: F): F;
  /** Records a value the application saw (compared between the runs). */
  note(value: unknown): void;
  /** Waits for `count` worker events named `event` (`queue:{event}` for QueueEvents). */
  waitFor(event: string, count?: number): Promise<void>;
}

/** A job as the application sees it once the scenario is over (ids replaced by aliases). */
function describeJob(job: Job | undefined, state: string): Record<string, unknown> {
  if (!job) return { state };
  return {
    name: job.name,
    state,
    attemptsMade: job.attemptsMade,
    attemptsStarted: (job as unknown as { attemptsStarted?: number }).attemptsStarted,
    returnvalue: job.returnvalue,
    failedReason: job.failedReason,
    stacktrace: (job.stacktrace ?? []).map((s) => String(s).split('\n')[0]),
    data: job.data,
    delay: job.delay,
    finished: job.finishedOn !== undefined && job.finishedOn !== null,
  };
}

const QUEUE_EVENTS = [
  'active',
  'added',
  'completed',
  'delayed',
  'failed',
  'paused',
  'progress',
  'removed',
  'resumed',
  'retries-exhausted',
  'stalled',
  'waiting',
  'waiting-children',
  'cleaned',
  'drained',
];
const WORKER_EVENTS = [
  'active',
  'completed',
  'failed',
  'error',
  'stalled',
  'paused',
  'resumed',
  'closed',
  'drained',
];

/** Runs `scenario` once, raw or traced, on a queue of its own, and returns what was observed. */
async function observe(
  bullmq: BullMQ,
  traced: boolean,
  scenario: (ctx: Ctx) => Promise<void>,
): Promise<{ observed: Observed; name: string; realIds: Map<string, string> }> {
  const connection = brokerEndpoint('redis');
  const name = uniqueQueueName(`bullrev-${traced ? 't' : 'r'}`);
  const rawQueue = makeQueue(bullmq, name);
  const queue = traced ? traceQueue(rawQueue) : rawQueue;
  const events = new bullmq.QueueEvents(name, { connection, lastEventId: '0-0' });
  await events.waitUntilReady();
  const observed: Observed = { worker: [], errors: [], queueEvents: [], jobs: [], extra: [] };
  const ids = new Map<string, string>();
  const idOf = (id: unknown) => {
    const key = String(id);
    if (!ids.has(key)) ids.set(key, `#${ids.size + 1}`);
    return ids.get(key) as string;
  };
  let lastEvent: string | undefined;
  const counts = new Map<string, number>();
  const bump = (e: string) => counts.set(e, (counts.get(e) ?? 0) + 1);
  for (const e of QUEUE_EVENTS)
    events.on(e as 'active', (args: { jobId?: string; failedReason?: string; returnvalue?: unknown }, id) => {
      // `drained` gives its stream id only, the others their fields then the id.
      lastEvent = typeof args === 'string' ? args : id;
      bump(`queue:${e}`);
      observed.queueEvents.push(
        [
          e,
          args?.jobId !== undefined ? idOf(args.jobId) : '',
          args?.failedReason ?? '',
          JSON.stringify(args?.returnvalue ?? null),
        ].join(' '),
      );
    });
  const workers: AnyWorker[] = [];
  const ctx: Ctx = {
    bullmq,
    name,
    queue,
    worker(fn, opts = {}) {
      const processor = fn && traced ? traceProcessor(fn) : fn;
      const w = makeWorker(bullmq, name, processor, opts);
      for (const e of WORKER_EVENTS)
        w.on(e as 'active', (...args: unknown[]) => {
          bump(e);
          const [a, b] = args as [{ id?: string } | Error | undefined, unknown];
          const detail =
            e === 'error'
              ? String((a as Error)?.message)
              : e === 'failed'
                ? `${idOf((a as { id?: string })?.id)} ${(b as Error)?.message}`
                : e === 'completed'
                  ? `${idOf((a as { id?: string })?.id)} ${JSON.stringify(b ?? null)}`
                  : a && typeof a === 'object' && 'id' in a
                    ? idOf(a.id)
                    : '';
          if (e !== 'error') observed.worker.push(`${e} ${detail}`);
          else if (!observed.errors.includes(detail)) observed.errors = [...observed.errors, detail].sort();
        });
      workers.push(w);
      return w;
    },
    processor(fn) {
      return traced ? traceProcessor(fn) : fn;
    },
    note(value) {
      observed.extra.push(value);
    },
    async waitFor(event, count = 1) {
      await until(() => (counts.get(event) ?? 0) >= count, `${count} ${event}`, 20_000);
    },
  };
  try {
    await scenario(ctx);
    // Once closed gracefully, the workers are done with every job they took (their events recorded);
    // then QueueEvents is waited for until it delivered every event in the stream.
    for (const w of workers) await w.close();
    for (const [id] of ids) {
      const job = (await bullmq.Job.fromId(rawQueue, id)) as Job | undefined;
      observed.jobs.push({ id: idOf(id), ...describeJob(job, job ? await job.getState() : 'gone') });
    }
    await queueEventsCaughtUp(rawQueue, QUEUE_EVENTS, () => lastEvent);
  } finally {
    for (const w of workers) await w.close().catch(() => undefined);
    await events.close();
    await rawQueue.obliterate({ force: true }).catch(() => undefined);
    await rawQueue.close();
  }
  const realIds = new Map([...ids].map(([real, alias]) => [alias, real]));
  return { observed, name, realIds };
}

/** One job of the traced run: its observations and its process spans, in start order. */
interface TracedJob {
  job: Record<string, unknown>;
  spans: ReadableSpan[];
  /** Whether every span is a child of the send span that names the job (when one does). */
  parented: boolean;
}

/**
 * Runs `scenario` with the raw BullMQ objects, then with hoptrace's: the application and Redis must
 * observe the same. Returns the traced run's jobs with their process spans, checked to be one per
 * attempt BullMQ started (for jobs still in Redis) and all ended.
 */
async function differential(bullmq: BullMQ, scenario: (ctx: Ctx) => Promise<void>): Promise<TracedJob[]> {
  const raw = await observe(bullmq, false, scenario);
  const traced = await observe(bullmq, true, scenario);
  expect(traced.observed).toEqual(raw.observed);
  expect(tracing.current.openSpans()).toHaveLength(0);
  const all = tracing.current.spans();
  const processes = byStart(spansNamed(all, `process ${traced.name}`));
  const sends = spansNamed(all, `send ${traced.name}`);
  return traced.observed.jobs.map((job) => {
    const real = traced.realIds.get(job.id as string);
    const spans = processes.filter((s) => s.attributes['messaging.message.id'] === real);
    const send = sends.find((s) => s.attributes['messaging.message.id'] === real);
    if (typeof job.attemptsStarted === 'number') expect(spans).toHaveLength(job.attemptsStarted);
    const parented = spans.every((s) => !send || parentSpanId(s) === send.spanContext().spanId);
    return { job, spans, parented };
  });
}

function byStart(spans: ReadableSpan[]): ReadableSpan[] {
  return [...spans].sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
}

/** A span's outcome in one line: status, `error.type`, control-flow reason, final attempt. */
function outcome(span: ReadableSpan): string {
  const parts = [
    span.status.code === SpanStatusCode.ERROR
      ? 'ERROR'
      : span.status.code === SpanStatusCode.OK
        ? 'OK'
        : 'UNSET',
  ];
  const type = span.attributes['error.type'];
  if (type !== undefined) parts.push(String(type));
  for (const e of span.events)
    if (e.name === 'hoptrace.control_flow')
      parts.push(String(e.attributes?.['hoptrace.control_flow.reason']));
  if (span.attributes['hoptrace.attempt.final'] === true) parts.push('final');
  return parts.join(' ');
}

/** The outcomes of every job's attempts, by job alias. */
function outcomes(jobs: TracedJob[]): Record<string, string[]> {
  return Object.fromEntries(jobs.map((j) => [j.job.id as string, j.spans.map(outcome)]));
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: less common processor paths, raw vs traced', (label, bullmq) => {
  const v6 = label.startsWith('newest');

  it('DelayedError after moveToDelayed: the job runs again and completes', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let calls = 0;
      ctx.worker(async (job, token) => {
        if (++calls === 1) {
          await job.moveToDelayed(Date.now() + 100, token);
          throw new ctx.bullmq.DelayedError();
        }
        return 'done';
      });
      await ctx.queue.add('j', { n: 1 }, { attempts: 2 });
      await ctx.waitFor('completed');
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET DelayedError', 'UNSET'] });
    expect(jobs.every((j) => j.parented)).toBe(true);
  });

  it('RateLimitError after worker.rateLimit: the job runs again and completes', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let calls = 0;
      const w = ctx.worker(async () => {
        if (++calls === 1) {
          await w.rateLimit(100);
          throw ctx.bullmq.Worker.RateLimitError();
        }
        return 'done';
      });
      await ctx.queue.add('j', { n: 1 });
      await ctx.waitFor('completed');
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET RateLimitError', 'UNSET'] });
    expect(jobs.every((j) => j.parented)).toBe(true);
  });

  it('UnrecoverableError with attempts left: failed at once', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      ctx.worker(async () => {
        throw new ctx.bullmq.UnrecoverableError('nope');
      });
      await ctx.queue.add('j', { n: 1 }, { attempts: 3 });
      await ctx.waitFor('failed');
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['ERROR UnrecoverableError final'] });
  });

  it('WaitingChildrenError: a parent adds a child and waits, then resumes with its children values', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let calls = 0;
      ctx.worker(async (job, token) => {
        if (job.name === 'child') return 'c';
        if (++calls === 1) {
          await ctx.queue.add(
            'child',
            {},
            { delay: 200, parent: { id: job.id as string, queue: job.queueQualifiedName } },
          );
          if (await job.moveToWaitingChildren(token as string)) throw new ctx.bullmq.WaitingChildrenError();
        }
        return Object.values(await job.getChildrenValues());
      });
      await ctx.queue.add('parent', {});
      await ctx.waitFor('completed', 2);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET WaitingChildrenError', 'UNSET'], '#2': ['UNSET'] });
    expect(jobs.every((j) => j.parented)).toBe(true);
  });

  it('a processor returning after moving its job by hand (moveToFailed, moveToCompleted)', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      await ctx.queue.add('fail', {});
      await ctx.queue.add('complete', {});
      ctx.worker(async (job, token) => {
        if (job.name === 'fail') await job.moveToFailed(new Error('manual'), token as string, false);
        else await job.moveToCompleted('manual', token as string, false);
        return 'after';
      });
      await ctx.waitFor('queue:failed');
      await ctx.waitFor('queue:completed');
      await sleep(300);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET'], '#2': ['UNSET'] });
  });

  it('manual processing: a worker without processor, getNextJob, extendLock, moveToCompleted / moveToFailed', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      await ctx.queue.add('ok', { n: 1 });
      await ctx.queue.add('bad', { n: 2 }, { attempts: 2 });
      const w = ctx.worker(null);
      const token = 'bullrev-token';
      const handle = ctx.processor(async (job: Job) => {
        if (job.name === 'bad') throw new Error('bad');
        return 'fine';
      });
      for (let i = 0; i < 3; i++) {
        const job = (await w.getNextJob(token)) as Job | undefined;
        if (!job) break;
        ctx.note(await job.extendLock(token, 30_000));
        try {
          await job.moveToCompleted(await handle(job), token, false);
        } catch (error) {
          await job.moveToFailed(error as Error, token, false);
        }
      }
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET'], '#2': ['ERROR Error', 'ERROR Error final'] });
    expect(jobs.every((j) => j.parented)).toBe(true);
  });

  it('job.retry() and queue.retryJobs() of failed jobs: each re-run is one more sibling attempt', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let fail = true;
      const a = await ctx.queue.add('a', {});
      await ctx.queue.add('b', {});
      ctx.worker(async () => {
        if (fail) throw new Error('first');
        return 'second';
      });
      await ctx.waitFor('failed', 2);
      fail = false;
      await (await ctx.bullmq.Job.fromId(ctx.queue, a.id as string))?.retry('failed');
      await ctx.waitFor('completed', 1);
      await ctx.queue.retryJobs({ state: 'failed' });
      await ctx.waitFor('completed', 2);
    });
    expect(outcomes(jobs)).toEqual({
      '#1': ['ERROR Error final', 'UNSET'],
      '#2': ['ERROR Error final', 'UNSET'],
    });
    expect(jobs.every((j) => j.parented)).toBe(true);
  });

  it('promote and changeDelay of delayed jobs', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      ctx.worker(async (job) => job.name);
      const a = await ctx.queue.add('a', {}, { delay: 60_000 });
      const b = await ctx.queue.add('b', {}, { delay: 60_000 });
      await sleep(100);
      await a.promote();
      await ctx.waitFor('completed', 1);
      await b.changeDelay(100);
      await ctx.waitFor('completed', 2);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET'], '#2': ['UNSET'] });
    expect(jobs.every((j) => j.parented)).toBe(true);
  });

  it('updateData in a failing attempt: the retry sees the new data', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      ctx.worker(async (job) => {
        if ((job.data as { n: number }).n === 1) {
          await job.updateData({ n: 2 });
          throw new Error('retry me');
        }
        return job.data;
      });
      await ctx.queue.add('a', { n: 1 }, { attempts: 2 });
      await ctx.waitFor('completed', 1);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['ERROR Error', 'UNSET'] });
  });

  it('discard() then a throw: no retry on 5.x (6.x has no discard: a TypeError, retried)', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      ctx.worker(async (job) => {
        (job as unknown as { discard(): void }).discard();
        throw new Error('discarded');
      });
      await ctx.queue.add('a', {}, { attempts: 3 });
      await ctx.waitFor('failed', v6 ? 3 : 1);
    });
    expect(outcomes(jobs)).toEqual({
      '#1': v6 ? ['ERROR TypeError', 'ERROR TypeError', 'ERROR TypeError final'] : ['ERROR Error final'],
    });
  });

  it('worker pause() and resume() with a job in flight', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      const w = ctx.worker(async (job) => {
        await sleep(200);
        return job.name;
      });
      await ctx.queue.add('a', {});
      await ctx.waitFor('active', 1);
      await w.pause();
      ctx.note(w.isPaused());
      await ctx.queue.add('b', {});
      await sleep(200);
      w.resume();
      await ctx.waitFor('completed', 2);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET'], '#2': ['UNSET'] });
  });

  it('worker close(true) with jobs in flight: their spans end (worker_closed), none stays open', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let returned = 0;
      const w = ctx.worker(
        async (job) => {
          await sleep(400);
          returned++;
          return job.name;
        },
        { concurrency: 2 },
      );
      await ctx.queue.addBulk([
        { name: 'a', data: {} },
        { name: 'b', data: {} },
      ]);
      await ctx.waitFor('active', 2);
      await w.close(true);
      // Both processors return into the closed worker while the run is still observed; then a
      // moment for anything that return must not cause (a completed event, a span ended again).
      await until(() => returned === 2, 'both processors to return', 20_000);
      await sleep(200);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['ERROR worker_closed'], '#2': ['ERROR worker_closed'] });
  });

  it('queue.drain and queue.obliterate with a job active', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      // Each job is held active until the scenario has drained or obliterated the queue around it.
      const held = new Map<string, () => void>();
      const release = async (name: string) => {
        await until(() => held.has(name), `${name} held`, 20_000);
        held.get(name)?.();
      };
      ctx.worker(async (job) => {
        await new Promise<void>((resolve) => held.set(job.name, resolve));
        return job.name;
      });
      await ctx.queue.add('a', {});
      await ctx.queue.add('w', {}, { delay: 60_000 });
      await ctx.waitFor('active', 1);
      await ctx.queue.drain(true);
      ctx.note(await ctx.queue.getJobCounts());
      await release('a');
      await ctx.waitFor('completed', 1);
      await ctx.queue.add('b', {});
      await ctx.waitFor('active', 2);
      await ctx.queue.obliterate({ force: true });
      await release('b');
      // b's processor returned into the obliterated queue: BullMQ's 'Missing key for job' error.
      await ctx.waitFor('error');
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET'], '#2': [], '#3': ['UNSET'] });
  });

  // A processor that moved its job itself and keeps running is not an attempt BullMQ gave up on:
  // BullMQ 6's failing lock renewals for it, and the job's next run, must not end its span.
  it('a processor still running after its own moveToCompleted, past lock renewals: its span ends when it returns', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      ctx.worker(
        async (job, token) => {
          await job.moveToCompleted('manual', token as string, false);
          await sleep(1500);
          return 'after';
        },
        { lockDuration: 600, stalledInterval: 60_000 },
      );
      await ctx.queue.add('j', { n: 1 });
      await ctx.waitFor('queue:completed');
      await sleep(2000);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET'] });
  });

  it('a step job still running after moveToDelayed, past lock renewals, then DelayedError: control flow, not lock_lost', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let calls = 0;
      ctx.worker(
        async (job, token) => {
          if (++calls === 1) {
            await job.moveToDelayed(Date.now() + 2500, token);
            await sleep(1500);
            throw new ctx.bullmq.DelayedError();
          }
          return 'done';
        },
        { lockDuration: 600, stalledInterval: 60_000 },
      );
      await ctx.queue.add('j', { n: 1 });
      await ctx.waitFor('completed');
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET DelayedError', 'UNSET'] });
  });

  it('a step job still running after moveToDelayed when BullMQ hands the job out again: control flow, not stalled', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let calls = 0;
      ctx.worker(
        async (job, token) => {
          if (++calls === 1) {
            await job.moveToDelayed(Date.now() + 50, token);
            await sleep(800);
            throw new ctx.bullmq.DelayedError();
          }
          return 'done';
        },
        { concurrency: 2 },
      );
      await ctx.queue.add('j', { n: 1 });
      await ctx.waitFor('completed');
      await sleep(1000);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['UNSET DelayedError', 'UNSET'] });
  });

  it('close(true) with a processor still running after it moved its job, the job handed out again: its span ends (worker_closed)', async () => {
    const jobs = await differential(bullmq, async (ctx) => {
      let calls = 0;
      const w = ctx.worker(
        async (job, token) => {
          if (++calls === 1) {
            await job.moveToDelayed(Date.now() + 50, token);
            await sleep(1500);
            throw new ctx.bullmq.DelayedError();
          }
          return 'done';
        },
        { concurrency: 2 },
      );
      await ctx.queue.add('j', { n: 1 });
      await ctx.waitFor('completed');
      await w.close(true);
      await sleep(1500);
    });
    expect(outcomes(jobs)).toEqual({ '#1': ['ERROR worker_closed', 'UNSET'] });
  });
});
