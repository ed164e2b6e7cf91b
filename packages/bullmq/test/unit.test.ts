import { EventEmitter, errorMonitor } from 'node:events';
import { allUndefined, spanShapesOf, useTestTracing } from '@hoptrace/test-kit';
import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { describe, expect, it, vi } from 'vitest';
import {
  CHILDREN_CARRIER_KEY,
  CHILDREN_OF_CARRIER_KEY,
  childLinks,
  MAX_METADATA_DEPTH,
  MAX_METADATA_LENGTH,
  parseCarrier,
  readCarrier,
  withCarrier,
  withChildCarriers,
} from '../src/carrier.ts';
import {
  deadLetterJobOptions,
  type FlowTracingOptions,
  type ProcessorTracingOptions,
  type QueueTracingOptions,
  traceFlowProducer,
  traceProcessor,
  traceQueue,
} from '../src/index.ts';
import { jobPrefix } from '../src/job-prefix.ts';
import { PROCESSOR_OPTION_KEYS, PRODUCER_OPTION_KEYS } from '../src/options.ts';
import { optionsWithContext } from '../src/producer.ts';
import { serverAttributes } from '../src/server.ts';
import { fakeQueue } from './helpers.ts';

const tracing = useTestTracing();

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('metadata nesting bound', () => {
  const tp = `00-${TRACE}-${SPAN}-01`;
  const nested = (depth: number) =>
    `{"traceparent":"${tp}","x":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;

  it(`reads metadata nested ${MAX_METADATA_DEPTH} deep and refuses deeper, as malformed`, () => {
    expect(parseCarrier({ telemetry: { metadata: nested(MAX_METADATA_DEPTH) } })?.traceparent).toBe(tp);
    expect(parseCarrier({ telemetry: { metadata: nested(MAX_METADATA_DEPTH + 1) } })).toBeUndefined();
    // 7000 deep fits in 16 KB: parsed, it made every later JSON.stringify of it throw.
    expect(parseCarrier({ telemetry: { metadata: nested(7000) } })).toBeUndefined();
  });

  it('brackets and escaped quotes inside strings do not count', () => {
    const metadata = JSON.stringify({ traceparent: tp, note: `\\"${'['.repeat(100)}"{{{` });
    expect(parseCarrier({ telemetry: { metadata } })?.traceparent).toBe(tp);
  });
});

describe('carrier', () => {
  it('writes a JSON W3C map into a copy of the options and never mutates the caller', () => {
    const span = trace.wrapSpanContext({ traceId: TRACE, spanId: SPAN, traceFlags: 1 });
    const opts = { attempts: 3, telemetry: { omitContext: false } };
    const out = withCarrier(opts, trace.setSpan(ROOT_CONTEXT, span));
    expect(opts).toEqual({ attempts: 3, telemetry: { omitContext: false } });
    expect(out).not.toBe(opts);
    expect(JSON.parse((out.telemetry as { metadata?: string }).metadata ?? '')).toEqual({
      traceparent: `00-${TRACE}-${SPAN}-01`,
    });
  });

  it('keeps metadata someone else stored, and writes nothing when omitContext is set', () => {
    const ctx = trace.setSpan(
      ROOT_CONTEXT,
      trace.wrapSpanContext({ traceId: TRACE, spanId: SPAN, traceFlags: 1 }),
    );
    const theirs = { telemetry: { metadata: '{"traceparent":"x"}' } };
    expect(optionsWithContext(theirs, ctx)).toBe(theirs);
    const omit = { telemetry: { omitContext: true } };
    expect(optionsWithContext(omit, ctx)).toBe(omit);
    expect(withCarrier(omit, ctx)).toBe(omit);
  });

  it('reads missing, malformed and non-object metadata as no context, never throwing', () => {
    for (const metadata of [
      undefined,
      '',
      'x',
      '{',
      '[1]',
      'null',
      '{"traceparent":5}',
      '{"traceparent":"00-zz"}',
    ]) {
      const ctx = readCarrier(metadata === undefined ? {} : { telemetry: { metadata } });
      expect(trace.getSpanContext(ctx), String(metadata)).toBeUndefined();
    }
    expect(readCarrier(undefined)).toBe(ROOT_CONTEXT);
  });

  it('reads the compact `tm` key BullMQ 5.x gives sandboxed processors', () => {
    const ctx = readCarrier({ tm: JSON.stringify({ traceparent: `00-${TRACE}-${SPAN}-01` }) });
    expect(trace.getSpanContext(ctx)?.spanId).toBe(SPAN);
  });
});

describe('flow parent marker (hoptrace-children-of)', () => {
  const CHILD_A = '1111111111111111';
  const CHILD_B = '2222222222222222';
  const children = [CHILD_A, CHILD_B].map((spanId) => ({ traceparent: `00-${TRACE}-${spanId}-01` }));
  const parentContext = trace.setSpan(
    ROOT_CONTEXT,
    trace.wrapSpanContext({ traceId: TRACE, spanId: SPAN, traceFlags: 1 }),
  );
  const linked = (marker: unknown, job: Parameters<typeof childLinks>[1]) =>
    (childLinks({ [CHILDREN_OF_CARRIER_KEY]: marker, [CHILDREN_CARRIER_KEY]: children }, job) ?? []).map(
      (l) => l.context.spanId,
    );

  it('names the key prefix with the queue and id; a job under another prefix is not the parent', () => {
    const written = withChildCarriers({}, parentContext, children, {
      prefix: 'staging',
      queue: 'q',
      id: '7',
    });
    const carrier = parseCarrier(written);
    expect(carrier?.[CHILDREN_OF_CARRIER_KEY]).toEqual({ prefix: 'staging', queue: 'q', id: '7' });
    expect(
      childLinks(carrier, { prefix: 'staging', queue: 'q', id: '7' })?.map((l) => l.context.spanId),
    ).toEqual([CHILD_A, CHILD_B]);
    expect(childLinks(carrier, { prefix: 'prod', queue: 'q', id: '7' })).toBeUndefined();
    expect(childLinks(carrier, { prefix: 'staging', queue: 'q', id: '8' })).toBeUndefined();
    expect(childLinks(carrier, { prefix: 'staging', queue: 'r', id: '7' })).toBeUndefined();
  });

  it('a marker without prefix (earlier releases) names the queue under any prefix; a job whose prefix is unknown is not told apart by it', () => {
    expect(linked({ queue: 'q', id: '7' }, { prefix: 'prod', queue: 'q', id: '7' })).toEqual([
      CHILD_A,
      CHILD_B,
    ]);
    expect(linked({ queue: 'q' }, { prefix: 'prod', queue: 'q', id: '9' })).toEqual([CHILD_A, CHILD_B]);
    expect(linked({ prefix: 'staging', queue: 'q' }, { queue: 'q', id: '9' })).toEqual([CHILD_A, CHILD_B]);
    expect(linked({ prefix: 'staging', queue: 'q' }, { prefix: 'prod', queue: 'q', id: '9' })).toEqual([]);
    // A prefix that is not a string names no job's prefix (BullMQ prefixes are strings).
    expect(linked({ prefix: 42, queue: 'q', id: '7' }, { prefix: '42', queue: 'q', id: '7' })).toEqual([]);
    expect(linked({ prefix: '', queue: 'q', id: '7' }, { prefix: '', queue: 'q', id: '7' })).toEqual([
      CHILD_A,
      CHILD_B,
    ]);
  });

  it('a marker too long to leave room for any child (a very long job id) is left out with the list: the parent keeps its context within the limit', () => {
    const id = 'x'.repeat(MAX_METADATA_LENGTH);
    const written = withChildCarriers({}, parentContext, children, { prefix: 'bull', queue: 'q', id });
    const metadata = (written as { telemetry?: { metadata?: string } }).telemetry?.metadata ?? '';
    expect(metadata.length).toBeLessThanOrEqual(MAX_METADATA_LENGTH);
    expect(JSON.parse(metadata)).toEqual({ traceparent: `00-${TRACE}-${SPAN}-01` });
    expect(trace.getSpanContext(readCarrier(written))?.spanId).toBe(SPAN);
  });

  it('the marker counts toward the limit: with a long prefix, fewer children are listed and the metadata stays within it', () => {
    const many = Array.from({ length: 128 }, (_, i) => ({
      traceparent: `00-${TRACE}-${(i + 1).toString(16).padStart(16, '0')}-01`,
    }));
    const listed = (prefix: string) => {
      const written = withChildCarriers({}, parentContext, many, { prefix, queue: 'q' });
      const metadata = (written as { telemetry?: { metadata?: string } }).telemetry?.metadata ?? '';
      expect(metadata.length).toBeLessThanOrEqual(MAX_METADATA_LENGTH);
      const list = parseCarrier(written)?.[CHILDREN_CARRIER_KEY] as unknown[];
      return { metadata, count: list.length };
    };
    expect(listed('bull').count).toBe(128);
    const long = listed('p'.repeat(12_000));
    expect(long.count).toBeGreaterThan(0);
    expect(long.count).toBeLessThan(128);
    // One more child (and its comma) would not have fit.
    expect(long.metadata.length + JSON.stringify(many[long.count]).length + 1).toBeGreaterThan(
      MAX_METADATA_LENGTH,
    );
  });
});

describe('jobPrefix', () => {
  it('reads the prefix the job was read under, from its qualified name, else from `prefix`', () => {
    // A Job in a worker, and BullMQ 6's sandboxed job.
    expect(jobPrefix({ queueName: 'q', queueQualifiedName: 'bull:q', prefix: 'ignored' })).toBe('bull');
    expect(jobPrefix({ queueName: 'q', queueQualifiedName: '{tenant}:q' })).toBe('{tenant}');
    expect(jobPrefix({ queueName: 'q', queueQualifiedName: ':q' })).toBe('');
    // A backend without key prefixes (BullMQ 6's PostgreSQL): the qualified name is the queue name.
    expect(jobPrefix({ queueName: 'q', queueQualifiedName: 'q', prefix: '' })).toBeUndefined();
    // BullMQ 5's sandboxed job.
    expect(jobPrefix({ queueName: 'q', prefix: 'staging' })).toBe('staging');
    expect(jobPrefix({ queueName: 'q' })).toBeUndefined();
    expect(jobPrefix({ queueName: 'q', prefix: 7 })).toBeUndefined();
    const throwing = {
      queueName: 'q',
      get queueQualifiedName(): string {
        throw new Error('no queue');
      },
    };
    expect(jobPrefix(throwing)).toBeUndefined();
  });
});

describe('deadLetterJobOptions', () => {
  it('options that are not an object, or hold a value of the wrong type, throw a clear TypeError', () => {
    // null crashed reading its context ("Cannot read properties of null"); attempts: '3' was ignored.
    const job = { id: '1', queueName: 'q', opts: {} };
    expect(() => deadLetterJobOptions(job, 'x', null as never)).toThrow(
      new TypeError('Expected `options` to be an object, got null'),
    );
    expect(() => deadLetterJobOptions(job, 'x', { attempts: '3' as never })).toThrow(
      new TypeError('Expected `attempts` to be an integer >= 0, got "3"'),
    );
    expect(() => deadLetterJobOptions(job, 'x', { classifyError: 1 as never })).toThrow(
      new TypeError('Expected `classifyError` to be a function, got 1'),
    );
    expect(deadLetterJobOptions(job, 'x')).toBeTypeOf('object');
  });

  it('an options.context that is not a Context throws a TypeError naming deadLetterJobOptions', () => {
    // Before, the copy went without hoptrace-failed-traceparent and only a diag warning told.
    const job = { queueName: 'orders', attemptsMade: 1, opts: {} };
    expect(() => deadLetterJobOptions(job, 'x', { context: {} as never })).toThrow(
      'deadLetterJobOptions: expected `options.context` to be an OpenTelemetry Context or undefined, got an object',
    );
    expect(deadLetterJobOptions(job, 'x', { context: undefined })).toBeTypeOf('object');
  });

  it('refuses an option it does not take, naming the one it most likely misspells (it was ignored)', () => {
    const job = { queueName: 'orders', attemptsMade: 1, opts: {} };
    expect(() => deadLetterJobOptions(job, 'x', { attempt: 3 } as never)).toThrow(
      new TypeError('Unknown option `attempt` for deadLetterJobOptions (did you mean `attempts`?)'),
    );
    expect(() => deadLetterJobOptions(job, 'x', { opt: { priority: 1 } } as never)).toThrow(
      new TypeError('Unknown option `opt` for deadLetterJobOptions (did you mean `opts`?)'),
    );
    // A job option beside `opts` rather than inside it was dropped from the copy without a word.
    expect(() => deadLetterJobOptions(job, 'x', { removeOnComplete: true } as never)).toThrow(
      new TypeError('Unknown option `removeOnComplete` for deadLetterJobOptions'),
    );
    expect(() => deadLetterJobOptions(job, 'x', { attempt: undefined } as never)).not.toThrow();
  });

  it("takes every option it knows, and leaves the keys of opts (the copy's job options) to BullMQ", () => {
    const job = { queueName: 'orders', attemptsMade: 1, opts: {} };
    const opts = deadLetterJobOptions(job, 'x', {
      opts: { removeOnComplete: true, notABullMQOption: 1 },
      classifyError: () => undefined,
      attempts: 3,
      context: undefined,
    }) as Record<string, unknown>;
    expect(opts).toMatchObject({ removeOnComplete: true, notABullMQOption: 1 });
  });

  it("writes the job's attemptsMade as hoptrace-attempts only when it is a count", () => {
    const attemptsOf = (attemptsMade: number) => {
      const opts = deadLetterJobOptions({ queueName: 'q', attemptsMade, opts: {} }, 'x') as {
        telemetry?: { metadata?: string };
      };
      return (JSON.parse(opts.telemetry?.metadata ?? '{}') as Record<string, string>)['hoptrace-attempts'];
    };
    expect(attemptsOf(2)).toBe('2');
    for (const junk of [Number.NaN, -3, 1e20]) expect(attemptsOf(junk), String(junk)).toBeUndefined();
  });
});

describe('server attributes', () => {
  it('reads options objects and ioredis instances, with ioredis defaults', () => {
    expect(serverAttributes({ host: 'h', port: 1 })).toEqual({ 'server.address': 'h', 'server.port': 1 });
    expect(serverAttributes({ options: { host: 'i', port: 2 } })).toEqual({
      'server.address': 'i',
      'server.port': 2,
    });
    expect(serverAttributes({})).toEqual({ 'server.address': 'localhost', 'server.port': 6379 });
    expect(serverAttributes({ path: '/tmp/redis.sock' })).toEqual({});
    // Sentinel and Cluster: the options name no single server (ioredis still defaults host to localhost)
    expect(
      serverAttributes({ options: { host: 'localhost', sentinels: [{ host: 's', port: 26379 }] } }),
    ).toEqual({});
    expect(serverAttributes({ isCluster: true, options: {} })).toEqual({});
    expect(serverAttributes(undefined)).toEqual({});
  });

  it('reads the host and port of a `url` connection (BullMQ hands it to ioredis), never its credentials', () => {
    expect(serverAttributes({ url: 'redis://user:secret@redis.internal:6380/2' })).toEqual({
      'server.address': 'redis.internal',
      'server.port': 6380,
    });
    expect(serverAttributes({ url: 'rediss://:secret@[::1]' })).toEqual({
      'server.address': '::1',
      'server.port': 6379,
    });
    // ioredis reads a URL without a scheme as redis://; the URL's parts win over the other options
    expect(serverAttributes({ url: 'redis.internal:6390', host: 'other', port: 1 })).toEqual({
      'server.address': 'redis.internal',
      'server.port': 6390,
    });
    expect(serverAttributes({ url: 'redis://redis.internal', port: 6391 })).toEqual({
      'server.address': 'redis.internal',
      'server.port': 6391,
    });
    expect(serverAttributes({ url: '/tmp/redis.sock' })).toEqual({});
    expect(serverAttributes({ url: 'redis://[bad' })).toEqual({});
  });
});

describe('wrappers', () => {
  it('refuse an option they do not take, naming the one meant', () => {
    const { queue } = fakeQueue();
    expect(() => traceQueue(queue, { createSpan: true } as never)).toThrow(
      new TypeError('Unknown option `createSpan` for traceQueue (did you mean `createSpans`?)'),
    );
    expect(() => traceFlowProducer({ async add() {} }, { relation: 'link' } as never)).toThrow(
      new TypeError('Unknown option `relation` for traceFlowProducer'),
    );
    expect(() => traceProcessor(async () => {}, { processTimeout: 5 } as never)).toThrow(
      new TypeError('Unknown option `processTimeout` for traceProcessor (did you mean `processTimeoutMs`?)'),
    );
    expect(() => traceProcessor(async () => {}, { relation: 'link', queueName: 'q' })).not.toThrow();
  });

  it('are idempotent and keep the wrapped object working', async () => {
    const { queue, calls } = fakeQueue();
    const traced = traceQueue(queue);
    expect(traceQueue(traced)).toBe(traced);
    expect(traced.extra).toBe(42);
    const job = await traced.add('a', { x: 1 });
    expect(job).toEqual({ id: '7', name: 'a' });
    expect(calls[0]?.[1]).toEqual({ x: 1 });
    const spans = tracing.current.spans();
    expect(spans.map((s) => s.name)).toEqual(['send orders']);
    expect(spans[0]?.attributes).toMatchObject({
      'server.address': 'redis.internal',
      'server.port': 6380,
      'messaging.message.id': '7',
    });
    const fn = async () => 1;
    const wrapped = traceProcessor(fn);
    expect(traceProcessor(wrapped)).toBe(wrapped);
    const flow = { async add(..._args: unknown[]) {}, async addBulk(..._args: unknown[]) {} };
    const tracedFlow = traceFlowProducer(flow);
    expect(traceFlowProducer(tracedFlow)).toBe(tracedFlow);
  });

  it('emits the older attribute names too with legacyAttributes', async () => {
    const { queue } = fakeQueue();
    await traceQueue(queue, { legacyAttributes: true }).add('a', {});
    const [send] = tracing.current.spans();
    expect(send?.attributes).toMatchObject({
      'messaging.system.name': 'bullmq',
      'messaging.system': 'bullmq',
      'messaging.operation.type': 'send',
      'messaging.operation': 'publish',
    });
  });

  it('fails every span and rethrows the same error when add rejects', async () => {
    const boom = new RangeError('no redis');
    const queue = {
      name: 'q',
      async add(..._args: unknown[]): Promise<never> {
        throw boom;
      },
    };
    await expect(traceQueue(queue).add('a', {})).rejects.toBe(boom);
    const [send] = tracing.current.spans();
    expect(send?.status.code).toBe(2);
    expect(send?.attributes['error.type']).toBe('RangeError');
  });

  it('runs a sync processor and rethrows its error unchanged', () => {
    const err = new SyntaxError('bad');
    const wrapped = traceProcessor((_job: unknown) => {
      throw err;
    });
    // The context manager's own root: with @opentelemetry/api >= 1.10 (separate CommonJS and ES
    // module builds) it need not be the ROOT_CONTEXT this file imports.
    const before = context.active();
    expect(() =>
      wrapped({ id: '1', name: 'n', queueName: 'q', attemptsMade: 0, timestamp: Date.now() }),
    ).toThrow(err);
    const [span] = tracing.current.spans();
    expect(span?.name).toBe('process q');
    expect(span?.attributes['error.type']).toBe('SyntaxError');
    expect(context.active()).toBe(before);
    expect(trace.getSpan(context.active())).toBeUndefined();
  });

  it('throws a TypeError naming the option and the value at wrap time', () => {
    const { queue } = fakeQueue();
    expect(() => traceQueue(queue, { legacyAttributes: 'yes' as unknown as boolean })).toThrow(
      /`legacyAttributes`.*"yes"/,
    );
    expect(() => traceProcessor(async () => 1, { relation: 'sideways' as 'link' })).toThrow(
      /`relation`.*"sideways"/,
    );
    expect(() => traceProcessor(async () => 1, { onProcess: 3 as unknown as () => void })).toThrow(
      /`onProcess`.*3/,
    );
    expect(() => traceProcessor(async () => 1, { queueName: 5 as unknown as string })).toThrow(
      /`queueName`.*5/,
    );
    expect(() => traceProcessor('nope' as unknown as () => void)).toThrow(TypeError);
    expect(() => traceQueue({} as unknown as typeof queue)).toThrow(TypeError);
  });

  it('validates the options of a call that returns an existing wrapper too', () => {
    const { queue } = fakeQueue();
    const tracedQueue = traceQueue(queue);
    const processor = traceProcessor(async () => 1);
    expect(() => traceQueue(tracedQueue, { createSpans: 'yes' as never })).toThrow(/`createSpans`.*"yes"/);
    expect(() => traceQueue(queue, { createSpans: 'yes' as never })).toThrow(/`createSpans`.*"yes"/);
    expect(() => traceProcessor(processor, { processTimeoutMs: 0 })).toThrow(/`processTimeoutMs`.*0/);
    const flow = traceFlowProducer({ async add(..._args: unknown[]) {} });
    expect(() => traceFlowProducer(flow, { unsampled: 'x' as never })).toThrow(/`unsampled`.*"x"/);
    expect(traceQueue(queue, { createSpans: true })).toBe(tracedQueue);
  });

  it('refuses a processTimeoutMs longer than Node.js timers take (it would fire after 1 ms)', () => {
    expect(() => traceProcessor(async () => 1, { processTimeoutMs: 2 ** 31 })).toThrow(
      new TypeError('Expected `processTimeoutMs` to be an integer from 1 to 2147483647, got 2147483648'),
    );
    expect(() => traceProcessor(async () => 1, { processTimeoutMs: 2 ** 31 - 1 })).not.toThrow();
  });
});

describe('an option set to undefined is not set', () => {
  const queueOptions = allUndefined<QueueTracingOptions>(PRODUCER_OPTION_KEYS);
  const flowOptions = allUndefined<FlowTracingOptions>(PRODUCER_OPTION_KEYS);
  const processorOptions = allUndefined<ProcessorTracingOptions>(PROCESSOR_OPTION_KEYS);

  /** The shapes of the spans `run` makes. */
  const shapesOf = (run: () => Promise<unknown>) => spanShapesOf(tracing.current, run);

  it('every wrapper given every option as undefined traces as one given {}', async () => {
    const queue = (options: QueueTracingOptions) => async () => {
      const traced = traceQueue(fakeQueue().queue, options);
      await traced.add('a', { x: 1 });
      await traced.addBulk([
        { name: 'b', data: {} },
        { name: 'c', data: {} },
      ]);
    };
    const queued = await shapesOf(queue(queueOptions));
    expect(queued.length).toBeGreaterThan(0);
    expect(queued).toEqual(await shapesOf(queue({})));
    const flow = (options: FlowTracingOptions) => async () => {
      const traced = traceFlowProducer({ async add(..._args: unknown[]) {} }, options);
      await traced.add({ name: 'p', queueName: 'parents', children: [{ name: 'c', queueName: 'children' }] });
    };
    const flowed = await shapesOf(flow(flowOptions));
    expect(flowed.length).toBeGreaterThan(0);
    expect(flowed).toEqual(await shapesOf(flow({})));
    const processor = (options: ProcessorTracingOptions) => async () => {
      const metadata = JSON.stringify({ traceparent: `00-${TRACE}-${SPAN}-01`, baggage: 'tenant=acme' });
      const wrapped = traceProcessor(async (_job: unknown) => 'ok', options);
      await wrapped({
        id: '1',
        name: 'n',
        queueName: 'q',
        attemptsMade: 0,
        opts: { telemetry: { metadata } },
      });
    };
    const processed = await shapesOf(processor(processorOptions));
    expect(processed.map((s) => [s.name, s.parent])).toEqual([['process q', SPAN]]);
    expect(processed).toEqual(await shapesOf(processor({})));
  });
});

describe('time in queue', () => {
  it.each([
    ['a fresh job', [], true],
    ['a fresh sandboxed job (stacktrace as JSON)', '[]', true],
    ['a failed job retried with its counters reset', ['Error: first'], false],
    ['the same, sandboxed', '["Error: first"]', false],
  ] as const)('%s: recorded %s', async (_what, stacktrace, recorded) => {
    const wrapped = traceProcessor(async (_job: unknown) => 'ok');
    const timestamp = Date.now() - 50;
    await wrapped({ id: '1', queueName: 'q', attemptsMade: 0, attemptsStarted: 1, timestamp, stacktrace });
    const [span] = tracing.current.spans();
    expect(span?.attributes['bullmq.job.time_in_queue'] !== undefined).toBe(recorded);
  });
});

describe('attempts BullMQ gives up on (worker events)', () => {
  /** A stand-in for a BullMQ Worker: the processor is called as its method, as BullMQ does. */
  function fakeWorker() {
    const emitter = new EventEmitter();
    return Object.assign(emitter, { isRunning: () => true });
  }

  it.each([
    ['lockRenewalFailed', (w: EventEmitter) => w.emit('lockRenewalFailed', ['7']), 'lock_lost'],
    ['stalled', (w: EventEmitter) => w.emit('stalled', '7', 'active'), 'stalled'],
    ['closed', (w: EventEmitter) => w.emit('closed'), 'worker_closed'],
  ] as const)('%s ends the open attempt with status ERROR and error.type %s', async (_event, emit, type) => {
    const worker = fakeWorker();
    const never = new Promise<never>(() => undefined);
    const wrapped = traceProcessor(async (_job: unknown) => never);
    const other = { id: '8', queueName: 'q', attemptsMade: 0 };
    void wrapped.call(worker, { id: '7', queueName: 'q', attemptsMade: 0 });
    void wrapped.call(worker, other);
    emit(worker);
    const ended = tracing.current.spans();
    expect(ended).toHaveLength(type === 'worker_closed' ? 2 : 1);
    expect(ended[0]?.attributes).toMatchObject({
      'messaging.message.id': type === 'worker_closed' ? expect.any(String) : '7',
      'error.type': type,
    });
    expect(ended[0]?.status.code).toBe(2);
    if (type !== 'worker_closed') {
      // The other job's attempt is untouched; end it for the leak check.
      expect(tracing.current.openSpans()).toHaveLength(1);
      worker.emit('closed');
    }
  });

  it('the same job handed to the worker again ends its older open attempt as stalled', () => {
    const worker = fakeWorker();
    const wrapped = traceProcessor(async (_job: unknown) => new Promise<never>(() => undefined));
    void wrapped.call(worker, { id: '7', queueName: 'q', attemptsMade: 0 });
    void wrapped.call(worker, { id: '7', queueName: 'q', attemptsMade: 0 });
    const [first] = tracing.current.spans();
    expect(first?.attributes['error.type']).toBe('stalled');
    expect(tracing.current.openSpans()).toHaveLength(1);
    worker.emit('closed');
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('an attempt whose processor moved its job itself is not given up on; only closed ends it', () => {
    const worker = fakeWorker();
    const wrapped = traceProcessor(async (_job: unknown) => new Promise<never>(() => undefined));
    // As BullMQ's moveToCompleted / moveToFailed count the attempt and moveToDelayed sets the delay.
    const completed = { id: '7', queueName: 'q', attemptsMade: 0, delay: 0 };
    const delayed = { id: '8', queueName: 'q', attemptsMade: 0, delay: 0 };
    void wrapped.call(worker, completed);
    void wrapped.call(worker, delayed);
    completed.attemptsMade = 1;
    delayed.delay = 5000;
    worker.emit('lockRenewalFailed', ['7', '8']);
    worker.emit('stalled', '7', 'active');
    void wrapped.call(worker, { id: '8', queueName: 'q', attemptsMade: 0, delay: 0 });
    expect(tracing.current.spans()).toHaveLength(0);
    worker.emit('closed');
    expect(tracing.current.spans().map((s) => s.attributes['error.type'])).toEqual([
      'worker_closed',
      'worker_closed',
      'worker_closed',
    ]);
  });

  it('a job whose marks cannot be read is taken as not moved by its processor', () => {
    const worker = fakeWorker();
    const wrapped = traceProcessor(async (_job: unknown) => new Promise<never>(() => undefined));
    const job = { id: '7', queueName: 'q', attemptsMade: 0 };
    void wrapped.call(worker, job);
    Object.defineProperty(job, 'attemptsMade', {
      get() {
        throw new Error('hostile');
      },
    });
    worker.emit('lockRenewalFailed', ['7']);
    expect(tracing.current.spans().map((s) => s.attributes['error.type'])).toEqual(['lock_lost']);
  });
});

describe("BullMQ's verdict once the processor returned (worker events)", () => {
  /** A stand-in for a BullMQ Worker with this lock duration: the processor is called as its method. */
  function fakeWorker(lockDuration?: number) {
    const emitter = new EventEmitter();
    return Object.assign(emitter, { isRunning: () => true, opts: { lockDuration } });
  }
  const statuses = () =>
    tracing.current
      .spans()
      .map((s) => [s.status.code, s.attributes['error.type'], s.attributes['hoptrace.attempt.final']]);

  it('the span waits for completed or failed for that very job object, and ends once', async () => {
    const worker = fakeWorker();
    const wrapped = traceProcessor(async (job: { fail?: boolean; id?: string }) => {
      if (job.fail) throw new Error('boom');
      return 'ok';
    });
    const done = { id: '7', queueName: 'q', attemptsMade: 0 };
    const failed = { id: '8', queueName: 'q', attemptsMade: 0, opts: { attempts: 3 }, fail: true };
    await wrapped.call(worker, done);
    await wrapped.call(worker, failed).catch(() => undefined);
    expect(tracing.current.spans()).toHaveLength(0);
    // Another object of the same job (a stall check's) is not this attempt's verdict.
    worker.emit('completed', { ...done }, 'ok', 'active');
    worker.emit('failed', { ...failed }, new Error('x'), 'active');
    expect(tracing.current.spans()).toHaveLength(0);
    worker.emit('completed', done, 'ok', 'active');
    // BullMQ finished the job (a backoff strategy said -1): final although attempts remain.
    Object.assign(failed, { finishedOn: Date.now() });
    worker.emit('failed', failed, new Error('boom'), 'active');
    worker.emit('completed', done, 'ok', 'active');
    worker.emit('closed');
    expect(statuses()).toEqual([
      [0, undefined, undefined],
      [2, 'Error', true],
    ]);
  });

  it('BullMQ saying nothing ends the span as lock_lost after the worker lockDuration', async () => {
    vi.useFakeTimers();
    try {
      const worker = fakeWorker(500);
      const wrapped = traceProcessor(async (_job: unknown) => 'ok');
      await wrapped.call(worker, { id: '7', queueName: 'q', attemptsMade: 0 });
      vi.advanceTimersByTime(499);
      expect(tracing.current.spans()).toHaveLength(0);
      vi.advanceTimersByTime(1);
      expect(statuses()).toEqual([[2, 'lock_lost', undefined]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a control-flow signal, a value BullMQ cannot read, a job moved by its processor, or no worker: ended at once', async () => {
    const worker = fakeWorker();
    const delayed = Object.assign(new Error('later'), { name: 'DelayedError' });
    await traceProcessor(async (_job: unknown) => {
      throw delayed;
    })
      .call(worker, { id: '1', queueName: 'q', attemptsMade: 0 })
      .catch(() => undefined);
    await traceProcessor(async (_job: unknown) => {
      throw null;
    })
      .call(worker, { id: '2', queueName: 'q', attemptsMade: 0 })
      .catch(() => undefined);
    const moved = { id: '3', queueName: 'q', attemptsMade: 0 };
    await traceProcessor(async (_job: unknown) => {
      moved.attemptsMade = 1;
      return 'ok';
    }).call(worker, moved);
    await traceProcessor(async (_job: unknown) => 'ok')({ id: '4', queueName: 'q', attemptsMade: 0 });
    expect(tracing.current.spans()).toHaveLength(4);
  });

  it("BullMQ's error naming a waiting job: lock gone ends it lock_lost, job gone as its processor left it", async () => {
    const worker = fakeWorker();
    const wrapped = traceProcessor(async (_job: unknown) => 'ok');
    const running = traceProcessor(async (_job: unknown) => new Promise<never>(() => undefined));
    await wrapped.call(worker, { id: 'a. b', queueName: 'q', attemptsMade: 0 });
    await wrapped.call(worker, { id: '8', queueName: 'q', attemptsMade: 0 });
    void running.call(worker, { id: '9', queueName: 'q', attemptsMade: 0 });
    worker.emit(errorMonitor, new Error('Missing lock for job a. b. moveToFinished'));
    worker.emit(errorMonitor, new Error('Missing key for job 8. moveToFinished'));
    // Still processing: not an attempt BullMQ failed to record.
    worker.emit(errorMonitor, new Error('Lock mismatch for job 9. Cmd moveToFinished from active'));
    expect(statuses()).toEqual([
      [2, 'lock_lost', undefined],
      [0, undefined, undefined],
    ]);
    worker.emit('closed');
  });
});

describe('parse once (11.4)', () => {
  it('a job carrying the caller context is parsed once per add', async () => {
    const { queue } = fakeQueue();
    const traced = traceQueue(queue);
    const metadata = JSON.stringify({ traceparent: `00-${TRACE}-${SPAN}-01` });
    const extract = vi.spyOn(propagation, 'extract');
    const parse = vi.spyOn(JSON, 'parse');
    await traced.add('a', {}, { telemetry: { metadata } });
    expect(extract).toHaveBeenCalledTimes(1);
    expect(parse).toHaveBeenCalledTimes(1);
    extract.mockRestore();
    parse.mockRestore();
  });
});

describe("addBulk with the callers' own contexts (as Kafka)", () => {
  it('links to each; a CLIENT span when every job carries one, PRODUCER otherwise', async () => {
    const metadata = JSON.stringify({ traceparent: `00-${TRACE}-${SPAN}-01` });
    const own = { name: 'a', data: {}, opts: { telemetry: { metadata } } };
    await traceQueue(fakeQueue().queue).addBulk([own, own]);
    await traceQueue(fakeQueue().queue).addBulk([own, { name: 'b', data: {} }]);
    const [all, some] = tracing.current.spans();
    expect(all?.kind).toBe(SpanKind.CLIENT);
    expect(all?.links.map((l) => l.context.spanId)).toEqual([SPAN, SPAN]);
    expect(some?.kind).toBe(SpanKind.PRODUCER);
    expect(some?.links.map((l) => l.context.spanId)).toEqual([SPAN]);
  });
});

describe('scheduled runs', () => {
  it('link only to the scheduling context, never to the virtual run root, even with parentLink', async () => {
    const metadata = JSON.stringify({ traceparent: `00-${TRACE}-${SPAN}-01` });
    const wrapped = traceProcessor(async (_job: unknown) => 'ok', { parentLink: true });
    const job = {
      id: 'repeat:tick:1',
      queueName: 'q',
      attemptsMade: 0,
      repeatJobKey: 'tick',
      opts: { telemetry: { metadata } },
    };
    await wrapped(job);
    await wrapped({ ...job, attemptsMade: 1 });
    const [first, retry] = tracing.current.spans();
    expect(first?.links.map((l) => l.context.spanId)).toEqual([SPAN]);
    expect(first?.spanContext().traceId).not.toBe(TRACE);
    expect(retry?.spanContext().traceId).toBe(first?.spanContext().traceId);
    expect(retry?.parentSpanContext?.spanId).toBe(first?.parentSpanContext?.spanId);
  });
});
