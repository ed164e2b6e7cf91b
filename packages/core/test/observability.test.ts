import { Writable } from 'node:stream';
import {
  type ConsumerTracingOptions,
  createLogFields,
  extractContext,
  type LogFieldsOptions,
  logFields,
} from '@hoptrace/core';
import {
  CONSUMER_TRACING_OPTION_KEYS,
  createInstrumentation,
  MessagingMetrics,
} from '@hoptrace/core/adapter';
import { allUndefined, useTestTracing } from '@hoptrace/test-kit';
import { context, ROOT_CONTEXT, type Span, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LOG_FIELDS_OPTION_KEYS } from '../src/log-fields.ts';

const tracing = useTestTracing();
const SCOPE = { name: 'test', version: '0', system: 'kafka' };

describe('logFields', () => {
  it('returns the active span ids, and an empty object outside a span', () => {
    expect(logFields()).toEqual({});
    const span = trace.getTracer('t').startSpan('op');
    const fields = logFields(trace.setSpan(ROOT_CONTEXT, span));
    span.end();
    expect(fields).toEqual({
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
      trace_flags: '01',
    });
  });

  it('ignores an invalid span context', () => {
    expect(
      logFields(extractContext({ traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` }, ROOT_CONTEXT)),
    ).toEqual({});
  });

  it('a foreign span in the context whose methods throw: no fields, and the log line is never broken', () => {
    const broken = {
      spanContext: () => {
        throw new Error('broken span');
      },
      isRecording: () => {
        throw new Error('broken span');
      },
    } as unknown as Span;
    const ctx = trace.setSpan(ROOT_CONTEXT, broken);
    expect(logFields(ctx)).toEqual({});
    expect(context.with(ctx, createLogFields())).toEqual({});
  });

  it('puts the span ids on a real pino log line written inside the span (mixin recipe)', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ mixin: () => logFields() }, sink);
    const tracer = trace.getTracer('t');
    let ids: { traceId: string; spanId: string } | undefined;
    await tracer.startActiveSpan('handler', async (span) => {
      await new Promise((r) => setTimeout(r, 1));
      logger.info('inside');
      ids = span.spanContext();
      span.end();
    });
    logger.info('outside');
    await new Promise((r) => setImmediate(r));
    const [inside, outside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(inside).toMatchObject({
      msg: 'inside',
      trace_id: ids?.traceId,
      span_id: ids?.spanId,
      trace_flags: '01',
    });
    expect(outside?.trace_id).toBeUndefined();
    expect(tracing.current.spans()).toHaveLength(1);
  });
});

describe('MessagingMetrics', () => {
  it('records the four conventions metrics with their units and bucket advice', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const instr = createInstrumentation(SCOPE, { meterProvider });
    const attrs = {
      'messaging.system.name': 'kafka',
      'messaging.operation.name': 'send',
      'messaging.destination.name': 'orders',
    };
    instr.metrics?.record('send', performance.now() - 20, 3, attrs);
    instr.metrics?.record('process', performance.now() - 5, 1, {
      ...attrs,
      'messaging.operation.name': 'process',
    });
    await reader.forceFlush();
    const metrics = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
    const byName = Object.fromEntries(metrics.map((m) => [m.descriptor.name, m]));
    expect(Object.keys(byName).sort()).toEqual([
      'messaging.client.consumed.messages',
      'messaging.client.operation.duration',
      'messaging.client.sent.messages',
      'messaging.process.duration',
    ]);
    expect(byName['messaging.client.operation.duration']?.descriptor.unit).toBe('s');
    expect(byName['messaging.client.sent.messages']?.dataPoints[0]?.value).toBe(3);
    const hist = byName['messaging.client.operation.duration']?.dataPoints[0]?.value as {
      boundaries?: number[];
      sum: number;
    };
    expect(hist.sum).toBeGreaterThanOrEqual(0.019);
    expect(byName['messaging.client.operation.duration']?.dataPoints[0]?.attributes).toEqual(attrs);
    await meterProvider.shutdown();
  });

  it('secondsSince converts a performance.now() start to seconds', () => {
    expect(MessagingMetrics.secondsSince(performance.now() - 1500)).toBeGreaterThanOrEqual(1.5);
  });
});

describe('createInstrumentation validates options at wrap time', () => {
  it.each([
    [{ relation: 'sideways' }, "Expected `relation` to be one of 'parent', 'link', 'root', got \"sideways\""],
    [{ traceBudget: { maxHops: 0 } }, 'Expected `traceBudget.maxHops` to be an integer >= 1, got 0'],
    [{ traceBudget: {} }, 'Expected `traceBudget.maxHops` to be an integer >= 1, got NaN'],
    [{ legacyAttributes: 'yes' }, 'Expected `legacyAttributes` to be a boolean, got "yes"'],
    [{ parentLink: 0 }, 'Expected `parentLink` to be a boolean, got 0'],
    [{ baggageAttributes: [''] }, 'Expected `baggageAttributes` entries to be non-empty strings'],
    [{ baggageAttributes: 'tenant' }, 'Expected `baggageAttributes` to be a list or map of strings'],
    [{ baggageAttributes: new Array(2) }, 'Expected `baggageAttributes` entries to be non-empty strings'],
    // A Map or Set has no own entries Object.entries sees: it was taken for an empty allow-list.
    [
      { baggageAttributes: new Map([['tenant.id', 'app.tenant']]) },
      'Expected `baggageAttributes` to be a list or map of strings, got [object Map]',
    ],
    [
      { baggageAttributes: new Set(['tenant.id']) },
      'Expected `baggageAttributes` to be a list or map of strings, got [object Set]',
    ],
  ])('rejects %j', (options, message) => {
    expect(() => createInstrumentation(SCOPE, options as never)).toThrow(message);
  });

  it('rejects providers without their factory method', () => {
    expect(() => createInstrumentation(SCOPE, { tracerProvider: {} as never })).toThrow(
      'Expected `tracerProvider` to have a getTracer() method, got {}',
    );
  });

  it('defaults to the parent relation with no creation link, no budget and no baggage', () => {
    const instr = createInstrumentation(SCOPE);
    expect(instr.parentLink).toBe(false);
    expect(instr.relation).toBe('parent');
    expect(instr.traceBudget).toBeUndefined();
    expect(instr.baggage).toBeUndefined();
    expect(instr.legacyAttributes).toBe(false);
  });

  it('reads every option set to undefined as not set', () => {
    const unset = allUndefined<ConsumerTracingOptions>(CONSUMER_TRACING_OPTION_KEYS);
    const { tracer, metrics, metricAttributes, unsampled, ...instr } = createInstrumentation(SCOPE, unset);
    const defaults = createInstrumentation(SCOPE, {});
    expect(instr).toEqual({
      system: defaults.system,
      legacyAttributes: defaults.legacyAttributes,
      captureBodySize: defaults.captureBodySize,
      relation: defaults.relation,
      parentLink: defaults.parentLink,
      traceBudget: defaults.traceBudget,
      baggage: defaults.baggage,
      classifyError: defaults.classifyError,
      controlFlow: defaults.controlFlow,
    });
    expect(tracer).toBe(defaults.tracer);
    expect(metrics === undefined).toBe(defaults.metrics === undefined);
    expect(unsampled.skip()).toBe(defaults.unsampled.skip());
  });
});

describe('createLogFields: trace id, business codes and error codes on one line', () => {
  const lines = () => {
    const out: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        out.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    return { out, sink };
  };

  it('adds allow-listed baggage and, once hoptrace recorded a failure on the active span, its error.type (real pino)', async () => {
    const { out, sink } = lines();
    const log = pino(
      { mixin: createLogFields({ baggage: { 'tenant.id': 'tenant', 'business.line': 'line' } }) },
      sink,
    );
    const { Operation } = await import('@hoptrace/core/adapter');
    const instr = createInstrumentation(SCOPE, { classifyError: () => ({ type: 'STOCK_UNAVAILABLE' }) });
    const parent = extractContext(
      {
        traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
        baggage: 'tenant.id=acme,business.line=retail,secret=x',
      },
      ROOT_CONTEXT,
    );
    const span = trace.getTracer('t').startSpan('work', {}, parent);
    const operation = new Operation(instr, span);
    const { context } = await import('@opentelemetry/api');
    context.with(trace.setSpan(parent, span), () => {
      log.info('before');
      operation.noteFailure(new Error('no stock'));
      log.error('after');
    });
    operation.end();
    await new Promise((r) => setImmediate(r));
    expect(out.map((l) => [l.msg, l.trace_id, l.tenant, l.line, l['error.type'], l.secret])).toEqual([
      ['before', '1'.repeat(32), 'acme', 'retail', undefined, undefined],
      ['after', '1'.repeat(32), 'acme', 'retail', 'STOCK_UNAVAILABLE', undefined],
    ]);
  });

  it('names the original failure while a dead-letter copy is handled, and can leave error.type out', async () => {
    const { failureHeaders, readFailureLineage } = await import('@hoptrace/core');
    const { withFailureLineage } = await import('@hoptrace/core/adapter');
    const { context } = await import('@opentelemetry/api');
    const headers = failureHeaders({
      error: Object.assign(new Error('x'), { code: 'E_POISON' }),
      destination: 'orders',
    });
    const ctx = withFailureLineage(ROOT_CONTEXT, readFailureLineage(headers));
    expect(context.with(ctx, createLogFields())).toEqual({ 'error.type': 'E_POISON' });
    expect(context.with(ctx, createLogFields({ errorType: false }))).toEqual({});
    // An option set to undefined is not set: error.type stays, no baggage is added.
    const unset = allUndefined<LogFieldsOptions>(LOG_FIELDS_OPTION_KEYS);
    expect(context.with(ctx, createLogFields(unset))).toEqual({ 'error.type': 'E_POISON' });
  });

  it('validates the allow-list when compiled', () => {
    expect(() => createLogFields({ baggage: [''] })).toThrow(TypeError);
  });

  it('refuses an option it does not take, naming the one it most likely misspells (it was ignored)', () => {
    expect(() => createLogFields({ errortype: false } as never)).toThrow(
      new TypeError('Unknown option `errortype` for createLogFields (did you mean `errorType`?)'),
    );
    expect(() => createLogFields({ bagage: ['tenant.id'] } as never)).toThrow(
      new TypeError('Unknown option `bagage` for createLogFields (did you mean `baggage`?)'),
    );
    expect(() => createLogFields({ level: 'info' } as never)).toThrow(
      new TypeError('Unknown option `level` for createLogFields'),
    );
    // The allow-list's own keys are baggage keys, not options.
    expect(() => createLogFields({ baggage: { 'tenant.id': 'tenant' }, errorType: false })).not.toThrow();
    expect(() => createLogFields({ errortype: undefined } as never)).not.toThrow();
  });

  it.each([
    [null, 'Expected `options` to be an object, got null'],
    ['tenant.id', 'Expected `options` to be an object, got "tenant.id"'],
    [{ errorType: 'no' }, 'Expected `errorType` to be a boolean, got "no"'],
    [{ baggage: new Array(2) }, 'Expected `baggage` entries to be non-empty strings'],
    [
      { baggage: new Set(['tenant.id']) },
      'Expected `baggage` to be a list or map of strings, got [object Set]',
    ],
    // Baggage comes from other services: under these names it would replace the line's own fields.
    [
      { baggage: ['trace_id'] },
      'Expected `baggage` field names other than trace_id, span_id, trace_flags, error.type, got "trace_id"',
    ],
    [
      { baggage: { 'tenant.id': 'error.type' } },
      'Expected `baggage` field names other than trace_id, span_id, trace_flags, error.type, got "error.type"',
    ],
  ])('rejects %j with a clear TypeError when compiled', (options, message) => {
    expect(() => createLogFields(options as never)).toThrow(message);
  });
});
