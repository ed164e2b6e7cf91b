import { DEFAULT_METRIC_ATTRIBUTE_SETS } from '@hoptrace/core/adapter';
import { TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { context, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import packageJson from '../package.json' with { type: 'json' };
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';

const tracing = useTestTracing();

afterEach(() => vi.restoreAllMocks());

describe('bounded by traffic names (12.9)', () => {
  it('queue names from jobs never grow metric series (or memory) past the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const wrapped = traceProcessor(async (_job: unknown) => 'ok', { meterProvider });
    for (let i = 0; i < DEFAULT_METRIC_ATTRIBUTE_SETS * 3; i++) {
      await wrapped({ id: String(i), name: 'n', queueName: `q-${i}`, attemptsMade: 1 });
    }
    const { resourceMetrics } = await reader.collect();
    const consumed = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === 'messaging.client.consumed.messages');
    const points = consumed?.dataPoints ?? [];
    expect(points.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    // What overflowed is still counted, without a destination.
    const total = points.reduce((n, p) => n + Number(p.value), 0);
    expect(total).toBe(DEFAULT_METRIC_ATTRIBUTE_SETS * 3);
    expect(points.some((p) => p.attributes['messaging.destination.name'] === undefined)).toBe(true);
    // Span names stay right past the template cap.
    expect(tracing.current.spans().at(-1)?.name).toBe(`process q-${DEFAULT_METRIC_ATTRIBUTE_SETS * 3 - 1}`);
    await meterProvider.shutdown();
  });
});

describe('nothing built for spans that do not record, no metric work without a MeterProvider (16.2-16.3)', () => {
  function countingJob(reads: string[]) {
    const job: Record<string, unknown> = { id: '1', queueName: 'q', attemptsMade: 0, opts: {} };
    for (const key of ['name', 'parentKey', 'timestamp', 'delay']) {
      Object.defineProperty(job, key, {
        get() {
          reads.push(key);
          return key === 'timestamp' ? 1 : undefined;
        },
      });
    }
    return job;
  }

  it('a non-recording span: no attributes read or built, no hook, no clock', async () => {
    const tracerProvider = new BasicTracerProvider({ sampler: new AlwaysOffSampler() });
    const onProcess = vi.fn();
    const wrapped = traceProcessor(async (_job: unknown) => trace.getActiveSpan()?.isRecording(), {
      tracerProvider,
      onProcess,
    });
    const reads: string[] = [];
    const now = vi.spyOn(performance, 'now');
    const date = vi.spyOn(Date, 'now');
    expect(await wrapped(countingJob(reads))).toBe(false);
    expect(reads).toEqual([]);
    expect(onProcess).not.toHaveBeenCalled();
    expect(now).not.toHaveBeenCalled();
    expect(date).not.toHaveBeenCalled();
  });

  it('an unsampled parent under ParentBased: once learned, no span at all; the handler runs in the remote context', async () => {
    const tracerProvider = new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    });
    const onProcess = vi.fn();
    const wrapped = traceProcessor(
      async (_job: unknown) => ({
        active: trace.getActiveSpan()?.isRecording(),
        spanContext: trace.getSpanContext(context.active()),
      }),
      { tracerProvider, onProcess },
    );
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const metadata = JSON.stringify({ traceparent: `00-${traceId}-00f067aa0ba902b7-00` });
    const job = { id: '1', queueName: 'q', attemptsMade: 0, opts: { telemetry: { metadata } } };
    const probe = vi.spyOn(tracerProvider.getTracer('@hoptrace/bullmq', packageJson.version), 'startSpan');
    await wrapped(job); // the first one teaches the wrapper that the tracer does not record such children
    expect(probe).toHaveBeenCalledTimes(1);
    probe.mockClear();
    const seen = await wrapped(job);
    expect(seen.spanContext?.traceId).toBe(traceId);
    expect(seen.spanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(seen.active).toBe(false);
    expect(probe).not.toHaveBeenCalled();
    expect(onProcess).not.toHaveBeenCalled();
  });

  it('unsampled and no MeterProvider: the processor runs straight (its own promise and this come back unchanged)', async () => {
    const tracerProvider = new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    });
    const rejection = Promise.reject(new Error('as is'));
    rejection.catch(() => undefined);
    const self = { worker: true };
    let seenThis: unknown;
    const wrapped = traceProcessor(
      function (this: unknown, _job: unknown) {
        seenThis = this;
        return rejection;
      },
      { tracerProvider, unsampled: 'skip' },
    );
    const metadata = JSON.stringify({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
    });
    const result = wrapped.call(self, {
      id: '1',
      queueName: 'q',
      attemptsMade: 0,
      opts: { telemetry: { metadata } },
    });
    expect(result).toBe(rejection);
    expect(seenThis).toBe(self);
  });
});

