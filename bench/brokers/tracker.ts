// Counts messages through one scenario run: the producer asks for room before sending (so no more
// than `window` messages are ever in flight, which keeps memory bounded in soak runs), the consumer
// reports each processed message, and `done` resolves at the last one.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrokerEndpoints } from '@hoptrace/test-kit/harness';
import type { Scenario, Variant } from './types.ts';

/** Flow control and completion for one run of `n` messages. */
export class Tracker {
  /** Messages handed to the client so far. */
  sent = 0;
  /** Messages the consumer has processed so far. */
  processed = 0;
  /** Resolves with `performance.now()` when the `n`-th message is processed. */
  readonly done: Promise<number>;
  private resolveDone!: (at: number) => void;
  private waiting: (() => void) | undefined;
  /** Messages in the run. */
  readonly n: number;
  /** Most messages sent but not yet processed. */
  readonly window: number;
  private readonly every: number;
  private readonly milestone: (processed: number) => void;

  /**
   * @param n - messages in the run.
   * @param window - most messages sent but not yet processed.
   * @param every - call `milestone` each time this many more messages are processed (0: never).
   * @param milestone - called synchronously from the consumer with the processed count.
   */
  constructor(
    n: number,
    window: number,
    every = 0,
    milestone: (processed: number) => void = () => undefined,
  ) {
    this.n = n;
    this.window = window;
    this.every = every;
    this.milestone = milestone;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /** Counts `k` messages as sent; returns a promise when they must wait for room, else undefined. */
  room(k: number): Promise<void> | undefined {
    this.sent += k;
    if (this.sent - this.processed <= this.window) return undefined;
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** The consumer processed one message. */
  message(): void {
    const count = ++this.processed;
    if (this.every > 0 && count % this.every === 0) this.milestone(count);
    if (this.waiting && this.sent - count <= this.window) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve();
    }
    if (count === this.n) this.resolveDone(performance.now());
  }
}

/** What a suite gets to build one scenario. */
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
  /** Sends `tracker.n` messages (asking `tracker.room` first); resolves when all were sent. */
  send(): Promise<void>;
  /** Disconnects and deletes what the scenario created. */
  close(): Promise<void>;
}

/** One broker's benchmark: builds a scenario on a real broker. */
export type PrepareScenario = (env: SuiteEnv, scenario: Scenario, tracker: Tracker) => Promise<Prepared>;

/**
 * Imports a hoptrace adapter. `HOPTRACE_BENCH_<NAME>=<file>` (e.g. `HOPTRACE_BENCH_KAFKA`) imports that
 * module instead, so a fix can be measured on a local copy before the package is changed.
 *
 * @param name - the adapter, e.g. `kafka`.
 * @param load - the normal import, e.g. `() => import('@hoptrace/kafka')`.
 */
export async function importAdapter<T>(name: string, load: () => Promise<T>): Promise<T> {
  const override = process.env[`HOPTRACE_BENCH_${name.toUpperCase()}`];
  return override ? ((await import(pathToFileURL(resolve(override)).href)) as T) : load();
}
