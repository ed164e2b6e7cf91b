// BullMQ suite: add N jobs with addBulk in chunks of 100 (up to 2 chunks in flight) and process them
// with a Worker (concurrency 10) whose processor returns at once; a job counts when the worker
// emits 'completed'. Jobs are removed on completion so Redis stays small in soak runs.
import type * as BullMq from 'bullmq';
import type * as BullMqOtel from 'bullmq-otel';
import { importAdapter, type Prepared, type SuiteEnv, type Tracker } from './tracker.ts';
import type { Scenario } from './types.ts';

const CHUNK = 100;
const IN_FLIGHT = 2;

/** BullMQ scenarios: worker concurrency. */
export function bullmqScenarios(): Scenario[] {
  return [
    {
      id: 'bullmq-concurrency-10',
      label: 'addBulk x100, worker concurrency 10',
      settings: { concurrency: 10 },
    },
  ];
}

/** Builds one BullMQ scenario: queue and a running worker on a fresh queue name. */
export async function prepareBullmq(env: SuiteEnv, scenario: Scenario, tracker: Tracker): Promise<Prepared> {
  const bullmq = env.require('bullmq') as typeof BullMq;
  const name = `bench-${env.unique}`;
  const connection = { host: env.endpoints.redis!.host, port: env.endpoints.redis!.port };
  let telemetry: BullMq.Telemetry | undefined;
  if (env.variant.library === 'incumbent') {
    const { BullMQOtel } = env.require('bullmq-otel') as typeof BullMqOtel;
    telemetry = new BullMQOtel({ tracerName: 'bench' }) as unknown as BullMq.Telemetry;
  }
  const common = telemetry ? { connection, telemetry } : { connection };
  let queue = new bullmq.Queue(name, {
    ...common,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  let processor: BullMq.Processor = async () => undefined;
  if (env.variant.library === 'hoptrace') {
    const { traceQueue, traceProcessor } = await importAdapter('bullmq', () => import('@hoptrace/bullmq'));
    queue = traceQueue(queue);
    processor = traceProcessor(processor);
  }
  const worker = new bullmq.Worker(name, processor, {
    ...common,
    concurrency: Number(scenario.settings.concurrency),
  });
  worker.on('completed', () => tracker.message());
  await queue.waitUntilReady();
  await worker.waitUntilReady();

  return {
    async send() {
      const inFlight = new Set<Promise<unknown>>();
      for (let i = 0; i < tracker.n; i += CHUNK) {
        const count = Math.min(CHUNK, tracker.n - i);
        const wait = tracker.room(count);
        if (wait) await wait;
        const jobs = new Array<{ name: string; data: { i: number } }>(count);
        for (let k = 0; k < count; k++) jobs[k] = { name: 'job', data: { i: i + k } };
        const adding: Promise<unknown> = queue.addBulk(jobs).finally(() => {
          inFlight.delete(adding);
        });
        inFlight.add(adding);
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    },
    async close() {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
}
