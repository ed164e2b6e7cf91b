// BullMQ suite: add N jobs with addBulk in chunks of 100 (up to 2 chunks in flight) and process them
// with a Worker (concurrency 10) whose processor returns at once; a job counts when the worker
// emits 'completed'. Jobs are removed on completion so Redis stays small in soak runs. The header
// floor carries a traceparent where bullmq-otel and hoptrace put it: `opts.telemetry.metadata`.
import type * as BullMq from 'bullmq';
import type * as BullMqOtel from 'bullmq-otel';
import { sendInChunks } from '../brokers/chunks.ts';
import { floorTraceparent } from '../brokers/floor.ts';
import { importAdapter } from '../brokers/tracker.ts';
import type { BenchSuite, Counter, Prepared, Scenario, SuiteEnv } from '../brokers/types.ts';
import { packageVersion } from '../lib/versions.ts';

const CHUNK = 100;
const IN_FLIGHT = 2;

function scenarios(): Scenario[] {
  return [
    {
      id: 'bullmq-concurrency-10',
      label: 'addBulk x100, worker concurrency 10',
      settings: { concurrency: 10 },
    },
  ];
}

interface BulkJob {
  name: string;
  data: { i: number };
  opts?: { telemetry: { metadata: string } };
}

/** Builds one BullMQ scenario: queue and a running worker on a fresh queue name. */
async function prepare(env: SuiteEnv, scenario: Scenario, tracker: Counter): Promise<Prepared> {
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
  worker.on('completed', (job) => tracker.message(typeof job.opts.telemetry?.metadata === 'string'));
  await queue.waitUntilReady();
  await worker.waitUntilReady();
  const withHeader = env.variant.library === 'raw+header';

  return {
    send: () =>
      sendInChunks(tracker, CHUNK, IN_FLIGHT, (start, count) => {
        const jobs = new Array<BulkJob>(count);
        for (let k = 0; k < count; k++) {
          const data = { i: start + k };
          jobs[k] = withHeader
            ? {
                name: 'job',
                data,
                opts: {
                  telemetry: { metadata: JSON.stringify({ traceparent: floorTraceparent(start + k) }) },
                },
              }
            : { name: 'job', data };
        }
        return queue.addBulk(jobs);
      }),
    async close() {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
}

/** BullMQ 6.7.6: raw, header floor, hoptrace, bullmq-otel (BullMQ's own `telemetry` option). */
export const suite: BenchSuite = {
  name: 'bullmq',
  title: 'BullMQ 6.7.6 (Redis)',
  broker: 'redis',
  incumbent: 'bullmq-otel',
  incumbentSetup: () =>
    `bullmq-otel ${packageVersion('bullmq-otel')} as the \`telemetry\` option of the Queue and the Worker ` +
    `(bullmq ${packageVersion('bullmq')})`,
  order: 30,
  messages: { full: 5_000, quick: 1_500, smoke: 200 },
  window: 5_000,
  soakScenario: 'bullmq-concurrency-10',
  scenarios,
  prepare,
};
