import {
  brokerEndpoint,
  deferred,
  makePropagator,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { propagation, SpanStatusCode, type TextMapPropagator } from '@opentelemetry/api';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { CHILDREN_CARRIER_KEY, CHILDREN_OF_CARRIER_KEY, MAX_CHILD_LINKS } from '../src/carrier.ts';
import { traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing({ leakGraceMs: 5000 });

const FOREIGN_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const FOREIGN_SPAN = '00f067aa0ba902b7';

/** The part of a worker (any BullMQ version) the listener-removal test calls. */
interface Unlistenable {
  removeAllListeners(event?: string): unknown;
}

/** Removes a job's lock behind BullMQ's back, as an operator or a Redis failover would. */
async function removeLock(queue: string, jobId: string | undefined): Promise<void> {
  const client = new Redis(brokerEndpoint('redis'));
  try {
    await client.del(`bull:${queue}:${jobId}:lock`);
  } finally {
    client.disconnect();
  }
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: faults and bad input on real Redis', (_label, bullmq) => {
  const { Queue, Worker } = bullmq;
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  const connection = () => brokerEndpoint('redis');
  afterEach(async () => cleanup(workers, queues));

  /** Kills this test's own Redis connections: BullMQ names them after the (unique) queue. */
  async function killOwnConnections(name: string): Promise<number> {
    const client = new Redis({ ...connection(), lazyConnect: true });
    await client.connect();
    try {
      return await killNamed(client, name);
    } finally {
      client.disconnect();
    }
  }

  async function killNamed(client: Redis, name: string): Promise<number> {
    const list = String(await client.client('LIST'));
    const marker = Buffer.from(name).toString('base64');
    let killed = 0;
    for (const line of list.split('\n')) {
      const id = /\bid=(\d+)/.exec(line)?.[1];
      const clientName = /\bname=(\S*)/.exec(line)?.[1] ?? '';
      if (id && clientName.includes(marker)) {
        await client.client('KILL', 'ID', id).catch(() => undefined);
        killed++;
      }
    }
    return killed;
  }

  it('missing, malformed or foreign telemetry metadata: processed normally, new trace or the foreign one', async () => {
    const name = uniqueQueueName('badmeta');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const done = deferred();
    const seen: string[] = [];
    workers.push(
      new Worker(
        name,
        traceProcessor(async (job) => {
          seen.push(job.name);
          if (seen.length === 7) done.resolve();
          return job.name;
        }),
        { connection: connection() },
      ),
    );
    const cases: Array<[string, string | undefined]> = [
      ['missing', undefined],
      ['not-json', 'traceparent=oops'],
      ['json-array', '[1,2,3]'],
      ['bad-traceparent', JSON.stringify({ traceparent: `00-${'0'.repeat(32)}-${FOREIGN_SPAN}-01` })],
      ['truncated-json', '{"traceparent": "00-'],
      // 1 MB: refused by size before any JSON or propagator parsing.
      [
        'oversized',
        JSON.stringify({ traceparent: `00-${FOREIGN_TRACE}-${FOREIGN_SPAN}-01`, x: 'x'.repeat(1 << 20) }),
      ],
      ['foreign', JSON.stringify({ traceparent: `00-${FOREIGN_TRACE}-${FOREIGN_SPAN}-01`, other: 'x' })],
    ];
    for (const [jobName, metadata] of cases) {
      await raw.add(jobName, {}, metadata === undefined ? {} : { telemetry: { metadata } });
    }
    await done.promise;
    expect(seen.sort()).toEqual(cases.map(([n]) => n).sort());
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 7,
    );
    const byName = new Map(
      spansNamed(spans, `process ${name}`).map((s) => [s.attributes['bullmq.job.name'], s]),
    );
    for (const [jobName] of cases.slice(0, 6)) {
      const span = byName.get(jobName);
      expect(span, jobName).toBeDefined();
      expect(parentSpanId(span as NonNullable<typeof span>), jobName).toBeUndefined();
      expect(span?.links, jobName).toEqual([]);
      expect(span?.status.code, jobName).toBe(SpanStatusCode.UNSET);
    }
    const foreign = byName.get('foreign');
    expect(foreign?.spanContext().traceId).toBe(FOREIGN_TRACE);
    expect(parentSpanId(foreign as NonNullable<typeof foreign>)).toBe(FOREIGN_SPAN);
  });

  it('a hoptrace-children list longer than hoptrace writes: only its first MAX_CHILD_LINKS entries are read', async () => {
    // A propagator that counts its extractions: one for the job's own context, one per child entry read.
    const real = makePropagator('w3c');
    let extractions = 0;
    const counting: TextMapPropagator = {
      inject: (ctx, carrier, setter) => real.inject(ctx, carrier, setter),
      extract: (ctx, carrier, getter) => {
        extractions++;
        return real.extract(ctx, carrier, getter);
      },
      fields: () => real.fields(),
    };
    const name = uniqueQueueName('children');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const done = deferred();
    workers.push(
      new Worker(
        name,
        traceProcessor(async () => done.resolve()),
        { connection: connection(), autorun: false },
      ),
    );
    // 4000 entries that carry no context (16 KB, the most metadata read), then one child context:
    // hoptrace lists at most MAX_CHILD_LINKS children, so an entry past that is not one it wrote.
    const children: Record<string, string>[] = Array.from({ length: 4000 }, () => ({}));
    children.push({ traceparent: `00-${FOREIGN_TRACE}-${'1'.repeat(16)}-01` });
    // The list names this job, as a flow parent's does: only then is it read at all.
    const jobId = 'wide-parent';
    const metadata = JSON.stringify({
      traceparent: `00-${FOREIGN_TRACE}-${FOREIGN_SPAN}-01`,
      [CHILDREN_OF_CARRIER_KEY]: { queue: name, id: jobId },
      [CHILDREN_CARRIER_KEY]: children,
    });
    expect(metadata.length).toBeLessThanOrEqual(16_384);
    await raw.add('wide', {}, { jobId, telemetry: { metadata } });
    propagation.disable();
    propagation.setGlobalPropagator(counting);
    try {
      (workers.at(-1) as InstanceType<typeof Worker>).run();
      await done.promise;
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${name}`).length === 1,
      );
      const process = onlySpan(spans, `process ${name}`);
      expect(process.spanContext().traceId).toBe(FOREIGN_TRACE);
      expect(parentSpanId(process)).toBe(FOREIGN_SPAN);
      expect(process.links).toEqual([]);
      expect(extractions).toBe(1 + MAX_CHILD_LINKS);
    } finally {
      propagation.disable();
      propagation.setGlobalPropagator(real);
    }
  });

  it('never overwrites metadata the user or another tool stored, nor writes any when omitContext is set', async () => {
    const name = uniqueQueueName('keepmeta');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const theirs = JSON.stringify({ traceparent: `00-${FOREIGN_TRACE}-${FOREIGN_SPAN}-01` });
    const opts = { telemetry: { metadata: theirs } };
    const kept = await queue.add('kept', { a: 1 }, opts);
    const omitted = await queue.add('omitted', { a: 2 }, { telemetry: { omitContext: true } });
    expect(opts).toEqual({ telemetry: { metadata: theirs } });
    const storedKept = await bullmq.Job.fromId(raw, kept.id as string);
    const storedOmitted = await bullmq.Job.fromId(raw, omitted.id as string);
    expect(storedKept?.opts.telemetry?.metadata).toBe(theirs);
    expect(storedOmitted?.opts.telemetry?.metadata).toBeUndefined();
    expect(spansNamed(tracing.current.spans(), `send ${name}`)).toHaveLength(2);
  });

  it('addBulk with an entry that is not a job (null, undefined): rejected with the error BullMQ gives without hoptrace', async () => {
    for (const entry of [null, undefined]) {
      const plain = new Queue(uniqueQueueName('bulk-bad-raw'), { connection: connection() });
      const raw = new Queue(uniqueQueueName('bulk-bad'), { connection: connection() });
      queues.push(plain, raw);
      const jobs = [{ name: 'ok', data: {} }, entry] as never;
      const expected = await plain.addBulk(jobs).then(
        () => 'resolved',
        (error: unknown) => String((error as Error).message),
      );
      const got = await traceQueue(raw)
        .addBulk(jobs)
        .then(
          () => 'resolved',
          (error: unknown) => String((error as Error).message),
        );
      expect(got).toBe(expected);
      expect(await raw.count()).toBe(await plain.count());
    }
    const send = tracing.current.spans().filter((s) => s.name.startsWith('send '));
    expect(send).toHaveLength(2);
    for (const span of send) expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('Redis connections killed mid-processing: the job completes, every attempt span ends under its send span', async () => {
    const name = uniqueQueueName('kill');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const started = deferred();
    const release = deferred();
    const completed = deferred<unknown>();
    const worker = new Worker(
      name,
      traceProcessor(async () => {
        started.resolve();
        await release.promise;
        return 'survived';
      }),
      { connection: connection(), lockDuration: 2000, stalledInterval: 1000 },
    );
    workers.push(worker);
    worker.on('completed', (_job, value) => completed.resolve(value));
    worker.on('error', () => undefined);
    const job = await queue.add('work', {});
    await started.promise;
    try {
      expect(await killOwnConnections(name)).toBeGreaterThan(0);
    } finally {
      release.resolve();
    }
    await expect(completed.promise).resolves.toBe('survived');
    expect(await raw.getJobState(job.id as string)).toBe('completed');
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length >= 1,
    );
    const send = onlySpan(spans, `send ${name}`);
    for (const span of spansNamed(spans, `process ${name}`)) {
      expect(parentSpanId(span)).toBe(send.spanContext().spanId);
      expect(span.attributes['messaging.message.id']).toBe(job.id);
    }
    expect(tracing.current.openSpans()).toHaveLength(0);
    // Observed here on 5.34 and 6.x: after its connections were killed, the worker's graceful
    // close() never returns (the job and every span are already done); a forced close does.
    workers.splice(workers.indexOf(worker), 1);
    await worker.close(true);
  });

  it('a stalled job (its worker gone) is traced again when another worker runs it, under the same parent', async () => {
    const name = uniqueQueueName('stall');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const firstStarted = deferred();
    const releaseFirst = deferred();
    const first = new Worker(
      name,
      traceProcessor(async () => {
        firstStarted.resolve();
        await releaseFirst.promise;
        return 'first';
      }),
      { connection: connection(), lockDuration: 1000, stalledInterval: 500 },
    );
    first.on('error', () => undefined);
    const job = await queue.add('work', {});
    await firstStarted.promise;
    // The first worker disappears without finishing: its lock expires and the job stalls. Its
    // processor is released at the end (a force-closed worker leaves it running in this process).
    setTimeout(() => releaseFirst.resolve(), 8000).unref();
    await first.close(true);
    const closed = onlySpan(tracing.current.spans(), `process ${name}`);
    expect(closed.status.code).toBe(SpanStatusCode.ERROR);
    expect(closed.attributes['error.type']).toBe('worker_closed');
    const completed = deferred<unknown>();
    const second = new Worker(
      name,
      traceProcessor(async () => 'second'),
      {
        connection: connection(),
        lockDuration: 1000,
        stalledInterval: 500,
      },
    );
    workers.push(second);
    second.on('completed', (_job, value) => completed.resolve(value));
    await expect(completed.promise).resolves.toBe('second');
    releaseFirst.resolve();
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 2,
    );
    const send = onlySpan(spans, `send ${name}`);
    const runs = spansNamed(spans, `process ${name}`);
    for (const span of runs) {
      expect(parentSpanId(span)).toBe(send.spanContext().spanId);
      expect(span.attributes['messaging.message.id']).toBe(job.id);
    }
    expect(new Set(runs.map((s) => s.spanContext().spanId)).size).toBe(2);
    // The first attempt's span ended when its worker was force-closed, its processor still running.
    expect(runs.map((s) => String(s.attributes['error.type'] ?? 'none')).sort()).toEqual([
      'none',
      'worker_closed',
    ]);
  });

  it.each([
    ['removeAllListeners()', (w: Unlistenable) => w.removeAllListeners()],
    [
      "removeAllListeners('completed') and ('closed')",
      (w: Unlistenable) => {
        w.removeAllListeners('completed');
        w.removeAllListeners('closed');
      },
    ],
  ] as const)(
    'the application calls %s on the worker: attempts still end with what BullMQ did',
    async (_how, removeAll) => {
      const name = uniqueQueueName('unlisten');
      const raw = new Queue(name, { connection: connection() });
      queues.push(raw);
      const queue = traceQueue(raw);
      const held = deferred();
      const release = deferred();
      const worker = new Worker(
        name,
        traceProcessor(async (job) => {
          if (job.name === 'held') {
            held.resolve();
            await release.promise;
          }
          return job.name;
        }),
        { connection: connection(), concurrency: 2 },
      );
      workers.push(worker);
      const first = deferred();
      worker.on('completed', () => first.resolve());
      await queue.add('first', {});
      await first.promise; // the traced processor has met the worker
      removeAll(worker);
      // A job completed after the removal: its span has ended, UNSET, when the application hears of it.
      const second = deferred<number>();
      worker.on('completed', () => second.resolve(tracing.current.openSpans().length));
      await queue.add('second', {});
      expect(await second.promise).toBe(0);
      // A job still running when the worker is force-closed after a removal: its span ends worker_closed.
      await queue.add('held', {});
      await held.promise;
      removeAll(worker);
      workers.splice(workers.indexOf(worker), 1);
      await worker.close(true);
      expect(tracing.current.openSpans()).toHaveLength(0);
      release.resolve();
      const spans = spansNamed(tracing.current.spans(), `process ${name}`);
      expect(
        spans.map((s) => [s.attributes['messaging.message.id'] && s.status.code, s.attributes['error.type']]),
      ).toEqual([
        [SpanStatusCode.UNSET, undefined],
        [SpanStatusCode.UNSET, undefined],
        [SpanStatusCode.ERROR, 'worker_closed'],
      ]);
    },
  );

  it("the application calls removeAllListeners('removeListener'), then removeAllListeners(): a job started afterwards still ends with what BullMQ did", async () => {
    const name = uniqueQueueName('unlisten-rl');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const worker = new Worker(
      name,
      traceProcessor(async (job) => job.name),
      {
        connection: connection(),
        lockDuration: 60_000,
      },
    );
    workers.push(worker);
    const first = deferred();
    worker.on('completed', () => first.resolve());
    await queue.add('first', {});
    await first.promise; // the traced processor has met the worker
    const w = worker as unknown as Unlistenable;
    w.removeAllListeners('removeListener'); // Node tells no one of this removal
    w.removeAllListeners();
    const second = deferred<number>();
    worker.on('completed', () => second.resolve(tracing.current.openSpans().length));
    await queue.add('second', {});
    expect(await second.promise).toBe(0);
    const spans = spansNamed(tracing.current.spans(), `process ${name}`);
    expect(spans.map((s) => [s.status.code, s.attributes['error.type']])).toEqual([
      [SpanStatusCode.UNSET, undefined],
      [SpanStatusCode.UNSET, undefined],
    ]);
  });

  it('worker close() with jobs in flight: every process span ends', async () => {
    const name = uniqueQueueName('close');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    let inFlight = 0;
    const allStarted = deferred();
    const worker = new Worker(
      name,
      traceProcessor(async () => {
        if (++inFlight === 3) allStarted.resolve();
        await new Promise((r) => setTimeout(r, 300));
        return 'done';
      }),
      { connection: connection(), concurrency: 3 },
    );
    workers.push(worker);
    await queue.addBulk([1, 2, 3].map((n) => ({ name: `j${n}`, data: n })));
    await allStarted.promise;
    expect(tracing.current.openSpans().filter((s) => s.name === `process ${name}`)).toHaveLength(3);
    await worker.close();
    const spans = spansNamed(tracing.current.spans(), `process ${name}`);
    expect(spans).toHaveLength(3);
    for (const span of spans) expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('lock lost: the attempt span ends (ERROR) when BullMQ gives up, though the processor never returns', async () => {
    const name = uniqueQueueName('locklost');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const started = deferred();
    const never = deferred();
    let calls = 0;
    const completed = deferred();
    const worker = new Worker(
      name,
      traceProcessor(async () => {
        if (++calls === 1) {
          started.resolve();
          await never.promise; // the first attempt never returns on its own
          return 'late';
        }
        return 'second';
      }),
      { connection: connection(), concurrency: 2, lockDuration: 1000, stalledInterval: 300 },
    );
    workers.push(worker);
    worker.on('error', () => undefined);
    worker.on('completed', () => completed.resolve());
    const job = await queue.add('work', {});
    await started.promise;
    // Someone else (an operator, a Redis failover) removes the job's lock.
    await removeLock(name, job.id);
    const spans = await waitForSpans(tracing.current.spans, (s) =>
      spansNamed(s, `process ${name}`).some((p) => p.status.code === SpanStatusCode.ERROR),
    );
    const given = spansNamed(spans, `process ${name}`).find((p) => p.status.code === SpanStatusCode.ERROR);
    expect(['lock_lost', 'stalled']).toContain(given?.attributes['error.type']);
    expect(given?.attributes['messaging.message.id']).toBe(job.id);
    expect(calls).toBeGreaterThanOrEqual(1);
    never.resolve();
    await completed.promise;
    await tracing.current.assertNoOpenSpans();
  });

  it.each([
    ['', false, 'failed'],
    [' with removeOnFail (BullMQ removes the job and its failed event names none)', true, 'unknown'],
  ] as const)(
    'lock lost past maxStalledCount%s: the attempt span ends (ERROR) when BullMQ fails the stalled job, though the processor never returns',
    async (_label, removeOnFail, state) => {
      const name = uniqueQueueName(removeOnFail ? 'stall-removed' : 'stall-limit');
      const raw = new Queue(name, { connection: connection() });
      queues.push(raw);
      const queue = traceQueue(raw);
      const started = deferred();
      const never = deferred();
      const failed = deferred<string | undefined>();
      const worker = new Worker(
        name,
        // No processTimeoutMs: only BullMQ giving up can end the span.
        traceProcessor(async () => {
          started.resolve();
          await never.promise; // never returns on its own
          return 'late';
        }),
        // No stall allowed: BullMQ fails a job the first time it finds it stalled (5.x in the stall
        // check; 6.x when a worker picks it up again, hence a second slot).
        {
          connection: connection(),
          concurrency: 2,
          lockDuration: 1000,
          stalledInterval: 300,
          maxStalledCount: 0,
        },
      );
      workers.push(worker);
      worker.on('error', () => undefined);
      worker.on('failed', (_job, error) => failed.resolve(error?.message));
      const job = await queue.add('work', {}, removeOnFail ? { removeOnFail: true } : {});
      await started.promise;
      // Someone else (an operator, a Redis failover) removes the job's lock.
      await removeLock(name, job.id);
      try {
        await expect(failed.promise).resolves.toBe('job stalled more than allowable limit');
        // failed, or removed with removeOnFail
        expect(await raw.getJobState(job.id as string)).toBe(state);
        const spans = await waitForSpans(tracing.current.spans, (s) =>
          spansNamed(s, `process ${name}`).some((p) => p.status.code === SpanStatusCode.ERROR),
        );
        const given = onlySpan(spans, `process ${name}`);
        expect(['lock_lost', 'stalled']).toContain(given.attributes['error.type']);
        expect(given.attributes['messaging.message.id']).toBe(job.id);
        expect(given.attributes['hoptrace.attempt.final']).toBeUndefined();
      } finally {
        never.resolve();
      }
      await tracing.current.assertNoOpenSpans();
    },
  );

  it('the watch reads lock errors through errorMonitor: a traced worker the application gave no error listener has none', async () => {
    const name = uniqueQueueName('no-error-listener');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const completed = deferred();
    const worker = new Worker(
      name,
      traceProcessor(async () => 'done'),
      { connection: connection() },
    );
    workers.push(worker);
    worker.on('completed', () => completed.resolve());
    await queue.add('work', {});
    await completed.promise;
    // The processor ran under the worker watch, which now listens to the worker.
    expect(spansNamed(tracing.current.spans(), `process ${name}`)).toHaveLength(1);
    expect(worker.listenerCount('error')).toBe(0);
    // BullMQ reports errors itself (console.error) when the application did not listen for them.
    expect(worker.rawListeners('error')).toHaveLength(0);
  });

  it('processTimeoutMs: the span ends with process_timeout, the later outcome of the processor still reaches BullMQ', async () => {
    const name = uniqueQueueName('ptimeout');
    const raw = new Queue(name, { connection: connection() });
    queues.push(raw);
    const queue = traceQueue(raw);
    const release = deferred();
    const completed = deferred<unknown>();
    const worker = new Worker(
      name,
      traceProcessor(
        async () => {
          await release.promise;
          return 'finished late';
        },
        { processTimeoutMs: 50 },
      ),
      { connection: connection() },
    );
    workers.push(worker);
    worker.on('completed', (_job, value) => completed.resolve(value));
    await queue.add('slow', {});
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${name}`).length === 1,
    );
    const span = onlySpan(spans, `process ${name}`);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('process_timeout');
    expect(span.attributes['hoptrace.attempt.final']).toBeUndefined();
    release.resolve();
    await expect(completed.promise).resolves.toBe('finished late');
    expect(spansNamed(tracing.current.spans(), `process ${name}`)).toHaveLength(1);
  });
});

