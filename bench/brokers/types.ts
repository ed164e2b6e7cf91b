// Types shared by the broker-benchmark orchestrator (main.ts), its child processes (child.ts) and the
// suites (bench/suites/*.ts).
import type { BrokerEndpoints, BrokerKind } from '@hoptrace/test-kit/harness';
import type { TracerProvider } from '@opentelemetry/api';

/**
 * Which client setup a child process runs. `raw+header` is the raw client carrying the same W3C
 * `traceparent` a tracer would write, with no SDK: the floor any header-propagating tracer pays.
 */
export type Library = 'raw' | 'raw+header' | 'hoptrace' | 'incumbent';

/**
 * Sampler of the traced variants: `on` AlwaysOn, `ratio` ParentBased(TraceIdRatioBased(0.1)) (the
 * production-like setting), `off` AlwaysOff; `none` for the raw clients (no SDK).
 */
export type Sampling = 'on' | 'ratio' | 'off' | 'none';

/** One variant: a library and, for traced ones, the sampler. */
export interface Variant {
  library: Library;
  sampling: Sampling;
}

/** One benchmark scenario of a suite (a row group of the table). */
export interface Scenario {
  /** Stable id, e.g. `kafka-eachMessage-100b`. */
  id: string;
  /** Human-readable description for the table. */
  label: string;
  /** Suite-specific settings (see each suite). */
  settings: Record<string, number | string | boolean>;
  /**
   * Issue 16's full-sampling target for this scenario: hoptrace's CPU overhead (above raw) at most
   * this multiple of the incumbent's, e.g. `0.6`. Absent: no full-sampling target.
   */
  targetOn?: number;
}

/** What a suite gets to build one scenario in a child process. */
export interface SuiteEnv {
  variant: Variant;
  endpoints: Partial<BrokerEndpoints>;
  /** A CommonJS require, so instrumentations registered before it can patch the client. */
  require: NodeJS.Require;
  /** Unique per child process and scenario, for topic / queue names. */
  unique: string;
}

/** A scenario ready to run: connected, consuming, nothing sent yet. */
export interface Prepared {
  /**
   * Sends `tracker.n` messages (asking `tracker.room` first); resolves when all were sent. Called
   * once per phase (warm-up, then the measured run): `tracker.n` is the current phase's count.
   */
  send(): Promise<void>;
  /** Disconnects and deletes what the scenario created. */
  close(): Promise<void>;
}

/** What a child's tracker offers a suite (see tracker.ts). */
export interface Counter {
  /** Messages in the current phase. */
  readonly n: number;
  /** Counts `k` messages as sent; returns a promise when they must wait for room, else undefined. */
  room(k: number): Promise<void> | undefined;
  /**
   * The consumer processed one message; `carried`: it arrived with a W3C traceparent (proof that the
   * floor and the tracers propagate, and that an incumbent's patch applied).
   */
  message(carried: boolean): void;
}

/**
 * One client's benchmark. Every `*.ts` file in `bench/suites/` exports one as `suite`; main.ts and
 * child.ts find them there (see registry.ts), so a new client is a new file and nothing else.
 */
export interface BenchSuite {
  /** Command-line name, e.g. `kafka` (`./dev bench kafka`). */
  name: string;
  /** Table heading, e.g. `Kafka (kafkajs 2.2.4)`. */
  title: string;
  /** The broker the harness must provide. */
  broker: BrokerKind;
  /** The incumbent instrumentation, as the tables name it. */
  incumbent: string;
  /** How the incumbent is set up, with versions, for the results (e.g. `... 0.32.0, registered before ...`). */
  incumbentSetup(): string;
  /** Order in `./dev bench brokers` (lower first; the built-in suites use 10, 20, 30). */
  order: number;
  /** Messages per scenario and repetition: full run, `--quick`, `--smoke`. */
  messages: { full: number; quick: number; smoke: number };
  /** Most messages sent but not yet processed (flow control). */
  window: number;
  /** The scenario `--soak` runs (an id of `scenarios()`). */
  soakScenario: string;
  /** The scenarios, in table order. */
  scenarios(): Scenario[];
  /**
   * Registers the incumbent's require-time instrumentation (child process, incumbent variants only,
   * before the client is first required). Absent when the incumbent is configured in `prepare`.
   */
  registerIncumbent?(env: { require: NodeJS.Require; tracerProvider: TracerProvider }): void;
  /** Builds one scenario on the real broker. */
  prepare(env: SuiteEnv, scenario: Scenario, tracker: Counter): Promise<Prepared>;
}

/** What the orchestrator asks one child process to do. */
export interface ChildTask {
  /** The suite's name. */
  suite: string;
  variant: Variant;
  scenarios: Scenario[];
  /** Messages per scenario. */
  n: number;
  /** Unmeasured messages run through each scenario just before it is measured; 0 for none. */
  warmup: number;
  /** Soak mode: sample the heap after a forced GC every `soakEvery` messages. */
  soakEvery?: number;
  /**
   * Calibration (`--work=N`): µs of synthetic CPU work the `raw+header` variant does per message, half
   * when a message is sent and half when it is processed; 0 or absent for none.
   */
  workMicros?: number;
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
  /** Messages that arrived with a W3C traceparent. */
  carried: number;
  /** Soak mode: [messages processed, heap used after GC] samples. */
  heapSamples?: Array<[number, number]>;
}

/** The message a child sends back to the orchestrator. */
export type ChildReply =
  | { ok: true; results: Measurement[]; apiVersion: string }
  | { ok: false; error: string };