describe('host behaviour', () => {
  it('keeps the processor arity, so BullMQ still hands a (job, token, signal) processor its AbortSignal', () => {
    expect(traceProcessor(async (_job: unknown, _token?: string, _signal?: AbortSignal) => 1).length).toBe(3);
    expect(traceProcessor(async (_job: unknown) => 1).length).toBe(1);
  });

  it('processTimeoutMs must be an integer >= 1', () => {
    expect(() => traceProcessor(async () => 1, { processTimeoutMs: 0 })).toThrow(/`processTimeoutMs`.*0/);
    expect(() => traceProcessor(async () => 1, { processTimeoutMs: '5' as unknown as number })).toThrow(
      TypeError,
    );
  });

  it('maxStartedAttempts must be an integer >= 0 (0 is no limit, as for the worker)', () => {
    expect(() => traceProcessor(async () => 1, { maxStartedAttempts: -1 })).toThrow(
      /`maxStartedAttempts`.*-1/,
    );
    expect(() => traceProcessor(async () => 1, { maxStartedAttempts: 1.5 })).toThrow(TypeError);
    expect(() => traceProcessor(async () => 1, { maxStartedAttempts: '3' as unknown as number })).toThrow(
      TypeError,
    );
    expect(() => traceProcessor(async () => 1, { maxStartedAttempts: 0 })).not.toThrow();
  });

  it('a throwing classifier never changes the thrown value; the span still fails', async () => {
    const boom = new RangeError('x');
    const wrapped = traceProcessor(
      async (_job: unknown) => {
        throw boom;
      },
      {
        classifyError: () => {
          throw new Error('classifier bug');
        },
      },
    );
    await expect(wrapped({ id: '1', queueName: 'q', attemptsMade: 0, opts: { attempts: 3 } })).rejects.toBe(
      boom,
    );
    const [span] = tracing.current.spans();
    expect(span?.attributes).toMatchObject({
      'error.type': 'RangeError',
      'hoptrace.attempt.final': false,
      'hoptrace.error.retryable': true,
    });
  });

  it("the classifier names error.type and retryable; its retryable wins over BullMQ's", async () => {
    const wrapped = traceProcessor(
      async (_job: unknown) => {
        throw new Error('stock');
      },
      { classifyError: () => ({ type: 'STOCK_UNAVAILABLE', retryable: false }) },
    );
    await expect(
      wrapped({ id: '1', queueName: 'q', attemptsMade: 0, opts: { attempts: 3 } }),
    ).rejects.toThrow('stock');
    const [span] = tracing.current.spans();
    expect(span?.attributes).toMatchObject({
      'error.type': 'STOCK_UNAVAILABLE',
      'hoptrace.error.retryable': false,
      'hoptrace.attempt.final': false,
    });
  });
});

