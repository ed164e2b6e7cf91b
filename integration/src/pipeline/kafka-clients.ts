import type { traceKafka } from '@hoptrace/kafka';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/platformatic-kafka';
import {
  Consumer,
  type MessagesStream,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';

/** Which Kafka client the pipeline's Kafka hops use (both traced by hoptrace; the default is kafkajs). */
export type KafkaClientKind = 'kafkajs' | 'platformatic';

/** The Kafka clients' names, for options and the demo's `--kafka` flag. */
export const KAFKA_CLIENTS: readonly KafkaClientKind[] = ['kafkajs', 'platformatic'];

/** What the pipeline does with Kafka, whichever client does it. */
export interface KafkaHop {
  /** Sends one message (a string value, an optional key) and resolves when the broker acknowledged it. */
  send(topic: string, value: string, key?: string): Promise<void>;
  /**
   * Consumes `topic` from the beginning in group `groupId`, one message at a time, running `handle`
   * inside the message's process span; resolves once the consumer is in its group.
   */
  consume(topic: string, groupId: string, handle: (value: string) => Promise<void>): Promise<void>;
  /** Closes every client the hop opened. */
  stop(): Promise<void>;
}

type TracedKafka = ReturnType<typeof traceKafka>;

/**
 * Opens the Kafka side of the pipeline with the chosen client: kafkajs through the traced `kafka`
 * (as before), or @platformatic/kafka traced by @hoptrace/platformatic-kafka. Order ids are message
 * keys here and carry no personal data, so both opt in to recording keys.
 */
export async function openKafkaHop(
  kind: KafkaClientKind,
  kafka: TracedKafka,
  brokers: string[],
): Promise<KafkaHop> {
  return kind === 'platformatic' ? platformaticHop(brokers) : kafkajsHop(kafka);
}

async function kafkajsHop(kafka: TracedKafka): Promise<KafkaHop> {
  const producer = kafka.producer();
  await producer.connect();
  const consumers: Array<ReturnType<TracedKafka['consumer']>> = [];
  return {
    async send(topic, value, key) {
      await producer.send({ topic, messages: [key === undefined ? { value } : { key, value }] });
    },
    async consume(topic, groupId, handle) {
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const joined = new Promise<void>((resolve) => {
        const off = consumer.on(consumer.events.GROUP_JOIN, () => {
          off();
          resolve();
        });
      });
      await consumer.run({ eachMessage: ({ message }) => handle(message.value?.toString() ?? '') });
      await joined;
    },
    async stop() {
      for (const consumer of consumers) await consumer.disconnect().catch(() => undefined);
      await producer.disconnect();
    },
  };
}

async function platformaticHop(brokers: string[]): Promise<KafkaHop> {
  const producer = traceProducer(
    new Producer({ clientId: 'order-service', bootstrapBrokers: brokers, serializers: stringSerializers }),
    { captureKeys: true },
  );
  const consumers: Array<{ consumer: Consumer<string, string, string, string>; loop: Promise<void> }> = [];
  return {
    async send(topic, value, key) {
      await producer.send({ messages: [key === undefined ? { topic, value } : { topic, key, value }] });
    },
    async consume(topic, groupId, handle) {
      const consumer = traceConsumer(
        new Consumer<string, string, string, string>({
          clientId: 'order-service',
          groupId,
          bootstrapBrokers: brokers,
          deserializers: stringDeserializers,
          maxWaitTime: 100,
        }),
        { captureKeys: true },
      );
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      consumers.push({ consumer, loop: drain(stream, handle) });
    },
    async stop() {
      for (const { consumer, loop } of consumers) {
        await consumer.close(true).catch(() => undefined);
        await loop;
      }
      await producer.close();
    },
  };
}

/** The consumer loop: each message handled inside its process span; a failed one is logged by `handle`. */
async function drain(
  stream: MessagesStream<string, string, string, string>,
  handle: (value: string) => Promise<void>,
): Promise<void> {
  try {
    for await (const message of stream) {
      await withMessageContext(message, () => handle(message.value ?? '')).catch(() => undefined);
    }
  } catch {
    // the stream closed with the consumer
  }
}