function throwing(key: string): object {
  return Object.defineProperty({}, key, {
    get() {
      throw new Error(`${key} getter`);
    },
    enumerable: true,
  });
}

/** Every kind of value a processor may throw. */
const THROWN: ReadonlyArray<readonly [string, () => unknown]> = [
  ['null', () => null],
  ['undefined', () => undefined],
  ['a number', () => 42],
  ['a string', () => 'plain string'],
  ['a plain object', () => ({ code: 'E_PLAIN', message: 'plain object' })],
  [
    'a null-prototype object',
    () => Object.assign(Object.create(null) as object, { message: 'no prototype' }),
  ],
  ['an object whose message getter throws', () => throwing('message')],
  ['an object whose name getter throws', () => Object.assign(throwing('name'), { message: 'named' })],
  [
    'an object whose toString throws',
    () => ({
      message: 'to string',
      toString() {
        throw new Error('toString');
      },
    }),
  ],
];

interface Outcome {
  state: string;
  failedReason: unknown;
  received: unknown;
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: any thrown value on real Redis', (_label, bullmq) => {
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  /** Runs one job whose processor throws `value`; what BullMQ made of it. */
  async function run(value: unknown, wrap: boolean): Promise<Outcome & { queue: string }> {
    const connection = brokerEndpoint('redis');
    const name = uniqueQueueName(wrap ? 'thrown-traced' : 'thrown-raw');
    const queue = new bullmq.Queue(name, { connection });
    queues.push(queue);
    const processor = async () => {
      throw value;
    };
    const worker = new bullmq.Worker(name, wrap ? traceProcessor(processor) : processor, { connection });
    workers.push(worker);
    const settled = deferred<unknown>();
    // BullMQ itself may fail to record some values (it reads `err.message`): it reports an error.
    worker.on('failed', (_job, err) => settled.resolve(err));
    worker.on('error', (err) => settled.resolve(err));
    const job = await queue.add('x', {}, { attempts: 1 });
    const received = await settled.promise;
    const stored = await bullmq.Job.fromId(queue, job.id as string);
    return {
      queue: name,
      state: await queue.getJobState(job.id as string),
      failedReason: stored?.failedReason,
      received: received === value ? 'the thrown value' : String((received as Error)?.message),
    };
  }

  it.each(THROWN)(
    '%s: rethrown unchanged (BullMQ records what it records without hoptrace), span ERROR',
    async (_what, make) => {
      const value = make();
      const raw = await run(value, false);
      const traced = await run(value, true);
      expect({ ...traced, queue: '' }).toEqual({ ...raw, queue: '' });
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${traced.queue}`).length === 1,
      );
      const span = onlySpan(spans, `process ${traced.queue}`);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(typeof span.attributes['error.type']).toBe('string');
      expect(tracing.current.openSpans()).toHaveLength(0);
    },
  );
});
