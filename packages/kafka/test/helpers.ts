import { randomUUID } from 'node:crypto';
import { brokerEndpoint } from '@hoptrace/test-kit';
import type {
  Consumer,
  ConsumerRunConfig,
  EachBatchPayload,
  KafkaMessage,
  Producer,
  ProducerBatch,
  ProducerRecord,
  RecordMetadata,
  Transaction,
} from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach } from 'vitest';

/** A fresh kafkajs client for the shared test broker. */
export function newKafka(clientId = 'hoptrace-test'): Kafka {
  return new Kafka({ clientId, brokers: brokerEndpoint('kafka').brokers, logLevel: logLevel.NOTHING });
}

/**
 * `server.address` and `server.port` as a traced client reports them for the shared test broker
 * (its seed broker, the first of `brokerEndpoint('kafka').brokers`).
 */
export function seedBrokerAttributes(): { 'server.address': string; 'server.port': number } {
  const [host, port] = (brokerEndpoint('kafka').brokers[0] as string).split(':') as [string, string];
  return { 'server.address': host, 'server.port': Number(port) };
}

/**
 * Creates `count` uniquely named topics with `partitions` partitions each (and the topic
 * `configEntries` given, e.g. `max.message.bytes`).
 */
export async function createTopics(
  kafka: Kafka,
  count = 1,
  partitions = 1,
  configEntries?: { name: string; value: string }[],
): Promise<string[]> {
  const topics = Array.from({ length: count }, () => `hoptrace-kafka-${randomUUID()}`);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({
        topic,
        numPartitions: partitions,
        ...(configEntries ? { configEntries } : {}),
      })),
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  return topics;
}

/** A unique consumer group id. */
export function groupId(): string {
  return `hoptrace-kafka-${randomUUID()}`;
}

/** The offsets `group` committed on `topic`, by partition (read with an admin of `kafka`, a raw client by default). */
export async function committedOffsets(
  group: string,
  topic: string,
  kafka: Kafka = newKafka(),
): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return (offsets[0]?.partitions ?? []).sort((a, b) => a.partition - b.partition).map((p) => p.offset);
  } finally {
    await admin.disconnect();
  }
}

/** Sends `n` messages (`v0`, `v1`, ...) to `topic` with a producer of `kafka` (a raw client by default). */
export async function produceValues(topic: string, n: number, kafka: Kafka = newKafka()): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ value: `v${i}` })) });
  await producer.disconnect();
}

/** What a fake producer saw and what it answers. */
export interface FakeProducer {
  producer: Producer;
  sent: ProducerRecord[];
  batches: ProducerBatch[];
  /** Set to make the next call reject with it. */
  failWith: Error | undefined;
  committed: boolean;
}

/** A kafkajs-shaped producer that records calls and replies with one partition per topic. */
export function fakeProducer(): FakeProducer {
  const state: FakeProducer = {
    producer: undefined as unknown as Producer,
    sent: [],
    batches: [],
    failWith: undefined,
    committed: false,
  };
  const reply = (topics: string[], counts: number[]): RecordMetadata[] =>
    topics
      .map((topicName, i) => ({
        topicName,
        partition: 0,
        errorCode: 0,
        baseOffset: String(10 * (i + 1)),
        logAppendTime: '-1',
        logStartOffset: '0',
      }))
      .filter((_, i) => (counts[i] ?? 0) > 0);
  const sender = {
    async send(record: ProducerRecord) {
      if (state.failWith) throw state.failWith;
      state.sent.push(record);
      return reply([record.topic], [record.messages.length]);
    },
    async sendBatch(batch: ProducerBatch) {
      if (state.failWith) throw state.failWith;
      state.batches.push(batch);
      const groups = batch.topicMessages ?? [];
      return reply(
        groups.map((g) => g.topic),
        groups.map((g) => g.messages.length),
      );
    },
  };
  const transaction: Transaction = {
    ...sender,
    sendOffsets: async () => undefined,
    commit: async () => {
      state.committed = true;
    },
    abort: async () => undefined,
    isActive: () => true,
  };
  state.producer = {
    ...sender,
    connect: async () => undefined,
    disconnect: async () => undefined,
    isIdempotent: () => false,
    events: {} as Producer['events'],
    on: (() => () => undefined) as unknown as Producer['on'],
    transaction: async () => transaction,
    logger: (() => undefined) as unknown as Producer['logger'],
  };
  return state;
}

/** A kafkajs-shaped consumer whose `run` config the test drives by hand. */
export interface FakeConsumer {
  consumer: Consumer;
  config: ConsumerRunConfig | undefined;
  stopped: boolean;
}

export function fakeConsumer(): FakeConsumer {
  const state: FakeConsumer = {
    consumer: undefined as unknown as Consumer,
    config: undefined,
    stopped: false,
  };
  state.consumer = {
    run: async (config?: ConsumerRunConfig) => {
      state.config = config;
    },
    stop: async () => {
      state.stopped = true;
    },
    disconnect: async () => undefined,
    subscribe: async () => undefined,
    on: (() => () => undefined) as unknown as Consumer['on'],
  } as unknown as Consumer;
  return state;
}

/** A kafkajs message as consumers receive it. */
export function message(
  offset: number,
  headers: KafkaMessage['headers'] = {},
  key: Buffer | null = null,
): KafkaMessage {
  return {
    key,
    value: Buffer.from(`v${offset}`),
    timestamp: '0',
    attributes: 0,
    offset: String(offset),
    headers,
  } as KafkaMessage;
}

/** An eachBatch payload over `messages` that records what reached kafkajs's functions. */
export function batchPayload(topic: string, messages: KafkaMessage[]) {
  const resolved: string[] = [];
  const heartbeat = async () => undefined;
  const payload: EachBatchPayload = {
    batch: {
      topic,
      partition: 3,
      highWatermark: String(messages.length),
      messages,
      isEmpty: () => messages.length === 0,
      firstOffset: () => messages[0]?.offset ?? null,
      lastOffset: () => messages[messages.length - 1]?.offset ?? '-1',
      offsetLag: () => '0',
      offsetLagLow: () => '0',
    },
    resolveOffset: (offset) => void resolved.push(offset),
    heartbeat,
    pause: () => () => undefined,
    commitOffsetsIfNecessary: async () => undefined,
    uncommittedOffsets: () => ({ topics: [] }),
    isRunning: () => true,
    isStale: () => false,
  };
  return { payload, resolved, heartbeat };
}

/** Connects producers and consumers for one test file and disconnects them after each test. */
export function useKafkaClients(): {
  producer<P extends Producer>(producer: P): Promise<P>;
  consumer<C extends Consumer>(consumer: C, topics: string[]): Promise<C>;
} {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });
  return {
    async producer(producer) {
      await producer.connect();
      cleanup.push(() => producer.disconnect());
      return producer;
    },
    async consumer(consumer, topics) {
      await consumer.connect();
      cleanup.push(() => consumer.disconnect());
      await consumer.subscribe({ topics, fromBeginning: true });
      return consumer;
    },
  };
}
