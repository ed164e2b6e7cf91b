// One child process of the broker benchmarks: one variant (raw, hoptrace or the incumbent
// instrumentation, with sampling on or off), every scenario of one broker, measured in turn.
// Started by main.ts with the task as JSON in argv[2]; replies over IPC. Needs --expose-gc.
import { createRequire } from 'node:module';
import { getHeapStatistics } from 'node:v8';
import type * as Instrumentation from '@opentelemetry/instrumentation';
import type * as AmqplibInstrumentation from '@opentelemetry/instrumentation-amqplib';
import type * as KafkaJsInstrumentation from '@opentelemetry/instrumentation-kafkajs';
import { prepareAmqp } from './amqp.ts';
import { prepareBullmq } from './bullmq.ts';
import { prepareKafka } from './kafka.ts';
import { type BenchSdk, registerSdk } from './sdk.ts';
import { type PrepareScenario, type SuiteEnv, Tracker } from './tracker.ts';
import type { BrokerName, ChildReply, ChildTask, Measurement, Scenario } from './types.ts';

const require = createRequire(import.meta.url);
const suites: Record<BrokerName, PrepareScenario> = {
  kafka: prepareKafka,
  amqp: prepareAmqp,
  bullmq: prepareBullmq,
};
/** Most messages sent but not yet processed, per broker. */
const WINDOW: Record<BrokerName, number> = { kafka: 5_000, amqp: 5_000, bullmq: 5_000 };

const gc = globalThis.gc ?? (() => undefined);
const heapUsed = () => getHeapStatistics().used_heap_size;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Registers the incumbent's require-time instrumentation; must run before the client is required. */
function registerIncumbent(broker: BrokerName, sdk: BenchSdk): void {
  const { registerInstrumentations } = require('@opentelemetry/instrumentation') as typeof Instrumentation;
  if (broker === 'kafka') {
    const { KafkaJsInstrumentation: Kafka } =
      require('@opentelemetry/instrumentation-kafkajs') as typeof KafkaJsInstrumentation;
    registerInstrumentations({ instrumentations: [new Kafka()], tracerProvider: sdk.provider });
  } else if (broker === 'amqp') {
    const { AmqplibInstrumentation: Amqp } =
      require('@opentelemetry/instrumentation-amqplib') as typeof AmqplibInstrumentation;
    registerInstrumentations({ instrumentations: [new Amqp()], tracerProvider: sdk.provider });
  }
  // BullMQ's incumbent is its built-in telemetry (bullmq-otel), passed to Queue and Worker.
}

let runs = 0;
async function measure(
  task: ChildTask,
  sdk: BenchSdk | undefined,
  scenario: Scenario,
  n: number,
  soakEvery = 0,
): Promise<Measurement> {
  const heapSamples: Array<[number, number]> = [];
  const tracker = new Tracker(n, WINDOW[task.broker], soakEvery, (count) => {
    gc();
    heapSamples.push([count, heapUsed()]);
  });
  const env: SuiteEnv = {
    variant: task.variant,
    endpoints: task.endpoints,
    require,
    unique: `${task.variant.library.replace('+', '-')}-${task.variant.sampling}-${process.pid}-${runs++}-${Date.now()}`,
  };
  const prepared = await suites[task.broker](env, scenario, tracker);
  await sdk?.flush();
  gc();
  await sleep(50);
  const spans0 = sdk?.exporter.spans ?? 0;
  const bytes0 = sdk?.exporter.bytes ?? 0;
  let peakHeap = heapUsed();
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, heapUsed());
  }, 10);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const sending = prepared.send();
  const tEnd = await tracker.done;
  await sending;
  await sleep(20); // spans ending right after the last message (handler return, ack) are ended
  await sdk?.flush();
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  peakHeap = Math.max(peakHeap, heapUsed());
  gc();
  const heapAfterGc = heapUsed();
  const spans = (sdk?.exporter.spans ?? 0) - spans0;
  const exportedBytes = (sdk?.exporter.bytes ?? 0) - bytes0;
  await prepared.close();
  return {
    scenario: scenario.id,
    n,
    elapsedMs: tEnd - t0,
    cpuMicros: cpu.user + cpu.system,
    peakHeap,
    heapAfterGc,
    spans,
    exportedBytes,
    ...(soakEvery > 0 ? { heapSamples } : {}),
  };
}

async function main(): Promise<ChildReply> {
  const task = JSON.parse(process.argv[2] ?? '{}') as ChildTask;
  const sdk = task.variant.sampling === 'none' ? undefined : registerSdk(task.variant.sampling);
  if (sdk && task.variant.library === 'incumbent') registerIncumbent(task.broker, sdk);
  const first = task.scenarios[0];
  if (first && task.warmup > 0) await measure(task, sdk, first, task.warmup);
  const results: Measurement[] = [];
  for (const scenario of task.scenarios) {
    results.push(await measure(task, sdk, scenario, task.n, task.soakEvery));
  }
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
