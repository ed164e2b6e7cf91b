import { deadLetterMessage, traceKafka } from '@hoptrace/kafka';
import { until, useTestTracing } from '@hoptrace/test-kit';
import type { EachMessagePayload, IHeaders, Kafka, Producer } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

useTestTracing();
const clients = useKafkaClients();
const NAMES = ['__proto__', 'constructor', 'hasOwnProperty'] as const;

/** Headers owning the given names as plain fields (a computed key never sets the prototype). */
function ownHeaders(): IHeaders {
  const headers: IHeaders = {};
  for (const name of NAMES) Object.defineProperty(headers, name, { value: `v-${name}`, enumerable: true });
  return headers;
}

/** Each payload a plain kafkajs consumer receives from `name`. */
async function payloads(kafka: Kafka, name: string, count: number): Promise<EachMessagePayload[]> {
  const out: EachMessagePayload[] = [];
  const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
    name,
  ]);
  await consumer.run({ eachMessage: async (payload) => void out.push(payload) });
  await until(() => out.length >= count);
  return out;
}

/** The own header names, with the text of each value's Buffer/string entries, as a plain reader sees them. */
function texts(headers: IHeaders | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  for (const key of Object.keys(headers ?? {})) {
    const value = (headers as Record<string, unknown>)[key];
    const values = Array.isArray(value) ? value : [value];
    out[key] = values.filter((v) => typeof v === 'string' || Buffer.isBuffer(v)).map(String);
  }
  return out;
}

describe('kafkajs: headers named __proto__, constructor, hasOwnProperty', () => {
  async function sent(producer: Producer, name: string) {
    await producer.send({ topic: name, messages: [{ value: 'v', headers: ownHeaders() }] });
  }

  it('a traced send carries them as a raw send does', async () => {
    const raw = newKafka('hdrfix-raw');
    const [a, b] = (await createTopics(raw, 2)) as [string, string];
    await sent(await clients.producer(raw.producer()), a);
    await sent(await clients.producer(traceKafka(newKafka('hdrfix')).producer()), b);
    const [rawOut] = await payloads(raw, a, 1);
    const [tracedOut] = await payloads(raw, b, 1);
    const fromTraced = texts(tracedOut?.message.headers);
    delete fromTraced.traceparent;
    expect(fromTraced).toEqual(texts(rawOut?.message.headers));
    for (const n of NAMES) expect(fromTraced[n]).toEqual([`v-${n}`]);
  });

  it('deadLetterMessage keeps them as own headers, pollutes no prototype, and its copy sends', async () => {
    const raw = newKafka('hdrfix-raw');
    const [orders, dlq] = (await createTopics(raw, 2)) as [string, string];
    const producer = await clients.producer(traceKafka(newKafka('hdrfix')).producer());
    await sent(producer, orders);
    const [failed] = await payloads(raw, orders, 1);
    const copy = deadLetterMessage(failed as EachMessagePayload, new Error('boom'));
    expect(Object.getPrototypeOf(copy.headers)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).hasOwnProperty).toBe(Object.prototype.hasOwnProperty);
    for (const n of NAMES) expect(Object.hasOwn(copy.headers ?? {}, n)).toBe(true);
    await producer.send({ topic: dlq, messages: [copy] });
    const [dead] = await payloads(raw, dlq, 1);
    const read = texts(dead?.message.headers);
    for (const n of NAMES) expect(read[n]).toEqual([`v-${n}`]);
  });
});
