// The one SDK setup every traced variant uses: AlwaysOn, ParentBased(TraceIdRatioBased(0.1)) or
// AlwaysOff sampler, BatchSpanProcessor
// with its defaults, an exporter that serializes each batch to OTLP protobuf and discards the bytes
// (so export cost is counted), AsyncLocalStorage context manager, W3C trace context + baggage.
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  type ExportResult,
  ExportResultCode,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { Sampling } from './types.ts';

/** The ratio of the production-like sampler (`ratio` variants). */
export const SAMPLING_RATIO = 0.1;

/** The sampler of a traced variant. */
export function samplerFor(sampling: Exclude<Sampling, 'none'>): Sampler {
  if (sampling === 'on') return new AlwaysOnSampler();
  if (sampling === 'off') return new AlwaysOffSampler();
  return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(SAMPLING_RATIO) });
}

/** Serializes spans to an OTLP/protobuf export request, counts them, and throws the bytes away. */
export class DiscardingProtobufExporter implements SpanExporter {
  /** Spans exported so far. */
  spans = 0;
  /** Protobuf bytes produced so far. */
  bytes = 0;

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const body = ProtobufTraceSerializer.serializeRequest(spans);
    this.bytes += body?.byteLength ?? 0;
    this.spans += spans.length;
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** A registered SDK and what the benchmark needs from it. */
export interface BenchSdk {
  provider: BasicTracerProvider;
  exporter: DiscardingProtobufExporter;
  /** Exports every span ended so far. */
  flush(): Promise<void>;
}

/**
 * Registers the benchmark SDK globally (tracer provider, context manager, propagator).
 *
 * @param sampling - `on` AlwaysOn, `ratio` ParentBased(TraceIdRatioBased(0.1)), `off` AlwaysOff.
 */
export function registerSdk(sampling: Exclude<Sampling, 'none'>): BenchSdk {
  const exporter = new DiscardingProtobufExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'hoptrace-bench' }),
    sampler: samplerFor(sampling),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  return { provider, exporter, flush: () => provider.forceFlush() };
}
