// The tracer providers of the in-process path benchmarks: the samplers of the broker benchmark, no
// span processor (a sampled span is built and ended, never exported).
import type { TracerProvider } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';

/** A provider per sampler of the broker benchmark, each without a span processor. */
export function pathProviders(): { off: TracerProvider; ratio: TracerProvider; on: TracerProvider } {
  return {
    off: new BasicTracerProvider({ sampler: new AlwaysOffSampler() }),
    ratio: new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.1) }),
    }),
    on: new BasicTracerProvider({ sampler: new AlwaysOnSampler() }),
  };
}
