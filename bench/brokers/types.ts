// Types shared by the broker-benchmark orchestrator (main.ts) and its child processes (child.ts).
import type { BrokerEndpoints } from '@hoptrace/test-kit/harness';

/** The brokers with a benchmark suite. */
export type BrokerName = 'kafka' | 'amqp' | 'bullmq';

/**
 * Which client setup a child process runs. `raw+header` (Kafka only) is the raw client sending a W3C
 * `traceparent` header with every message and no SDK: the floor any header-propagating tracer pays.
 */
export type Library = 'raw' | 'raw+header' | 'hoptrace' | 'incumbent';

/** Sampling of the traced variants: AlwaysOn or AlwaysOff (`none` for the raw client: no SDK). */
export type Sampling = 'on' | 'off' | 'none';

/** One variant: a library and, for traced ones, the sampler. */
export interface Variant {
  library: Library;
  sampling: Sampling;
}

/** One benchmark scenario of a broker (a row group of the table). */
export interface Scenario {
  /** Stable id, e.g. `kafka-each-message-100b`. */
  id: string;
  /** Human-readable description for the table. */
  label: string;
  /** Broker-specific settings (see each suite). */
  settings: Record<string, number | string | boolean>;
}

/** What the orchestrator asks one child process to do. */
export interface ChildTask {
  broker: BrokerName;
  variant: Variant;
  scenarios: Scenario[];
  /** Messages per scenario. */
  n: number;
  /** Messages run through the first scenario before measuring (JIT, connections); 0 for none. */
  warmup: number;
  /** Soak mode: sample the heap after a forced GC every `soakEvery` messages. */
  soakEvery?: number;
  endpoints: Partial<BrokerEndpoints>;
}

/** What one child measured for one scenario. */
export interface Measurement {
  scenario: string;
  n: number;
  /** Wall time from the first send to the last message processed, ms. */
  elapsedMs: number;
  /** Process CPU (user + system) from the first send until every span is exported, µs. */
  cpuMicros: number;
  /** Highest heap used during the run (sampled every 10 ms), bytes. */
  peakHeap: number;
  /** Heap used after the run and a forced GC, bytes. */
  heapAfterGc: number;
  /** Spans exported during the run (0 without an SDK or with sampling off). */
  spans: number;
  /** OTLP protobuf bytes the exporter produced and discarded. */
  exportedBytes: number;
  /** Soak mode: [messages processed, heap used after GC] samples. */
  heapSamples?: Array<[number, number]>;
}

/** The message a child sends back to the orchestrator. */
export type ChildReply =
  | { ok: true; results: Measurement[]; apiVersion: string }
  | { ok: false; error: string };
