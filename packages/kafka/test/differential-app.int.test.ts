/**
 * What the application observes, raw kafkajs against the same client wrapped by hoptrace (through
 * `traceKafka`, and through `traceProducer` / `traceConsumer`): return values, thrown errors (class,
 * message, retriable), kafkajs's instrumentation events, the messages on the wire (without hoptrace's
 * own propagation headers), committed offsets, retries.
 */
import { randomUUID } from 'node:crypto';
import { traceConsumer, traceKafka, traceProducer } from '@hoptrace/kafka';
import { sleep, until, useTestTracing } from '@hoptrace/test-kit';
import {
  CompressionTypes,
  type Consumer,
  type ConsumerConfig,
  type IHeaders,
  type Kafka,
  type Producer,
  type ProducerConfig,
} from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { newKafka } from './helpers.ts';

const tracing = useTestTracing();

type Mode = 'raw' | 'kafka' | 'parts';
const TRACED: readonly Mode[] = ['kafka', 'parts'];

/** Makes producers and consumers raw, through `traceKafka`, or wrapped one by one. */
function client(mode: Mode) {
  const base = newKafka(`kjsdiff-${mode}`);
  const kafka: Kafka = mode === 'kafka' ? traceKafka(base) : base;
  return {
    kafka,
    producer(config?: ProducerConfig): Producer {
      const producer = kafka.producer(config);
      return mode === 'parts' ? traceProducer(producer) : producer;
    },
    consumer(config: ConsumerConfig): Consumer {
      const consumer = kafka.consumer(config);
      return mode === 'parts' ? traceConsumer(consumer) : consumer;
    },
  };
}

/** Runs the workload raw, then traced both ways; every traced observation must equal the raw one. */
async function differential<T>(workload: (mode: Mode) => Promise<T>): Promise<T> {
  const raw = await workload('raw');
  for (const mode of TRACED) {
    const traced = await workload(mode);
    expect({ mode, observed: traced }).toEqual({ mode, observed: raw });
  }
  return raw;
}

const name = (what: string) => `kjsdiff-${what}-${randomUUID()}`;

async function createTopic(partitions = 1): Promise<string> {
  const topic = name('topic');
  const admin = newKafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

async function endOffsets(topic: string): Promise<string[]> {
  const admin = newKafka().admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.sort((a, b) => a.partition - b.partition).map((p) => p.high);
  } finally {
    await admin.disconnect();
  }
}

const PROPAGATION = new Set(['traceparent', 'tracestate', 'baggage']);

function wireHeaders(headers: IHeaders | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (PROPAGATION.has(k)) continue;
    out[k] = Array.isArray(v) ? v.map((x) => x?.toString('hex')) : v?.toString('hex');
  }
  return out;
}

