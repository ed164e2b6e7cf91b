// Kafka suite (kafkajs): produce N messages (sends of 100 messages, up to 4 in flight) and consume
// them with eachMessage or eachBatch, on a fresh 3-partition topic and consumer group per scenario.
// The batch-mode scenario runs hoptrace with `batchSpans: 'batch'` (one process span per batch with
// a link per message); every other variant runs it exactly as the eachBatch scenario.
import type * as KafkaInstrumentation from '@opentelemetry/instrumentation-kafkajs';
import type * as KafkaJs from 'kafkajs';
import { sendInChunks } from '../brokers/chunks.ts';
import { floorTraceparent } from '../brokers/floor.ts';
import { registerRequireTime } from '../brokers/incumbent.ts';
import { importAdapter } from '../brokers/tracker.ts';
import type { BenchSuite, Counter, Prepared, Scenario, SuiteEnv } from '../brokers/types.ts';
import { packageVersion } from '../lib/versions.ts';

const CHUNK = 100;
const IN_FLIGHT = 4;

function scenarios(): Scenario[] {
  return [
    {
      id: 'kafka-eachMessage-100b',
      label: 'eachMessage, 100 B',
      settings: { mode: 'eachMessage', size: 100 },
      targetOn: 0.6,
    },
    {
      id: 'kafka-eachMessage-1kb',
      label: 'eachMessage, 1 KB',
      settings: { mode: 'eachMessage', size: 1024 },
      targetOn: 0.6,
    },
    {
      id: 'kafka-eachBatch-100b',
      label: 'eachBatch, 100 B (hoptrace default: a span per message)',
      settings: { mode: 'eachBatch', size: 100 },
    },
    {
      id: 'kafka-eachBatch-100b-batch-mode',
      label: "eachBatch, 100 B, hoptrace batch mode (`batchSpans: 'batch'`)",
      settings: { mode: 'eachBatch', size: 100, batchSpans: 'batch' },
      targetOn: 0.35,
    },
  ];
}

/** Builds one Kafka scenario: topic, producer, consumer (joined and running). */
async function prepare(env: SuiteEnv, scenario: Scenario, tracker: Counter): Promise<Prepared> {
  const kafkajs = env.require('kafkajs') as typeof KafkaJs;
  let kafka = new kafkajs.Kafka({
    clientId: 'hoptrace-bench',
    brokers: env.endpoints.kafka!.brokers,
    logLevel: kafkajs.logLevel.NOTHING,
  });
  if (env.variant.library === 'hoptrace') {
    const { traceKafka } = await importAdapter('kafka', () => import('@hoptrace/kafka'));
    kafka = traceKafka(kafka, scenario.settings.batchSpans === 'batch' ? { batchSpans: 'batch' } : {});
  }
  const topic = `bench-${env.unique}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });

  const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: topic, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const joined = new Promise<void>((resolve) => {
    consumer.on(consumer.events.GROUP_JOIN, () => resolve());
  });
  if (scenario.settings.mode === 'eachBatch') {
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        for (const message of batch.messages) {
          tracker.message(message.headers?.traceparent !== undefined);
          resolveOffset(message.offset);
        }
        await heartbeat();
      },
    });
  } else {
    await consumer.run({
      eachMessage: async ({ message }) => {
        tracker.message(message.headers?.traceparent !== undefined);
      },
    });
  }
  await joined;
  const value = Buffer.alloc(Number(scenario.settings.size), 'x');
  const withHeader = env.variant.library === 'raw+header';

  return {
    send: () =>
      sendInChunks(tracker, CHUNK, IN_FLIGHT, (start, count) => {
        const messages: KafkaJs.Message[] = new Array(count);
        for (let k = 0; k < count; k++) {
          messages[k] = withHeader
            ? { value, headers: { traceparent: floorTraceparent(start + k) } }
            : { value };
        }
        return producer.send({ topic, messages });
      }),
    async close() {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.deleteGroups([topic]).catch(() => undefined);
      await admin.disconnect();
    },
  };
}

/** kafkajs 2.2.4: raw, header floor, hoptrace, @opentelemetry/instrumentation-kafkajs. */
export const suite: BenchSuite = {
  name: 'kafka',
  title: 'Kafka (kafkajs 2.2.4)',
  broker: 'kafka',
  incumbent: '@opentelemetry/instrumentation-kafkajs',
  incumbentSetup: () =>
    `@opentelemetry/instrumentation-kafkajs ${packageVersion('@opentelemetry/instrumentation-kafkajs')} ` +
    `(@opentelemetry/instrumentation ${packageVersion('@opentelemetry/instrumentation')}), registered before kafkajs ` +
    `${packageVersion('kafkajs')} is required`,
  order: 10,
  messages: { full: 20_000, quick: 4_000, smoke: 300 },
  window: 5_000,
  soakScenario: 'kafka-eachMessage-100b',
  scenarios,
  registerIncumbent({ require, tracerProvider }) {
    const { KafkaJsInstrumentation } =
      require('@opentelemetry/instrumentation-kafkajs') as typeof KafkaInstrumentation;
    registerRequireTime(require, new KafkaJsInstrumentation(), tracerProvider);
  },
  prepare,
};
