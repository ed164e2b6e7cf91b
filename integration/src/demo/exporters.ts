// Tracing for the demo: spans kept in memory for the terminal tree and the HTML waterfall, and also
// sent over OTLP/HTTP when the standard environment variables name a collector.
import { endOpenSpansOnShutdown } from '@hoptrace/core';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** Options of {@link createDemoTracing}. */
export interface DemoTracingOptions {
  /** The `service.name` resource attribute of every span. Example: `{ serviceName: 'hoptrace-demo' }`. */
  readonly serviceName: string;
}

/** What {@link createDemoTracing} hands back. */
export interface DemoTracing {
  /** The provider, also registered as the global tracer provider. */
  readonly provider: BasicTracerProvider;
  /** Every finished span, kept for the terminal tree and the HTML page (emptied by `shutdown`). */
  readonly memory: InMemorySpanExporter;
  /** Where OTLP/HTTP export goes (the traces URL), or undefined when OTLP export is off. */
  readonly otlpEndpoint?: string;
  /**
   * Flushes and stops every processor (the pending OTLP batch is sent first), then unregisters the
   * globals. Read `memory` before calling it: shutting the in-memory exporter down clears it.
   */
  shutdown(): Promise<void>;
}

/** The URL as the exporter normalises it (`new URL().toString()`), or undefined when it does not parse. */
function parsedUrl(url: string): string | undefined {
  try {
    return new URL(url).toString();
  } catch {
    return undefined;
  }
}

/**
 * The OTLP traces URL the standard environment variables configure, resolved the way the OTLP/HTTP
 * exporter resolves it: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, else `OTEL_EXPORTER_OTLP_ENDPOINT`
 * with `/v1/traces` appended. Blank values count as unset; a value that is not a URL is skipped (the
 * exporter ignores it too, with a warning).
 *
 * @returns the URL, or undefined when neither variable holds one.
 */
export function otlpTracesEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const specific = traces ? parsedUrl(traces) : undefined;
  if (specific !== undefined) return specific;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base || parsedUrl(base) === undefined) return undefined;
  return parsedUrl(`${base.endsWith('/') ? base : `${base}/`}v1/traces`);
}

/**
 * Sets up tracing for the demo and registers it globally: an AsyncLocalStorage context manager, the
 * W3C trace-context + baggage propagator, and a tracer provider whose spans go to an in-memory
 * exporter and, only when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
 * set, also in batches to an OTLP/HTTP exporter. The exporter is given the URL
 * {@link otlpTracesEndpointFromEnv} resolved, so spans go exactly where `otlpEndpoint` says (the
 * exporter's own reading of `OTEL_EXPORTER_OTLP_ENDPOINT` does not trim it, and falls back to
 * localhost:4318 when the untrimmed value with `/v1/traces` appended does not parse); it reads the
 * other standard variables itself (headers, timeout, compression). Replaces whatever was registered
 * globally before.
 *
 * @returns the provider, the in-memory exporter, the OTLP traces URL if any, and `shutdown`.
 */
export function createDemoTracing(options: DemoTracingOptions): DemoTracing {
  const memory = new InMemorySpanExporter();
  // First: at the provider's shutdown, any hoptrace span still open ends before the others flush.
  const processors: SpanProcessor[] = [endOpenSpansOnShutdown(), new SimpleSpanProcessor(memory)];
  const otlpEndpoint = otlpTracesEndpointFromEnv();
  if (otlpEndpoint !== undefined) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpEndpoint })));
  }

  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': options.serviceName })),
    spanProcessors: processors,
  });

  // The setters refuse to replace an existing global, so clear what an earlier setup left.
  trace.disable();
  context.disable();
  propagation.disable();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);

  let stopped: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopped ??= (async () => {
      try {
        await provider.forceFlush();
        await provider.shutdown();
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
      }
    })();
    return stopped;
  };
  return otlpEndpoint === undefined
    ? { provider, memory, shutdown }
    : { provider, memory, otlpEndpoint, shutdown };
}
