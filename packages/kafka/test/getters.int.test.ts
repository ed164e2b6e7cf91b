import { traceProducer } from '@hoptrace/kafka';
import { until, useTestTracing } from '@hoptrace/test-kit';
import type { Message, ProducerRecord, TopicMessages } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

useTestTracing();
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
