import { context, propagation, type Span, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { JaegerPropagator } from '@opentelemetry/propagator-jaeger';
import { OTTracePropagator } from '@opentelemetry/propagator-ot-trace';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { watchSpanMisuse } from './span-misuse.ts';

/**
 * Which propagator the test registers globally. `jaeger` (`uber-trace-id`, baggage as one
 * `uberctx-<key>` header per entry) and `ot` (`ot-tracer-*`, baggage as `ot-baggage-<key>`) alone,
 * or after W3C trace context and baggage (`w3c+jaeger`, `w3c+ot`): formats whose baggage header
 * names are not fixed (their `fields()` lists the trace headers only).
 */
export type TestPropagator = 'w3c' | 'b3' | 'b3multi' | 'jaeger' | 'ot' | 'w3c+jaeger' | 'w3c+ot';

/**
 * Tracks spans that started and have not ended. A span left open at the end of a test is a leak:
 * {@link TestTracing.assertNoOpenSpans} fails the test with the names of the open spans.
 */
class OpenSpanTracker implements SpanProcessor {
  readonly open = new Set<Span>();
  onStart(span: Span): void {
    this.open.add(span);
  }
  onEnd(span: ReadableSpan): void {
    this.open.delete(span as unknown as Span);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** What {@link installTestTracing} hands back. */
export interface TestTracing {
  exporter: InMemorySpanExporter;
  provider: BasicTracerProvider;
  /** Finished spans so far. */
  spans(): ReadableSpan[];
  /** Spans started and not yet ended. */
  openSpans(): ReadableSpan[];
  /** Throws, naming them, when spans are still open (waits up to `graceMs` for them to end first). */
  assertNoOpenSpans(graceMs?: number): Promise<void>;
  /** Forgets finished spans (open spans stay tracked). */
  reset(): void;
  /** Unregisters everything global. */
  uninstall(): Promise<void>;
}

/** Options of {@link installTestTracing}. */
export interface TestTracingOptions {
  propagator?: TestPropagator;
  /** `false`: nothing is sampled (AlwaysOff); sampled otherwise (AlwaysOn). */
  sampled?: boolean;
  /** Sample as the parent was (`ParentBased`, the SDK's default), roots as `sampled` says. */
  parentBased?: boolean;
}

/**
 * Registers, globally, an AsyncLocalStorage context manager, the chosen propagator and a tracer
 * provider that keeps finished spans in memory and tracks open ones. Replaces whatever a previous
 * call registered.
 */
export function installTestTracing(options: TestTracingOptions = {}): TestTracing {
  trace.disable();
  context.disable();
  propagation.disable();
  watchSpanMisuse();
  const exporter = new InMemorySpanExporter();
  const rootSampler = options.sampled === false ? new AlwaysOffSampler() : new AlwaysOnSampler();
  const tracker = new OpenSpanTracker();
  const provider = new BasicTracerProvider({
    sampler: options.parentBased ? new ParentBasedSampler({ root: rootSampler }) : rootSampler,
    spanProcessors: [tracker, new SimpleSpanProcessor(exporter)],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(makePropagator(options.propagator ?? 'w3c'));
  return {
    exporter,
    provider,
    spans: () => exporter.getFinishedSpans(),
    openSpans: () => [...tracker.open] as unknown as ReadableSpan[],
    assertNoOpenSpans: async (graceMs = 2000) => {
      const deadline = Date.now() + graceMs;
      while (tracker.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      if (tracker.open.size > 0) {
        const names = ([...tracker.open] as unknown as ReadableSpan[]).map((s) => s.name);
        tracker.open.clear();
        throw new Error(`${names.length} span(s) started and never ended: ${names.join(', ')}`);
      }
    },
    reset: () => exporter.reset(),
    uninstall: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/**
 * A propagator of the given kind: W3C trace context + baggage, B3 single/multi + W3C baggage, or
 * Jaeger / OT trace alone or after W3C (see {@link TestPropagator}).
 */
export function makePropagator(kind: TestPropagator) {
  const w3c = () => [new W3CTraceContextPropagator(), new W3CBaggagePropagator()];
  if (kind === 'w3c') return new CompositePropagator({ propagators: w3c() });
  if (kind === 'jaeger') return new JaegerPropagator();
  if (kind === 'ot') return new OTTracePropagator();
  if (kind === 'w3c+jaeger')
    return new CompositePropagator({ propagators: [...w3c(), new JaegerPropagator()] });
  if (kind === 'w3c+ot') return new CompositePropagator({ propagators: [...w3c(), new OTTracePropagator()] });
  const b3 = new B3Propagator({
    injectEncoding: kind === 'b3' ? B3InjectEncoding.SINGLE_HEADER : B3InjectEncoding.MULTI_HEADER,
  });
  return new CompositePropagator({ propagators: [b3, new W3CBaggagePropagator()] });
}