describe('flow producer (12.15)', () => {
  it('FlowProducer.add throwing synchronously: every create and send span ends, the same error reaches the caller', () => {
    const boom = new TypeError('sync');
    const flow = traceFlowProducer(
      {
        add(..._args: unknown[]): Promise<unknown> {
          throw boom;
        },
      },
      { createSpans: true },
    );
    expect(() => flow.add({ name: 'p', queueName: 'a', children: [{ name: 'c', queueName: 'b' }] })).toThrow(
      boom,
    );
    const spans = tracing.current.spans();
    expect(spans.map((s) => s.name).sort()).toEqual(['create a', 'create b', 'send a']);
    for (const s of spans) expect(s.status.code).toBe(2);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it("a node whose children getter throws: spans end, the error is the getter's", () => {
    const boom = new Error('getter');
    const flow = traceFlowProducer({ async add(..._args: unknown[]) {} }, { createSpans: true });
    const node = Object.defineProperty({ name: 'p', queueName: 'a' }, 'children', {
      get() {
        throw boom;
      },
      enumerable: true,
    });
    expect(() => flow.add(node)).toThrow(boom);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});

describe('unsampled producer fast path (16.2)', () => {
  it("no span and no MeterProvider: add is the queue's own call (same promise), the job carries the unsampled context", async () => {
    const tracerProvider = new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    });
    const returned = Promise.resolve({ id: '1' });
    const calls: unknown[][] = [];
    const queue = traceQueue(
      {
        name: 'q',
        add(...args: unknown[]) {
          calls.push(args);
          return returned;
        },
      },
      { tracerProvider, unsampled: 'skip' },
    );
    const parent = trace.setSpanContext(context.active(), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 0,
    });
    const result = context.with(parent, () => queue.add('a', {}));
    expect(result).toBe(returned);
    const opts = calls[0]?.[2] as { telemetry?: { metadata?: string } };
    expect(JSON.parse(opts.telemetry?.metadata ?? '{}')).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
    });
  });

  it("AlwaysOff, no MeterProvider: add is the queue's own call and the job carries the non-recording span's context", async () => {
    const tracerProvider = new BasicTracerProvider({ sampler: new AlwaysOffSampler() });
    const returned = Promise.resolve({ id: '1' });
    const calls: unknown[][] = [];
    let activeInAdd: string | undefined;
    const queue = traceQueue(
      {
        name: 'q',
        add(...args: unknown[]) {
          activeInAdd = trace.getSpanContext(context.active())?.traceId;
          calls.push(args);
          return returned;
        },
      },
      { tracerProvider },
    );
    const result = queue.add('a', {});
    expect(result).toBe(returned);
    const opts = calls[0]?.[2] as { telemetry?: { metadata?: string } };
    const carried = JSON.parse(opts.telemetry?.metadata ?? '{}') as { traceparent?: string };
    expect(carried.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    // BullMQ's own work (and any Redis client span) runs under that unsampled span, not as a new root.
    expect(activeInAdd).toBe(carried.traceparent?.split('-')[1]);
  });

  it.each(['jobId', 'attempts'])(
    'job options whose %s getter throws after the span started: nothing thrown by hoptrace, the span ends',
    async (field) => {
      const calls: unknown[][] = [];
      const queue = traceQueue({
        name: 'q',
        add(...args: unknown[]) {
          calls.push(args);
          return Promise.resolve({ id: '1' });
        },
        addBulk(jobs: unknown[]) {
          calls.push([jobs]);
          return Promise.resolve([]);
        },
      });
      const hostile = () =>
        Object.defineProperty({}, field, {
          enumerable: false,
          get() {
            throw new Error(`${field} getter`);
          },
        });
      await queue.add('a', {}, hostile());
      await (queue as unknown as { addBulk(jobs: unknown[]): Promise<unknown> }).addBulk([
        { name: 'b', data: {}, opts: hostile() },
      ]);
      expect(calls).toHaveLength(2);
      expect(tracing.current.openSpans()).toHaveLength(0);
      // add's and addBulk's send spans both ended, OK: the hostile options only cost their attributes.
      const sends = tracing.current.spans().filter((s) => s.name === 'send q');
      expect(sends).toHaveLength(2);
      expect(sends.map((s) => s.status.code)).toEqual([0, 0]); // UNSET
    },
  );
});
