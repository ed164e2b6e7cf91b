// @platformatic/kafka suite: produce N messages (sends of 100 messages, up to 4 in flight) and
// consume them from a `consume()` stream with `for await`, on a fresh 3-partition topic and consumer
// group per scenario, the same shape as the kafkajs suite so that the rows compare.
//
// hoptrace: traceProducer/traceConsumer from @hoptrace/platformatic-kafka, each message handled in
// withMessageContext (its process span ends when the loop asks for the next message). The batch-mode
// scenario runs hoptrace with `batchSpans: 'batch'` and one withBatchContext span per 100 messages;
// every other variant runs it exactly as the stream scenario. Incumbent:
// @platformatic/kafka-opentelemetry's KafkaInstrumentation (it subscribes to the client's `plt:kafka`
// diagnostics channels, so it works from any load order), each message handled in its
// processWithTracing as its README shows.
//
// Header names and values are strings for every variant (stringSerializers for headers): the
// incumbent writes string headers into the caller's own messages, which the client's default
// (Buffer pass-through) header serializers cannot send.
import type * as Instrumentation from '@opentelemetry/instrumentation';
import type * as Plt from '@platformatic/kafka';
import type * as PltOtel from '@platformatic/kafka-opentelemetry';
import { sendInChunks } from '../brokers/chunks.ts';
import { floorTraceparent } from '../brokers/floor.ts';
import { importAdapter } from '../brokers/tracker.ts';
import type { BenchSuite, Counter, Prepared, Scenario, SuiteEnv } from '../brokers/types.ts';
import { packageVersion } from '../lib/versions.ts';

const CHUNK = 100;
const IN_FLIGHT = 4;
const BATCH = 100;

function scenarios(): Scenario[] {
  return [
    {
      id: 'platformatic-kafka-stream-100b',
      label: 'for await, 100 B',
      settings: { size: 100 },
      targetOn: 0.6,
    },
    {
      id: 'platformatic-kafka-stream-1kb',
      label: 'for await, 1 KB',
      settings: { size: 1024 },
      targetOn: 0.6,
    },
    {
      id: 'platformatic-kafka-stream-100b-batch-mode',
      label: "for await, 100 B, hoptrace batch mode (`batchSpans: 'batch'`, a span per 100 messages)",
      settings: { size: 100, batchSpans: 'batch' },
      targetOn: 0.35,
    },
  ];
}

type Message = Plt.Message<Buffer, Buffer, string, string>;

/** Builds one scenario: topic, producer, consumer stream (consuming), nothing sent yet. */
async function prepare(env: SuiteEnv, scenario: Scenario, tracker: Counter): Promise<Prepared> {
  const plt = env.require('@platformatic/kafka') as typeof Plt;
  const bootstrapBrokers = env.endpoints.kafka?.brokers ?? [];
  const topic = `bench-plt-${env.unique}`;
  const admin = new plt.Admin({ clientId: 'hoptrace-bench', bootstrapBrokers });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });

  const serializers = { headerKey: plt.stringSerializer, headerValue: plt.stringSerializer };
  const deserializers = { headerKey: plt.stringDeserializer, headerValue: plt.stringDeserializer };
  let producer = new plt.Producer<Buffer, Buffer, string, string>({
    clientId: 'hoptrace-bench',
    bootstrapBrokers,
    serializers,
  });
  let consumer = new plt.Consumer<Buffer, Buffer, string, string>({
    clientId: 'hoptrace-bench',
    groupId: topic,
    bootstrapBrokers,
    maxWaitTime: 200,
    deserializers,
  });
  const count = (message: Message) => tracker.message(message.headers.get('traceparent') !== undefined);
  let handle: (message: Message) => void = count;
  let flusher: ReturnType<typeof setInterval> | undefined;
  if (env.variant.library === 'hoptrace') {
    const batchMode = scenario.settings.batchSpans === 'batch';
    const adapter = await importAdapter('platformatic_kafka', () => import('@hoptrace/platformatic-kafka'));
    producer = adapter.traceProducer(producer);
    consumer = adapter.traceConsumer(consumer, batchMode ? { batchSpans: 'batch' } : {});
    if (batchMode) {
      let pending: Message[] = [];
      const flush = () => {
        const batch = pending;
        pending = [];
        adapter.withBatchContext(batch, () => {
          for (const m of batch) count(m);
        });
      };
      handle = (message) => {
        pending.push(message);
        if (pending.length >= BATCH) flush();
      };
      // The last partial batch of a run is flushed when the stream goes quiet.
      flusher = setInterval(() => {
        if (pending.length > 0) flush();
      }, 50);
      flusher.unref();
    } else {
      handle = (message) => adapter.withMessageContext(message, () => count(message));
    }
  } else if (env.variant.library === 'incumbent') {
    const { processWithTracing } = env.require('@platformatic/kafka-opentelemetry') as typeof PltOtel;
    handle = (message) => processWithTracing(message as never, () => count(message));
  }
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
  const loop = (async () => {
    try {
      for await (const message of stream) handle(message);
    } catch {
      // the stream closed
    }
  })();

  const value = Buffer.alloc(Number(scenario.settings.size), 'x');
  const withHeader = env.variant.library === 'raw+header';
  return {
    send: () =>
      sendInChunks(tracker, CHUNK, IN_FLIGHT, (start, n) => {
        const messages: Plt.MessageToProduce<Buffer, Buffer, string, string>[] = new Array(n);
        for (let k = 0; k < n; k++) {
          messages[k] = withHeader
            ? { topic, value, headers: { traceparent: floorTraceparent(start + k) } }
            : { topic, value };
        }
        return producer.send({ messages });
      }),
    async close() {
      if (flusher) clearInterval(flusher);
      await stream.close();
      await loop;
      await consumer.close();
      await producer.close();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.deleteGroups({ groups: [topic] }).catch(() => undefined);
      await admin.close();
    },
  };
}

/** @platformatic/kafka 2.x: raw, header floor, @hoptrace/platformatic-kafka, @platformatic/kafka-opentelemetry. */
export const suite: BenchSuite = {
  name: 'platformatic-kafka',
  title: `Kafka (@platformatic/kafka ${packageVersion('@platformatic/kafka')})`,
  broker: 'kafka',
  incumbent: '@platformatic/kafka-opentelemetry',
  incumbentSetup: () =>
    `@platformatic/kafka-opentelemetry ${packageVersion('@platformatic/kafka-opentelemetry')} (KafkaInstrumentation on the ` +
    "client's plt:kafka diagnostics channels, registered with @opentelemetry/instrumentation " +
    `${packageVersion('@opentelemetry/instrumentation')}; messages handled in processWithTracing)`,
  order: 40,
  messages: { full: 20_000, quick: 4_000, smoke: 300 },
  window: 5_000,
  soakScenario: 'platformatic-kafka-stream-100b',
  scenarios,
  registerIncumbent({ require, tracerProvider }) {
    const { registerInstrumentations } = require('@opentelemetry/instrumentation') as typeof Instrumentation;
    const { KafkaInstrumentation } = require('@platformatic/kafka-opentelemetry') as typeof PltOtel;
    registerInstrumentations({ instrumentations: [new KafkaInstrumentation()], tracerProvider });
  },
  prepare,
};
