import { Session } from 'node:inspector/promises';
import { PerformanceObserver } from 'node:perf_hooks';

/** One benchmark case: a function called `ops` times per repetition. */
export interface Case {
  name: string;
  /** Which baseline this case is compared with (a case name), if any. */
  baseline?: string;
  fn: () => unknown;
  /** Calls per repetition for this case (default: the run's `ops`); slow cases take a few. */
  ops?: number;
  /** Unmeasured calls before the first repetition (default: the run's `warmupOps`). */
  warmupOps?: number;
  /**
   * Average bytes between heap samples in the allocation pass (default 64). A case allocating
   * hundreds of MB per call needs a coarser one: V8 hands the whole sample list back as one string.
   */
  allocationSamplingInterval?: number;
}

/** Median, min and max of repeated measurements. */
export interface Stat {
  median: number;
  min: number;
  max: number;
}

/** What one case measured. */
export interface CaseResult {
  name: string;
  baseline?: string;
  nsPerOp: Stat;
  /** GC pause time per million operations, in ms. */
  gcMsPerMillion: Stat;
  /**
   * Heap bytes allocated per operation (what V8's sampling heap profiler saw allocated, collected
   * or not, during a separate pass after the timed repetitions). Unlike time, it does not move
   * with the machine's load.
   */
  bytesPerOp: number;
}

export function stat(values: number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
}

let gcMs = 0;
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
});
observer.observe({ entryTypes: ['gc'] });

/** Until every microtask queued so far (and those they queue) has run: an async case's tail is its cost too. */
const drained = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** One sampled heap-profile node, as the inspector reports it. */
interface ProfileNode {
  selfSize: number;
  children: ProfileNode[];
}

const totalSize = (node: ProfileNode): number =>
  node.children.reduce((sum, child) => sum + totalSize(child), node.selfSize);

/**
 * Heap bytes each case allocates per operation: `ops` calls (fewer for a case with fewer ops per
 * repetition) under V8's sampling heap profiler (one sample per 64 bytes on average, objects a GC
 * already collected included). Cases are warm: this runs after the timed repetitions.
 */
async function allocations(cases: Case[], ops: number): Promise<number[]> {
  let session = new Session();
  session.connect();
  const bytes: number[] = [];
  let sink: unknown;
  try {
    for (const c of cases) {
      const n = Math.min(c.ops ?? ops, ops);
      await drained();
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: c.allocationSamplingInterval ?? 64,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      for (let k = 0; k < n; k++) sink = c.fn();
      await drained();
      try {
        const { profile } = await session.post('HeapProfiler.stopSampling');
        bytes.push(totalSize(profile.head as unknown as ProfileNode) / n);
      } catch (error) {
        // A profile over V8's longest string cannot be handed back: report the case as not measured
        // (NaN) and go on with a fresh session rather than lose the whole run.
        console.warn(`allocation pass: ${c.name}: not measured (${String(error)})`);
        bytes.push(Number.NaN);
        session.disconnect();
        session = new Session();
        session.connect();
      }
    }
  } finally {
    session.disconnect();
  }
  if (sink === Symbol.for('never')) console.log(sink);
  return bytes;
}

/**
 * Runs every case interleaved (case A rep 1, case B rep 1, ..., then rep 2) so that drift on a noisy
 * machine hits all cases alike; returns ns/op and GC time per case as median and min-max, then the
 * heap bytes each allocates per operation (a separate pass, so the profiler never slows a timed one).
 * A repetition's time includes the microtasks its calls queued (the tail of an async case).
 */
export async function runCases(
  cases: Case[],
  options: { ops: number; repetitions: number; warmupOps: number; allocationOps: number },
): Promise<CaseResult[]> {
  for (const c of cases) for (let i = 0; i < (c.warmupOps ?? options.warmupOps); i++) c.fn();
  await drained();
  const ns: number[][] = cases.map(() => []);
  const gc: number[][] = cases.map(() => []);
  let sink: unknown;
  for (let rep = 0; rep < options.repetitions; rep++) {
    for (const [i, c] of cases.entries()) {
      globalThis.gc?.();
      await new Promise((r) => setTimeout(r, 20)); // the forced GC's entry is reported before we start
      const ops = c.ops ?? options.ops;
      const gcBefore = gcMs;
      const start = process.hrtime.bigint();
      for (let k = 0; k < ops; k++) sink = c.fn();
      await drained();
      const elapsed = Number(process.hrtime.bigint() - start);
      await new Promise((r) => setTimeout(r, 20)); // let the GC observer report this run's pauses
      ns[i]?.push(elapsed / ops);
      gc[i]?.push(((gcMs - gcBefore) / ops) * 1e6);
    }
  }
  if (sink === Symbol.for('never')) console.log(sink);
  const bytes = await allocations(cases, options.allocationOps);
  return cases.map((c, i) => ({
    name: c.name,
    ...(c.baseline ? { baseline: c.baseline } : {}),
    nsPerOp: stat(ns[i] ?? []),
    gcMsPerMillion: stat(gc[i] ?? []),
    bytesPerOp: bytes[i] ?? Number.NaN,
  }));
}
