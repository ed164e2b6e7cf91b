// @platformatic/kafka suite: produce N messages (sends of 100 messages, up to 4 in flight) and
// consume them from a `consume()` stream with `for await`, on a fresh 3-partition topic and consumer
// group per scenario run. The same shape as the kafkajs suite, so the rows compare.
//
// Variants: `raw` (no SDK), `raw+header` (a W3C traceparent header per message, no SDK),
// `hoptrace` (@hoptrace/platformatic-kafka: traceProducer, traceConsumer, each message handled in
// withMessageContext), `incumbent` (@platformatic/kafka-opentelemetry's KafkaInstrumentation, each
// message handled in its processWithTracing, as its README shows), each with sampling on and off.
import type { BenchSdk } from './sdk.ts';
import { importAdapter, type Prepared, type SuiteEnv, type Tracker } from './tracker.ts';
import type { Scenario } from './types.ts';

type Plt = typeof import('@platformatic/kafka');
type PltOtel = typeof import('@platformatic/kafka-opentelemetry');
type Instrumentation = typeof import('@opentelemetry/instrumentation');

const CHUNK = 100;
const IN_FLIGHT = 4;
const TRACEPARENT_PREFIX = '00-4bf92f3577b34da6a3ce929d0e0e4736-';

/** Stream scenarios: message size. */
export function platformaticKafkaScenarios(): Scenario[] {
  return [100, 1024].map((size) => ({
    id: `platformatic-kafka-stream-${size}b`,
    label: `for await, ${size === 1024 ? '1 KB' : `${size} B`}`,
    settings: { size },
  }));
}

/**
 * Registers the incumbent (@platformatic/kafka-opentelemetry 0.5.0). It subscribes to the client's
 * diagnostics channels, so it needs no load-order trick; it runs on the bench's SDK 2.x through
 * `@opentelemetry/instrumentation`'s `registerInstrumentations`.
 */
export function registerPlatformaticIncumbent(require: NodeJS.Require, sdk: BenchSdk): void {
  const { registerInstrumentations } = require('@opentelemetry/instrumentation') as Instrumentation;
  const { KafkaInstrumentation } = require('@platformatic/kafka-opentelemetry') as PltOtel;
  registerInstrumentations({ instrumentations: [new KafkaInstrumentation()], tracerProvider: sdk.provider });
}

/** Builds one scenario: topic, producer, consumer stream (consuming), nothing sent yet. */
export async function preparePlatformaticKafka(
  env: SuiteEnv,
  scenario: Scenario,
  tracker: Tracker,
): Promise<Prepared> {
  const plt = env.require('@platformatic/kafka') as Plt;
  const bootstrapBrokers = env.endpoints.kafka?.brokers ?? [];
  const topic = `bench-plt-${env.unique}`;
  const admin = new plt.Admin({ clientId: 'hoptrace-bench', bootstrapBrokers });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });

  // Header names and values as strings for every variant: the incumbent writes string headers into
  // the caller's messages, which the default (Buffer pass-through) serializers cannot send.
  const text = { headerKey: plt.stringSerializer, headerValue: plt.stringSerializer };
  const textIn = { headerKey: plt.stringDeserializer, headerValue: plt.stringDeserializer };
  let producer = new plt.Producer({ clientId: 'hoptrace-bench', bootstrapBrokers, serializers: text });
  let consumer = new plt.Consumer({
    clientId: 'hoptrace-bench',
    groupId: topic,
    bootstrapBrokers,
    maxWaitTime: 200,
    deserializers: textIn,
  });
  let handle = (message: object): void => {
    void message;
    tracker.message();
  };
  if (env.variant.library === 'hoptrace') {
    const adapter = await importAdapter('platformatic_kafka', () => import('@hoptrace/platformatic-kafka'));
    producer = adapter.traceProducer(producer);
    consumer = adapter.traceConsumer(consumer);
    handle = (message) => adapter.withMessageContext(message, () => tracker.message());
  } else if (env.variant.library === 'incumbent') {
    const { processWithTracing } = env.require('@platformatic/kafka-opentelemetry') as PltOtel;
    handle = (message) =>
      processWithTracing(message as Parameters<typeof processWithTracing>[0], () => tracker.message());
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
    async send() {
      const inFlight = new Set<Promise<unknown>>();
      for (let i = 0; i < tracker.n; i += CHUNK) {
        const count = Math.min(CHUNK, tracker.n - i);
        const wait = tracker.room(count);
        if (wait) await wait;
        const messages = new Array(count);
        for (let k = 0; k < count; k++) {
          if (withHeader) {
            const spanId = (0x1000000000000 + i + k).toString(16).padStart(16, '0');
            messages[k] = { topic, value, headers: { traceparent: `${TRACEPARENT_PREFIX}${spanId}-01` } };
          } else messages[k] = { topic, value };
        }
        const sending: Promise<unknown> = producer.send({ messages }).finally(() => {
          inFlight.delete(sending);
        });
        inFlight.add(sending);
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    },
    async close() {
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
