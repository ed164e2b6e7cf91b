import {
  createInstrumentation,
  type InstrumentationScope,
  MetricAttributeCache,
  Operation,
  operationMetric,
} from '@hoptrace/core/adapter';
import { collectMetrics, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { type Attributes, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';

const tracing = useTestTracing();
const SCOPE: InstrumentationScope = { name: 'test', version: '0', system: 'kafka' };

function spanAndOperation(options = {}) {
  const instr = createInstrumentation(SCOPE, options);
  const span = trace.getTracer('test').startSpan('op');
  return { instr, span, operation: new Operation(instr, span) };
}
const finished = () => tracing.current.spans().filter((s) => s.name === 'op');

/** Values a handler may throw, all of which must reach the host unchanged. */
function hostileValues(): Array<[string, unknown]> {
  const nullProto = Object.create(null) as Record<string, unknown>;
  nullProto.code = 'E_NULL_PROTO';
  const throwingGetters = new Error('x');
  Object.defineProperty(throwingGetters, 'message', {
    get() {
      throw new Error('message getter');
    },
  });
  Object.defineProperty(throwingGetters, 'name', {
    get() {
      throw new Error('name getter');
    },
  });
  const throwingToString = {
    toString() {
      throw new Error('toString');
    },
  };
  const proxy = new Proxy(
    {},
    {
      get() {
        throw new Error('trap');
      },
    },
  );
  return [
    ['an Error', new Error('boom')],
    ['a null-prototype object', nullProto],
    ['an Error whose message and name getters throw', throwingGetters],
    ['an object whose toString throws', throwingToString],
    ['a Proxy whose every read throws', proxy],
    ['a string', 'just a string'],
    ['a number', 42],
    ['a symbol', Symbol('s')],
    ['a bigint', 10n],
    ['null', null],
    ['undefined', undefined],
    ['false', false],
  ];
}

describe('Operation.run', () => {
  it('ends once on sync success and passes the value through', () => {
    const { operation } = spanAndOperation();
    expect(operation.run(() => 7)).toBe(7);
    expect(operation.end()).toBe(false);
    expect(finished()).toHaveLength(1);
    expect(finished()[0]?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it.each([
    ...hostileValues(),
    ['an Error with an empty name and no message', Object.assign(new Error(), { name: '' })],
    [
      'an anonymous function',
      (
        () => () =>
          undefined
      )(),
    ],
  ])('a sync throw of %s is recorded (status ERROR, exception event) and rethrown unchanged', (_, value) => {
    const { operation } = spanAndOperation();
    let caught: unknown = 'nothing';
    try {
      operation.run(() => {
        throw value;
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(value);
    expect(finished()).toHaveLength(1);
    expect(finished()[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(typeof finished()[0]?.attributes['error.type']).toBe('string');
    expect(finished()[0]?.events.map((e) => e.name)).toEqual(['exception']);
  });

  it.each(hostileValues())('a rejection with %s is recorded and the same value rejects', async (_, value) => {
    const { operation } = spanAndOperation();
    const outcome = await operation
      .run(() => Promise.reject(value))
      .then(
        () => ({ error: 'resolved' as unknown }),
        (error: unknown) => ({ error }),
      );
    expect(outcome.error).toBe(value);
    expect(finished()).toHaveLength(1);
    expect(finished()[0]?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('names the error.type from a null-prototype object code, and _OTHER for primitives', () => {
    const nullProto = Object.create(null) as Record<string, unknown>;
    nullProto.code = 'E_NULL_PROTO';
    for (const [value, type] of [
      [nullProto, 'E_NULL_PROTO'],
      ['text', '_OTHER'],
      [undefined, '_OTHER'],
    ] as const) {
      tracing.current.reset();
      const { operation } = spanAndOperation();
      try {
        operation.run(() => {
          throw value;
        });
      } catch {
        // expected
      }
      expect(finished()[0]?.attributes['error.type']).toBe(type);
    }
  });

  it('settles a non-Promise thenable', async () => {
    const { operation } = spanAndOperation();
    const thenable = {
      then(resolve: (v: string) => void) {
        resolve('done');
      },
    };
    await expect(operation.run(() => thenable)).resolves.toBe('done');
    expect(finished()).toHaveLength(1);
  });

  it('with endOnOutcome false notes the failure and leaves the end to a later event', async () => {
    const { operation } = spanAndOperation();
    await expect(operation.run(() => Promise.reject(new Error('x')), undefined, false)).rejects.toThrow('x');
    expect(finished()).toHaveLength(0);
    operation.noteFailureType('rejected', 'later');
    operation.end();
    expect(finished()[0]?.attributes['error.type']).toBe('Error'); // the first failure noted wins
  });

  it('observes the value with onValue, and a throwing observer never reaches the caller', () => {
    const { operation } = spanAndOperation();
    expect(
      operation.run(
        () => 'v',
        () => {
          throw new Error('observer');
        },
      ),
    ).toBe('v');
    expect(finished()).toHaveLength(1);
  });

  it('callback: settles on the error argument and calls the original with the same this and arguments', () => {
    const { operation } = spanAndOperation();
    let seen: unknown[] = [];
    let self: unknown;
    const wrapped = operation.callback(function (this: unknown, ...args: unknown[]) {
      self = this;
      seen = args;
      return 'cb';
    });
    const receiver = {};
    expect(wrapped.call(receiver, new Error('nacked'), 'x')).toBe('cb');
    expect(self).toBe(receiver);
    expect(seen[1]).toBe('x');
    expect(finished()[0]?.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('classification', () => {
  it('uses the classifier for error.type, retryable and attributes (capped)', () => {
    const { operation } = spanAndOperation({
      classifyError: () => ({
        type: 'STOCK_UNAVAILABLE',
        retryable: false,
        attributes: { 'app.reason': 'r'.repeat(1000), nested: { no: 1 } },
      }),
    });
    operation.fail(new Error('no stock'));
    const span = finished()[0];
    expect(span?.attributes['error.type']).toBe('STOCK_UNAVAILABLE');
    expect(span?.attributes['hoptrace.error.retryable']).toBe(false);
    expect(span?.attributes['app.reason']).toHaveLength(256);
    expect(span?.attributes.nested).toBeUndefined();
  });

  it("classifier attributes cannot replace error.type or hoptrace.error.retryable (the span's would then differ from the metric's, past the 128 cap)", () => {
    const { operation } = spanAndOperation({
      classifyError: () => ({
        type: 'STOCK_UNAVAILABLE',
        attributes: {
          'error.type': 'x'.repeat(300),
          'hoptrace.error.retryable': true,
          'app.reason': 'r',
        },
      }),
    });
    operation.fail(new Error('no stock'));
    const span = finished()[0];
    expect(span?.attributes['error.type']).toBe('STOCK_UNAVAILABLE');
    expect(span?.attributes['hoptrace.error.retryable']).toBeUndefined();
    expect(span?.attributes['app.reason']).toBe('r');
    expect(operation.failure?.attributes).toEqual({ 'app.reason': 'r' });
  });

  it('a classifier that throws changes nothing for the host and falls back to the default type', () => {
    const { operation } = spanAndOperation({
      classifyError: () => {
        throw new Error('classifier bug');
      },
    });
    const error = new RangeError('bad');
    expect(() =>
      operation.run(() => {
        throw error;
      }),
    ).toThrow(error);
    expect(finished()[0]?.attributes['error.type']).toBe('RangeError');
  });

  it('an adapter control-flow signal leaves the status unset and adds an event', () => {
    const instr = createInstrumentation({
      ...SCOPE,
      controlFlow: (e) => ((e as Error).name === 'DelayedError' ? 'DelayedError' : undefined),
    });
    const span = trace.getTracer('test').startSpan('op');
    const operation = new Operation(instr, span);
    const signal = Object.assign(new Error('bullmq:movedToDelayed'), { name: 'DelayedError' });
    expect(() =>
      operation.run(() => {
        throw signal;
      }),
    ).toThrow(signal);
    const done = finished()[0];
    expect(done?.status.code).toBe(SpanStatusCode.UNSET);
    expect(done?.attributes['error.type']).toBeUndefined();
    expect(done?.events.map((e) => [e.name, e.attributes])).toEqual([
      ['hoptrace.control_flow', { 'hoptrace.control_flow.reason': 'DelayedError' }],
    ]);
  });
});

describe('metrics', () => {
  it('records the duration with error.type on failure, and does no metric work without a MeterProvider', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const instr = createInstrumentation(SCOPE, { meterProvider });
    const cache = new MetricAttributeCache('kafka');
    const metric = () => ({
      operation: 'send' as const,
      cache,
      attributes: cache.get('send', 'orders'),
      count: 2,
    });
    new Operation(instr, undefined, metric()).end();
    new Operation(instr, undefined, metric()).fail(Object.assign(new Error('x'), { code: 'ETIMEDOUT' }));
    await reader.forceFlush();
    const points = exporter
      .getMetrics()
      .flatMap((m) => m.scopeMetrics.flatMap((s) => s.metrics))
      .filter((m) => m.descriptor.name === 'messaging.client.sent.messages')
      .flatMap((m) => m.dataPoints as Array<{ attributes: Record<string, unknown>; value: unknown }>);
    const byType = new Map(points.map((p) => [p.attributes['error.type'], p.value]));
    expect(byType).toEqual(
      new Map<unknown, unknown>([
        [undefined, 2],
        ['ETIMEDOUT', 2],
      ]),
    );
    await meterProvider.shutdown();
    expect(createInstrumentation(SCOPE).metrics).toBeUndefined();
  });

  it('puts messaging.operation.type on messaging.client.operation.duration (send, receive, settle), as the conventions require', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const instr = createInstrumentation(SCOPE, { meterProvider });
    const cache = new MetricAttributeCache('kafka');
    for (const [type, name] of [
      ['send', 'send'],
      ['receive', 'receive'],
      ['settle', 'commit_transaction'],
      ['process', 'process'],
    ] as const) {
      new Operation(instr, undefined, operationMetric(true, cache, type, name, 'orders', 1)).end();
    }
    const metrics = await collectMetrics(reader);
    const durations = metrics.get('messaging.client.operation.duration') ?? [];
    expect(
      durations.map((p) => [
        p.attributes['messaging.operation.name'],
        p.attributes['messaging.operation.type'],
      ]),
    ).toEqual([
      ['send', 'send'],
      ['receive', 'receive'],
      ['commit_transaction', 'settle'],
    ]);
    expect(
      metrics.get('messaging.process.duration')?.map((p) => p.attributes['messaging.operation.name']),
    ).toEqual(['process']);
    await meterProvider.shutdown();
  });

  it('bounds metric attribute sets: new destinations collapse, new error types become _OTHER', () => {
    const cache = new MetricAttributeCache('kafka', 3);
    const a = cache.get('process', 'a');
    cache.get('process', 'b');
    cache.get('process', 'c');
    expect(cache.get('process', 'a')).toBe(a);
    const overflow = cache.get('process', 'd');
    expect(overflow['messaging.destination.name']).toBeUndefined();
    for (let i = 0; i < 100; i++) cache.get('process', `dest-${i}`);
    const other = cache.withError(a, 'E1');
    expect(other['error.type']).toBe('_OTHER');
    expect(other['messaging.destination.name']).toBe('a');
    // Built once per base set: further failures past the bound reuse it, whatever their type.
    expect(cache.withError(a, 'E2')).toBe(other);
    expect(cache.withError(overflow, 'E1')).not.toBe(other);
    expect(cache.withError(overflow, 'E3')).toBe(cache.withError(overflow, 'E1'));
    expect(cache.size).toBeLessThanOrEqual(4);
  });

  it('server.address / server.port: part of the set and its key, read from the object the wrapper keeps them in', () => {
    const cache = new MetricAttributeCache('kafka', 3);
    const server: { serverAddress: string | undefined; serverPort: number | undefined } = {
      serverAddress: undefined,
      serverPort: undefined,
    };
    const unknown = cache.get('send', 'orders', undefined, 'send', server);
    expect(unknown['server.address']).toBeUndefined();
    server.serverAddress = 'broker-1';
    server.serverPort = 9092;
    const known = cache.get('send', 'orders', undefined, 'send', server);
    expect(known).toMatchObject({ 'server.address': 'broker-1', 'server.port': 9092 });
    expect(cache.get('send', 'orders', undefined, 'send', server)).toBe(known);
    const other = cache.get('send', 'orders', undefined, 'send', {
      serverAddress: 'broker-2',
      serverPort: 9092,
    });
    expect(other['server.address']).toBe('broker-2');
    // Past the cap a new destination collapses, keeping its server.
    const overflow = cache.get('send', 'payments', undefined, 'send', server);
    expect(overflow['messaging.destination.name']).toBeUndefined();
    expect(overflow['server.address']).toBe('broker-1');
  });

  it('bounds the sets of ever new servers too (a broker reached at a new address after each restart)', () => {
    // amqplib's server.address is the socket's peer address: a broker whose pods come back at new
    // addresses hands a long-lived process new servers for as long as it runs.
    const cache = new MetricAttributeCache('rabbitmq', 3);
    let last: Attributes = {};
    for (let i = 0; i < 200; i++) {
      const server = { serverAddress: `10.0.${i >> 8}.${i & 255}`, serverPort: 5672 };
      for (const [operation, type] of [
        ['send', 'send'],
        ['ack', 'settle'],
        ['process', 'process'],
      ] as const) {
        cache.get(operation, 'orders', undefined, type, server);
        last = cache.get(operation, undefined, undefined, type, server);
      }
    }
    // Past twice the cap, a new server's sets are recorded without server.*: only the sets of
    // operations (from code) remain, so the cache stays bounded.
    expect(cache.size).toBeLessThanOrEqual(2 * 3 + 3);
    expect(last['server.address']).toBeUndefined();
    expect(last['messaging.operation.name']).toBe('process');
  });

  it('legacyAttributes: its view adds the older names, keyed apart from the plain sets, under one shared bound', () => {
    const plain = new MetricAttributeCache('kafka', 4);
    const legacy = plain.withLegacy(true);
    expect(legacy.withLegacy(false)).toBe(plain);
    expect(plain.withLegacy(true)).toBe(legacy);
    const a = plain.get('send', 'orders', undefined, 'send');
    const b = legacy.get('send', 'orders', undefined, 'send');
    expect(a).not.toBe(b);
    expect(a['messaging.system']).toBeUndefined();
    expect(b).toMatchObject({
      'messaging.system.name': 'kafka',
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.operation': 'publish',
    });
    expect(legacy.get('process', 'orders', 'g1')).toMatchObject({ 'messaging.kafka.consumer.group': 'g1' });
    expect(legacy.withError(b, 'E')).toMatchObject({ 'messaging.system': 'kafka', 'error.type': 'E' });
    expect(plain.size).toBe(4);
    expect(legacy.get('send', 'payments')['messaging.destination.name']).toBeUndefined();
    expect(plain.get('send', 'payments')['messaging.destination.name']).toBeUndefined();
  });

  it('wrappers on one MeterProvider with and without legacyAttributes share one bound', () => {
    const meterProvider = new MeterProvider();
    const plain = createInstrumentation(SCOPE, { meterProvider });
    const legacy = createInstrumentation(SCOPE, { meterProvider, legacyAttributes: true });
    expect(legacy.metricAttributes).toBe(plain.metricAttributes.withLegacy(true));
    expect(legacy.metricAttributes.get('send', 'x')['messaging.system']).toBe('kafka');
    expect(plain.metricAttributes.get('send', 'x')['messaging.system']).toBeUndefined();
  });
});

describe('expireAfter', () => {
  it('ends a still-open operation once with status ERROR and the given error.type; an earlier end wins', async () => {
    const late = spanAndOperation();
    late.operation.expireAfter(5, 'settle_timeout', 'not settled');
    const early = spanAndOperation();
    early.operation.expireAfter(5, 'settle_timeout', 'not settled');
    early.operation.end();
    await new Promise((r) => setTimeout(r, 30));
    expect(late.operation.ended).toBe(true);
    const spans = finished();
    expect(spans).toHaveLength(2);
    const [ended, expired] = spans;
    expect(ended?.status.code).toBe(SpanStatusCode.UNSET);
    expect(expired?.status.code).toBe(SpanStatusCode.ERROR);
    expect(expired?.attributes['error.type']).toBe('settle_timeout');
    expect(expired?.spanContext().spanId).toBe(late.span.spanContext().spanId);
  });
});
