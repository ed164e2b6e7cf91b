import {
  createInstrumentation,
  readMessageContext,
  SpanTemplates,
  startClientSpan,
  startConsumerSpan,
} from '@hoptrace/core/adapter';
import { useTestTracing } from '@hoptrace/test-kit';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';

// For the W3C propagator; each test passes its own tracer provider (the last one swaps the global one).
useTestTracing();

const SCOPE = { name: 'test', version: '0', system: 'kafka' };
const UNSAMPLED = { traceparent: `00-${'4'.repeat(32)}-${'5'.repeat(16)}-00` };
const SAMPLED = { traceparent: `00-${'6'.repeat(32)}-${'7'.repeat(16)}-01` };
const template = new SpanTemplates('kafka', { type: 'process', name: 'process' }, {}, false).get('t');

function setup(sampler: Sampler, unsampled?: 'auto' | 'skip' | 'span') {
  const exporter = new InMemorySpanExporter();
  let started = 0;
  const provider = new BasicTracerProvider({
    sampler,
    spanProcessors: [
      new SimpleSpanProcessor(exporter),
      {
        onStart: () => void started++,
        onEnd: () => undefined,
        forceFlush: async () => undefined,
        shutdown: async () => undefined,
      },
    ],
  });
  const instr = createInstrumentation(SCOPE, {
    tracerProvider: provider,
    ...(unsampled ? { unsampled } : {}),
  });
  return { instr, exporter, started: () => started };
}

describe('the unsampled fast path', () => {
  it('auto + ParentBased: the first unsampled message teaches it; later ones get no span and run in the message context', () => {
    const { instr } = setup(new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.1) }));
    const first = startConsumerSpan(instr, template, readMessageContext(UNSAMPLED));
    expect(first.span?.isRecording()).toBe(false);
    first.span?.end();
    const second = startConsumerSpan(instr, template, readMessageContext(UNSAMPLED));
    expect(second.span).toBeUndefined();
    // The handler's context still carries the trace: downstream sends inject the upstream ids.
    expect(trace.getSpanContext(second.context)).toMatchObject({
      traceId: '4'.repeat(32),
      spanId: '5'.repeat(16),
      traceFlags: 0,
    });
    // A sampled message is untouched by what was learned.
    const sampled = startConsumerSpan(instr, template, readMessageContext(SAMPLED));
    expect(sampled.span?.isRecording()).toBe(true);
    sampled.span?.end();
  });

  it('auto + AlwaysOn: an unsampled parent still records, so every message keeps its span', () => {
    const { instr, exporter } = setup(new AlwaysOnSampler());
    for (let i = 0; i < 3; i++) startConsumerSpan(instr, template, readMessageContext(UNSAMPLED)).span?.end();
    expect(exporter.getFinishedSpans()).toHaveLength(3);
  });

  it('skip builds nothing from the first message on; span always builds', () => {
    const skip = setup(new AlwaysOnSampler(), 'skip');
    expect(startConsumerSpan(skip.instr, template, readMessageContext(UNSAMPLED)).span).toBeUndefined();
    expect(skip.started()).toBe(0);
    const span = setup(new ParentBasedSampler({ root: new AlwaysOnSampler() }), 'span');
    for (let i = 0; i < 2; i++)
      expect(startConsumerSpan(span.instr, template, readMessageContext(UNSAMPLED)).span).toBeDefined();
  });

  it('producers: a send under an unsampled active context builds no span once learned, and the context still flows', () => {
    const { instr } = setup(new ParentBasedSampler({ root: new AlwaysOnSampler() }));
    const parent = readMessageContext(UNSAMPLED).context;
    const first = startClientSpan(instr, template, parent);
    expect(first?.isRecording()).toBe(false);
    expect(startClientSpan(instr, template, parent)).toBeUndefined();
    expect(context.with(parent, () => startClientSpan(instr, template))).toBeUndefined();
    // No parent at all: the sampler decides, so a span is always started.
    expect(startClientSpan(instr, template, ROOT_CONTEXT)).toBeDefined();
  });

  it('re-learns when the global tracer provider changes', () => {
    trace.disable();
    const instr = createInstrumentation(SCOPE);
    // No SDK yet: the API's no-op tracer records nothing, so auto learns "skip"...
    startConsumerSpan(instr, template, readMessageContext(UNSAMPLED)).span?.end();
    expect(startConsumerSpan(instr, template, readMessageContext(UNSAMPLED)).span).toBeUndefined();
    // ...until an SDK that records children of unsampled parents is registered.
    const exporter = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({
        sampler: new AlwaysOnSampler(),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      }),
    );
    try {
      const again = startConsumerSpan(instr, template, readMessageContext(UNSAMPLED));
      expect(again.span?.isRecording()).toBe(true);
      again.span?.end();
      expect(exporter.getFinishedSpans()).toHaveLength(1);
    } finally {
      trace.disable();
    }
  });

  it('rejects an unknown mode at wrap time', () => {
    expect(() => createInstrumentation(SCOPE, { unsampled: 'never' as never })).toThrow(
      new TypeError("Expected `unsampled` to be one of 'auto', 'skip', 'span', got \"never\""),
    );
  });
});
