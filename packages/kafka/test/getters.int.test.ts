import { ATTR_KAFKA_MESSAGE_KEY, ATTR_KAFKA_MESSAGE_TOMBSTONE } from '@hoptrace/core/adapter';
import { traceProducer } from '@hoptrace/kafka';
import { spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import type { Message, ProducerRecord, TopicMessages } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();
const clients = useKafkaClients();

/** A record whose fields are getters (a class instance): kafkajs destructures it, so it sends fine raw. */
class OrderRecord {
  readonly #topic: string;
  readonly #id: string;
  constructor(topic: string, id: string) {
    this.#topic = topic;
    this.#id = id;
  }
  get topic(): string {
    return this.#topic;
  }
  get acks(): number {
    return -1;
  }
  get messages(): Message[] {
    return [{ key: this.#id, value: `v-${this.#id}` }];
  }
}

describe('records and topic groups whose fields are getters (class instances)', () => {
  it('reach the broker as with a raw producer', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const raw = await clients.producer(kafka.producer());
    await raw.send(new OrderRecord(topic, 'raw') as unknown as ProducerRecord);
    const producer = await clients.producer(traceProducer(kafka.producer()));
    let error: unknown;
    try {
      await producer.send(new OrderRecord(topic, 'traced') as unknown as ProducerRecord);
      await producer.sendBatch({
        topicMessages: [new OrderRecord(topic, 'batched') as unknown as TopicMessages],
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeUndefined();
    const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
      topic,
    ]);
    const got: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push(`${String(message.key)}=${String(message.value)}`);
      },
    });
    await until(() => got.length === 3);
    expect(got).toEqual(['raw=v-raw', 'traced=v-traced', 'batched=v-batched']);
  });
});

/**
 * A message whose fields are getters (a class instance): kafkajs validates and partitions by reading
 * them, then encodes a spread of the message (own enumerable fields only), so raw it accepts the send
 * and writes what the spread holds. Traced, the same send must be accepted and write the same record.
 */
class OrderMessage {
  readonly #id: string;
  readonly tag: string;
  constructor(id: string) {
    this.#id = id;
    this.tag = id;
  }
  get key(): string {
    return this.#id;
  }
  get value(): string {
    return `v-${this.#id}`;
  }
  get partition(): number {
    return 1;
  }
  get headers(): Record<string, string> {
    return { inherited: 'h' };
  }
}

describe('messages whose fields are getters (class instances)', () => {
  it('are accepted and written as kafkajs alone writes them (send and sendBatch)', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka, 1, 2)) as [string];
    const raw = await clients.producer(kafka.producer());
    const producer = await clients.producer(traceProducer(kafka.producer(), { captureKeys: true }));
    const outcome = async (send: () => Promise<unknown>) =>
      send().then(
        () => 'ok',
        (e: Error) => `${e.name}: ${e.message}`,
      );
    const sent = [
      await outcome(() => raw.send({ topic, messages: [new OrderMessage('raw') as unknown as Message] })),
      await outcome(() =>
        producer.send({ topic, messages: [new OrderMessage('traced') as unknown as Message] }),
      ),
      await outcome(() =>
        producer.sendBatch({
          topicMessages: [{ topic, messages: [new OrderMessage('batched') as unknown as Message] }],
        }),
      ),
    ];
    expect(sent).toEqual(['ok', 'ok', 'ok']);
    const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
      topic,
    ]);
    const got: unknown[] = [];
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = Object.keys(message.headers ?? {}).filter((k) => k !== 'traceparent');
        got.push([partition, message.key, message.value, headers]);
      },
    });
    await until(() => got.length === 3);
    // kafkajs partitions by the getter, but writes only the spread's fields: no key, no value, no headers.
    expect(got).toEqual([
      [1, null, null, []],
      [1, null, null, []],
      [1, null, null, []],
    ]);
    // The send spans say what went out: a tombstone without a key, on the partition kafkajs chose.
    const sends = spansNamed(tracing.current.spans(), `send ${topic}`);
    expect(sends).toHaveLength(2);
    for (const send of sends) {
      expect(send.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBe(true);
      expect(send.attributes[ATTR_KAFKA_MESSAGE_KEY]).toBeUndefined();
    }
  });
});