/** Everything on `topic` (all partitions), as an application would see it, read with a raw client. */
async function readAll(topic: string, expected: number): Promise<unknown[]> {
  const consumer = newKafka().consumer({ groupId: name('reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got: unknown[] = [];
  await consumer.run({
    eachMessage: async ({ partition, message }) =>
      void got.push({
        partition,
        offset: message.offset,
        key: message.key?.toString('hex') ?? null,
        value: message.value?.toString('hex') ?? null,
        // Only a timestamp the sender set is the same run to run.
        timestamp: Number(message.timestamp) < 1_750_000_000_000 ? message.timestamp : 'now',
        headers: wireHeaders(message.headers),
      }),
  });
  await until(() => got.length >= expected, `${expected} messages on ${topic}`);
  await sleep(200);
  await consumer.disconnect();
  return got.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** What the application sees of a rejection: class, name, message, retriable flag, type. */
function describeError(error: unknown): unknown {
  if (!(error instanceof Error)) return { thrown: error };
  const e = error as Error & { retriable?: unknown; type?: unknown };
  return {
    class: e.constructor.name,
    name: e.name,
    message: e.message.replace(/kjsdiff-[\w-]+/g, 'T'),
    retriable: e.retriable,
    type: e.type,
  };
}

async function outcome<T>(call: () => Promise<T>): Promise<unknown> {
  try {
    const value = await call();
    return { ok: value };
  } catch (error) {
    return { error: describeError(error) };
  }
}

/** Replies without what differs run to run (topic names, offsets' base, log append time). */
function reply(metadata: unknown): unknown {
  if (!Array.isArray(metadata)) return metadata;
  return metadata.map(({ topicName, logAppendTime, baseOffset, logStartOffset, ...rest }) => ({
    ...rest,
    topic: typeof topicName === 'string' ? topicName.replace(/kjsdiff-[\w-]+/, 'T') : topicName,
    baseOffset,
  }));
}

describe('kafkajs differential (kjsdiff): producer', () => {
  it('send with invalid arguments: the same error, nothing on the wire, the producer still usable', async () => {
    const raw: { results: Record<string, unknown> } = await differential(async (mode) => {
      const topic = await createTopic();
      const producer = client(mode).producer();
      await producer.connect();
      const bad: [string, () => Promise<unknown>][] = [
        ['no topic', () => producer.send({ messages: [{ value: 'x' }] } as never)],
        ['messages not an array', () => producer.send({ topic, messages: 'x' } as never)],
        ['no messages', () => producer.send({ topic } as never)],
        ['headers null', () => producer.send({ topic, messages: [{ value: 'x', headers: null as never }] })],
        [
          'a header value undefined',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { a: undefined } }] }),
        ],
        [
          'traceparent undefined',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { traceparent: undefined } }] }),
        ],
        [
          'traceparent null',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { traceparent: null as never } }] }),
        ],
        [
          'Traceparent (another case) undefined',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { Traceparent: undefined } }] }),
        ],
        [
          'Traceparent (another case) a number',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { Traceparent: 5 as never } }] }),
        ],
        [
          'traceparent [null]',
          () =>
            producer.send({ topic, messages: [{ value: 'x', headers: { traceparent: [null as never] } }] }),
        ],
        [
          'tracestate undefined',
          () =>
            producer.send({
              topic,
              messages: [{ value: 'x', headers: { a: 'b', tracestate: undefined } }],
            }),
        ],
        [
          'sendBatch, headers null',
          () =>
            producer.sendBatch({
              topicMessages: [{ topic, messages: [{ value: 'x', headers: null as never }] }],
            }),
        ],
        ['sendBatch without topicMessages', () => producer.sendBatch({} as never)],
        [
          'sendBatch, messages not an array',
          () => producer.sendBatch({ topicMessages: [{ topic }] } as never),
        ],
      ];
      const results: Record<string, unknown> = {};
      for (const [label, call] of bad) results[label] = await outcome(() => call().then(reply));
      const after = await outcome(() => producer.send({ topic, messages: [{ value: 'ok' }] }).then(reply));
      await producer.disconnect();
      return { results, after, wire: await readAll(topic, 1) };
    });
    // No send span claims success for a call kafkajs failed: the only spans without an error are those
    // of the last send (`sendBatch({})`, which kafkajs answers with [], goes to it untraced).
    expect(Object.keys(raw.results).filter((k) => 'ok' in (raw.results[k] as object))).toEqual([
      'sendBatch without topicMessages',
    ]);
    const unset = tracing.current
      .spans()
      .filter((span) => span.name.startsWith('send') && span.status.code !== 2);
    expect(unset).toHaveLength(TRACED.length);
  });

  it('sendBatch with empty topicMessages, a topic group with no messages', async () => {
    await differential(async (mode) => {
      const topic = await createTopic();
      const producer = client(mode).producer();
      await producer.connect();
      const empty = await outcome(() => producer.sendBatch({ topicMessages: [] }));
      const noMessages = await outcome(() =>
        producer.sendBatch({ topicMessages: [{ topic, messages: [] }] }),
      );
      const sendNone = await outcome(() => producer.send({ topic, messages: [] }).then(reply));
      await producer.disconnect();
      return { empty, noMessages, sendNone, end: await endOffsets(topic) };
    });
  });

  it('acks 0, compression, a Buffer key with an explicit partition and timestamp', async () => {
    await differential(async (mode) => {
      const topic = await createTopic(3);
      const producer = client(mode).producer();
      await producer.connect();
      const key = Buffer.from([0, 255, 1, 254]);
      const headers: IHeaders = { h: Buffer.from([9, 8]), list: ['a', 'b'] };
      const snapshot = JSON.stringify(headers);
      const acks0 = await outcome(() =>
        producer.send({
          topic,
          acks: 0,
          messages: [{ key, value: 'a0', partition: 2, timestamp: '1700000000000' }],
        }),
      );
      const gzip = await outcome(() =>
        producer
          .send({
            topic,
            compression: CompressionTypes.GZIP,
            messages: [
              { key, value: 'g0', partition: 1, headers, timestamp: '1700000000001' },
              { key: 'k', value: null, partition: 1, timestamp: '1700000000002' },
            ],
          })
          .then(reply),
      );
      const batch = await outcome(() =>
        producer
          .sendBatch({
            compression: CompressionTypes.GZIP,
            acks: 1,
            topicMessages: [
              { topic, messages: [{ key, value: 'b0', partition: 0, timestamp: '1700000000003' }] },
            ],
          })
          .then(reply),
      );
      await producer.disconnect();
      return {
        acks0,
        gzip,
        batch,
        unchanged: JSON.stringify(headers) === snapshot,
        wire: await readAll(topic, 4),
      };
    });
  });

  it('a send to a missing topic with allowAutoTopicCreation false', async () => {
    await differential(async (mode) => {
      const producer = client(mode).producer({
        allowAutoTopicCreation: false,
        retry: { retries: 1, initialRetryTime: 50 },
      });
      await producer.connect();
      const missing = await outcome(() =>
        producer.send({ topic: name('missing'), messages: [{ value: 'x' }] }),
      );
      await producer.disconnect();
      return { missing };
    });
  });

  it('disconnect() with sends in flight', async () => {
    await differential(async (mode) => {
      const topic = await createTopic();
      const producer = client(mode).producer();
      await producer.connect();
      // kafkajs retries a request the disconnect cut (a non-idempotent producer may write a message
      // twice, raw too, depending on timing): what is stable is each call's outcome and what arrived.
      const inFlight = Array.from({ length: 5 }, (_, i) =>
        outcome(() => producer.send({ topic, messages: [{ value: `v${i}` }] }).then(() => 'sent')),
      );
      const disconnected = await outcome(() => producer.disconnect());
      const outcomes = await Promise.all(inFlight);
      const late = await outcome(() => producer.send({ topic, messages: [{ value: 'late' }] }));
      const wire = (await readAll(topic, 5)) as { value: string }[];
      return { disconnected, outcomes, late, values: [...new Set(wire.map((m) => m.value))].sort() };
    });
  });
});
