// Kafka suite: produce N messages (sends of 100 messages, up to 4 in flight) and consume them with
// eachMessage or eachBatch, on a fresh 3-partition topic and consumer group per scenario run.
import type * as KafkaJs from 'kafkajs';
import { importAdapter, type Prepared, type SuiteEnv, type Tracker } from './tracker.ts';
import type { Scenario } from './types.ts';

const CHUNK = 100;
const IN_FLIGHT = 4;
/** `raw+header`: a W3C traceparent per message (fixed trace id, a span id per message). */
const TRACEPARENT_PREFIX = '00-4bf92f3577b34da6a3ce929d0e0e4736-';

/** Kafka scenarios: message size x consumer mode. */
export function kafkaScenarios(): Scenario[] {
  const out: Scenario[] = [];
  for (const mode of ['eachMessage', 'eachBatch'] as const) {
    for (const size of [100, 1024]) {
      out.push({
        id: `kafka-${mode}-${size}b`,
        label: `${mode}, ${size === 1024 ? '1 KB' : `${size} B`}`,
        settings: { mode, size },
      });
    }
  }
  return out;
}

/** Builds one Kafka scenario: topic, producer, consumer (joined and running). */
export async function prepareKafka(env: SuiteEnv, scenario: Scenario, tracker: Tracker): Promise<Prepared> {
  const kafkajs = env.require('kafkajs') as typeof KafkaJs;
  let kafka = new kafkajs.Kafka({
    clientId: 'hoptrace-bench',
    brokers: env.endpoints.kafka!.brokers,
    logLevel: kafkajs.logLevel.NOTHING,
  });
  if (env.variant.library === 'hoptrace') {
    const { traceKafka } = await importAdapter('kafka', () => import('@hoptrace/kafka'));
    kafka = traceKafka(kafka);
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
          tracker.message();
          resolveOffset(message.offset);
        }
        await heartbeat();
      },
    });
  } else {
    await consumer.run({
      eachMessage: async () => {
        tracker.message();
      },
    });
  }
  await joined;
  const value = Buffer.alloc(Number(scenario.settings.size), 'x');
  const withHeader = env.variant.library === 'raw+header';

  return {
    async send() {
      const inFlight = new Set<Promise<unknown>>();
      for (let i = 0; i < tracker.n; i += CHUNK) {
        const count = Math.min(CHUNK, tracker.n - i);
        const wait = tracker.room(count);
        if (wait) await wait;
        const messages: KafkaJs.Message[] = new Array(count);
        if (withHeader) {
          for (let k = 0; k < count; k++) {
            const spanId = (0x1000000000000 + i + k).toString(16).padStart(16, '0');
            messages[k] = { value, headers: { traceparent: `${TRACEPARENT_PREFIX}${spanId}-01` } };
          }
        } else {
          for (let k = 0; k < count; k++) messages[k] = { value };
        }
        const sending: Promise<unknown> = producer.send({ topic, messages }).finally(() => {
          inFlight.delete(sending);
        });
        inFlight.add(sending);
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    },
    async close() {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.deleteGroups([topic]).catch(() => undefined);
      await admin.disconnect();
    },
  };
}
