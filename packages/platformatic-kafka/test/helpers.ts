import { randomUUID } from 'node:crypto';
import { brokerEndpoint, until } from '@hoptrace/test-kit';
import {
  Admin,
  Consumer,
  type ConsumerOptions,
  type Message,
  type MessagesStream,
  Producer,
  type ProducerOptions,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';

/** The shared test broker's bootstrap list. */
export function brokers(): string[] {
  return brokerEndpoint('kafka').brokers;
}

/** Creates `count` uniquely named topics with `partitions` partitions each. */
export async function createTopics(count = 1, partitions = 1, bootstrap = brokers()): Promise<string[]> {
  const topics = Array.from({ length: count }, () => `hoptrace-plt-${randomUUID()}`);
  const admin = new Admin({ clientId: 'hoptrace-plt-admin', bootstrapBrokers: bootstrap });
  try {
    await admin.createTopics({ topics, partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
  return topics;
}

/** A unique consumer group id. */
export function groupId(): string {
  return `hoptrace-plt-${randomUUID()}`;
}

/** Closes what a test made, last first. */
export const cleanup: Array<() => Promise<unknown>> = [];
export async function runCleanup(): Promise<void> {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
}

/** A string producer (string keys, values, header names and values) for the test broker. */
export function stringProducer(
  options: Partial<ProducerOptions<string, string, string, string>> = {},
): Producer<string, string, string, string> {
  const producer = new Producer<string, string, string, string>({
    clientId: 'plt-producer',
    bootstrapBrokers: brokers(),
    serializers: stringSerializers,
    ...options,
  });
  cleanup.push(() => producer.close());
  return producer;
}

/** A string consumer of a fresh group. */
export function stringConsumer(
  options: Partial<ConsumerOptions<string, string, string, string>> = {},
): Consumer<string, string, string, string> {
  const consumer = new Consumer<string, string, string, string>({
    clientId: 'plt-consumer',
    groupId: groupId(),
    bootstrapBrokers: brokers(),
    deserializers: stringDeserializers,
    maxWaitTime: 200,
    ...options,
  } as ConsumerOptions<string, string, string, string>);
  cleanup.push(() => consumer.close(true));
  return consumer;
}

/** A stream from the beginning of `topics`, closed at cleanup. */
export async function streamOf<K, V, HK, HV>(
  consumer: Consumer<K, V, HK, HV>,
  topics: string[],
): Promise<MessagesStream<K, V, HK, HV>> {
  const stream = await consumer.consume({ topics, mode: 'earliest' });
  cleanup.push(() => stream.close());
  return stream;
}

/** The first `count` messages a plain (untraced, Buffer) consumer of a fresh group reads from `topic`. */
export async function rawMessages(
  topic: string,
  count: number,
): Promise<Message<Buffer, Buffer, Buffer, Buffer>[]> {
  const consumer = new Consumer({
    clientId: 'plt-raw-consumer',
    groupId: groupId(),
    bootstrapBrokers: brokers(),
    maxWaitTime: 200,
  });
  cleanup.push(() => consumer.close(true));
  const stream = await streamOf(consumer, [topic]);
  const out: Message<Buffer, Buffer, Buffer, Buffer>[] = [];
  stream.on('data', (message) => out.push(message));
  await until(() => out.length >= count);
  return out;
}
