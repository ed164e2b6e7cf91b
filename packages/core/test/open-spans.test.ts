import { ERROR_SHUTDOWN, endOpenSpans, endOpenSpansOnShutdown } from '@hoptrace/core';
import {
  createInstrumentation,
  type InstrumentationScope,
  MetricAttributeCache,
  Operation,
  operationMetric,
} from '@hoptrace/core/adapter';
import { metricPoints, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';

const tracing = useTestTracing();
const SCOPE: InstrumentationScope = { name: 'test', version: '0', system: 'kafka' };

describe('endOpenSpans', () => {
  it('ends every open operation whose span records, once, with error.type shutdown; ended ones are left alone', () => {
    const instr = createInstrumentation(SCOPE, {});
    const tracer = trace.getTracer('test');
    const open = new Operation(instr, tracer.startSpan('open'));
    const failed = new Operation(instr, tracer.startSpan('failed'));
    failed.noteFailure(new TypeError('handler threw'));
    const done = new Operation(instr, tracer.startSpan('done'));
    done.end();
    const several = new Operation(instr, [undefined, tracer.startSpan('several')]);

    expect(endOpenSpans()).toBe(3);
    expect(endOpenSpans()).toBe(0);
    expect(open.ended && failed.ended && several.ended).toBe(true);
    const byName = new Map(tracing.current.spans().map((s) => [s.name, s]));
    expect(byName.get('open')?.status.code).toBe(SpanStatusCode.ERROR);
    expect(byName.get('open')?.attributes['error.type']).toBe(ERROR_SHUTDOWN);
    expect(byName.get('several')?.attributes['error.type']).toBe(ERROR_SHUTDOWN);
    // A failure noted before the shutdown is what the span says.
    expect(byName.get('failed')?.attributes['error.type']).toBe('TypeError');
    expect(byName.get('done')?.status.code).toBe(SpanStatusCode.UNSET);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('forgets operations that end in any order (head, middle, tail) and ends the rest in the order they opened', () => {
    const instr = createInstrumentation(SCOPE, {});
    const tracer = trace.getTracer('test');
    const ops = ['a', 'b', 'c', 'd'].map((name) => new Operation(instr, tracer.startSpan(name)));
    ops[1]?.end();
    ops[0]?.end();
    ops[3]?.end();
    ops[3]?.end();
    const e = new Operation(instr, tracer.startSpan('e'));
    const f = new Operation(instr, tracer.startSpan('f'));
    f.end();

    expect(endOpenSpans()).toBe(2);
    e.end();
    expect(endOpenSpans()).toBe(0);
    const names = tracing.current.spans().map((s) => s.name);
    expect(names).toEqual(['b', 'a', 'd', 'f', 'c', 'e']);
    const shutdown = tracing.current.spans().filter((s) => s.attributes['error.type'] === ERROR_SHUTDOWN);
    expect(shutdown.map((s) => s.name)).toEqual(['c', 'e']);
    // Tracking still works after a shutdown emptied the registry.
    new Operation(instr, tracer.startSpan('g'));
    expect(endOpenSpans()).toBe(1);
  });

  it('tracks nothing for a span that does not record or no span, and records the metric of what it ends', async () => {
    const reader = new TestMetricReader();
    const instr = createInstrumentation(SCOPE, { meterProvider: new MeterProvider({ readers: [reader] }) });
    const unsampled = trace.wrapSpanContext({
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      traceFlags: 0,
    });
    new Operation(instr, unsampled);
    new Operation(instr, undefined);
    const open = new Operation(
      instr,
      trace.getTracer('test').startSpan('open'),
      operationMetric(true, new MetricAttributeCache('kafka'), 'send', 'send', 't', 1),
    );
    expect(endOpenSpans()).toBe(1);
    expect(open.ended).toBe(true);
    expect(await metricPoints(reader, 'messaging.client.operation.duration')).toHaveLength(1);
  });

  it('endOpenSpansOnShutdown, first among the span processors, gets the open spans exported by the shutdown', async () => {
    // An exporter that keeps what it got past its shutdown (the in-memory one forgets it there).
    const exported: ReadableSpan[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => {
        exported.push(...spans);
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: () => Promise.resolve(),
    };
    const provider = new BasicTracerProvider({
      spanProcessors: [endOpenSpansOnShutdown(), new SimpleSpanProcessor(exporter)],
    });
    const instr = createInstrumentation(SCOPE, { tracerProvider: provider });
    const operation = new Operation(instr, provider.getTracer('test').startSpan('held'));
    await provider.forceFlush();
    expect(operation.ended).toBe(false);
    await provider.shutdown();
    expect(operation.ended).toBe(true);
    const [held] = exported;
    expect(held?.name).toBe('held');
    expect(held?.attributes['error.type']).toBe(ERROR_SHUTDOWN);
  });
});
