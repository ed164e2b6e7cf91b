// Counts messages through one scenario phase (warm-up, then the measured run): the producer asks for
// room before sending (so no more than `window` messages are ever in flight, which keeps memory
// bounded in soak runs), the consumer reports each processed message, and `done` resolves at the last
// one. `reset` starts the next phase on the same prepared scenario.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChildTask, Counter } from './types.ts';

/** Where {@link work} leaves its result, so the loop is not optimized away. */
let workSink = 0;

/** Burns CPU: `iterations` rounds of integer arithmetic. */
function work(iterations: number): void {
  let x = workSink | 0;
  for (let i = 0; i < iterations; i++) x = (Math.imul(x, 31) + i) | 0;
  workSink = x;
}

let calibrated: number | undefined;

/** Iterations of {@link work} per µs of process CPU on this machine (measured once per process). */
function iterationsPerMicro(): number {
  if (calibrated !== undefined) return calibrated;
  work(1e6); // warm-up: optimized before it is timed
  const iterations = 2e7;
  const before = process.cpuUsage();
  work(iterations);
  const used = process.cpuUsage(before);
  calibrated = iterations / Math.max(1, used.user + used.system);
  return calibrated;
}

/** Flow control and completion for one phase of `n` messages. */
export class Tracker implements Counter {
  /** Messages handed to the client so far in this phase. */
  sent = 0;
  /** Messages the consumer has processed so far in this phase. */
  processed = 0;
  /** Of those, messages that arrived with a traceparent. */
  carried = 0;
  /** Resolves with `performance.now()` when the `n`-th message of this phase is processed. */
  done!: Promise<number>;
  /** Messages in this phase. */
  n = 0;
  /** Most messages sent but not yet processed. */
  readonly window: number;
  private resolveDone!: (at: number) => void;
  private waiting: (() => void) | undefined;
  private every = 0;
  private milestone: (processed: number) => void = () => undefined;

  /** Synthetic CPU work per message side (see {@link ChildTask.workMicros}): loop iterations. */
  private readonly workIterations: number;

  /**
   * @param window - most messages sent but not yet processed.
   * @param workMicros - µs of synthetic CPU work per message, half at send and half at processing.
   */
  constructor(window: number, workMicros = 0) {
    this.window = window;
    this.workIterations = workMicros > 0 ? Math.round((workMicros / 2) * iterationsPerMicro()) : 0;
    this.reset(0);
  }

  /**
   * Starts a phase of `n` messages.
   *
   * @param every - call `milestone` each time this many more messages are processed (0: never).
   * @param milestone - called synchronously from the consumer with the processed count.
   */
  reset(n: number, every = 0, milestone: (processed: number) => void = () => undefined): void {
    this.n = n;
    this.sent = 0;
    this.processed = 0;
    this.carried = 0;
    this.every = every;
    this.milestone = milestone;
    this.waiting = undefined;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  room(k: number): Promise<void> | undefined {
    if (this.workIterations > 0) work(this.workIterations * k);
    this.sent += k;
    if (this.sent - this.processed <= this.window) return undefined;
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  message(carried: boolean): void {
    if (this.workIterations > 0) work(this.workIterations);
    if (carried) this.carried++;
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

/**
 * Imports a hoptrace adapter. `HOPTRACE_BENCH_<NAME>=<file>` (e.g. `HOPTRACE_BENCH_KAFKA`) imports that
 * module instead, so a fix can be measured on a local copy before the package is changed.
 *
 * @param name - the adapter, e.g. `kafka`.
 * @param load - the normal import, e.g. `() => import('@hoptrace/kafka')`.
 */
export async function importAdapter<T>(name: string, load: () => Promise<T>): Promise<T> {
  const override = process.env[`HOPTRACE_BENCH_${name.toUpperCase().replaceAll('-', '_')}`];
  return override ? ((await import(pathToFileURL(resolve(override)).href)) as T) : load();
}
