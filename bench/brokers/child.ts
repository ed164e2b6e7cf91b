// One child process of the broker benchmarks: one variant (raw, header floor, hoptrace or the
// incumbent instrumentation, under one sampler), every scenario of one suite in turn, each after its
// own unmeasured warm-up on the same connections. Started by main.ts with the task as JSON in argv[2];
// replies over IPC. Needs --expose-gc.
import { createRequire } from 'node:module';
import { getHeapStatistics } from 'node:v8';
import { importSuite } from './registry.ts';
import { type BenchSdk, registerSdk } from './sdk.ts';
import { Tracker } from './tracker.ts';
import type { BenchSuite, ChildReply, ChildTask, Measurement, Scenario } from './types.ts';

const require = createRequire(import.meta.url);
const gc = globalThis.gc ?? (() => undefined);
const heapUsed = () => getHeapStatistics().used_heap_size;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let runs = 0;

/** Runs one phase of `tracker.n` messages through a prepared scenario; resolves at the last one. */
async function phase(send: () => Promise<void>, tracker: Tracker): Promise<number> {
  const sending = send();
  const tEnd = await tracker.done;
  await sending;
  return tEnd;
}

/** Prepares `scenario`, warms it up, then measures `n` messages through it. */
async function measure(
  suite: BenchSuite,
  task: ChildTask,
  sdk: BenchSdk | undefined,
  scenario: Scenario,
): Promise<Measurement> {
  const tracker = new Tracker(
    suite.window,
    task.variant.library === 'raw+header' ? (task.workMicros ?? 0) : 0,
  );
  const prepared = await suite.prepare(
    {
      variant: task.variant,
      endpoints: task.endpoints,
      require,
      unique: `${task.variant.library.replace('+', '-')}-${task.variant.sampling}-${process.pid}-${runs++}-${Date.now()}`,
    },
    scenario,
    tracker,
  );
  try {
    if (task.warmup > 0) {
      tracker.reset(task.warmup);
      await phase(() => prepared.send(), tracker);
      await sleep(20);
    }
    await sdk?.flush();
    gc();
    await sleep(50);
    const heapSamples: Array<[number, number]> = [];
    tracker.reset(task.n, task.soakEvery ?? 0, (count) => {
      gc();
      heapSamples.push([count, heapUsed()]);
    });
    const spans0 = sdk?.exporter.spans ?? 0;
    const bytes0 = sdk?.exporter.bytes ?? 0;
    let peakHeap = heapUsed();
    const sampler = setInterval(() => {
      peakHeap = Math.max(peakHeap, heapUsed());
    }, 10);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const tEnd = await phase(() => prepared.send(), tracker);
    await sleep(20); // spans ending right after the last message (handler return, ack) are ended
    await sdk?.flush();
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    peakHeap = Math.max(peakHeap, heapUsed());
    gc();
    const heapAfterGc = heapUsed();
    return {
      scenario: scenario.id,
      n: task.n,
      elapsedMs: tEnd - t0,
      cpuMicros: cpu.user + cpu.system,
      peakHeap,
      heapAfterGc,
      spans: (sdk?.exporter.spans ?? 0) - spans0,
      exportedBytes: (sdk?.exporter.bytes ?? 0) - bytes0,
      carried: tracker.carried,
      ...(task.soakEvery ? { heapSamples } : {}),
    };
  } finally {
    await prepared.close();
  }
}

async function main(): Promise<ChildReply> {
  const task = JSON.parse(process.argv[2] ?? '{}') as ChildTask;
  const suite = await importSuite(task.suite);
  const sdk = task.variant.sampling === 'none' ? undefined : registerSdk(task.variant.sampling);
  if (sdk && task.variant.library === 'incumbent') {
    suite.registerIncumbent?.({ require, tracerProvider: sdk.provider });
  }
  const results: Measurement[] = [];
  for (const scenario of task.scenarios) results.push(await measure(suite, task, sdk, scenario));
  // Which copies of @opentelemetry/api this process loaded (there must be exactly one).
  const apis = new Set<string>();
  for (const path of Object.keys(require.cache)) {
    const m = /@opentelemetry\+api@([^/]+)\/node_modules\/@opentelemetry\/api\//.exec(path);
    if (m?.[1]) apis.add(m[1]);
  }
  return { ok: true, results, apiVersion: [...apis].sort().join(', ') };
}

main().then(
  (reply) => {
    process.send?.(reply, () => process.exit(0));
  },
  (error: unknown) => {
    const reply: ChildReply = {
      ok: false,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    };
    process.send?.(reply, () => process.exit(1));
  },
);
