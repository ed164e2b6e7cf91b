// The one SDK setup every traced variant uses: AlwaysOn (or AlwaysOff) sampler, BatchSpanProcessor
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
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';

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
 * @param sampling - `on` for AlwaysOn, `off` for AlwaysOff.
 */
export function registerSdk(sampling: 'on' | 'off'): BenchSdk {
  const exporter = new DiscardingProtobufExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'hoptrace-bench' }),
    sampler: sampling === 'on' ? new AlwaysOnSampler() : new AlwaysOffSampler(),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  return { provider, exporter, flush: () => provider.forceFlush() };
}
