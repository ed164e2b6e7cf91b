import { randomUUID } from 'node:crypto';
import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
} from '@hoptrace/core/adapter';
import { ATTR_HOPTRACE_BATCH_LINK_COUNT, traceConsumer, traceProducer } from '@hoptrace/kafka';
import { parentSpanId, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import type { Attributes } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { newKafka, useKafkaClients } from './helpers.ts';

/**
 * A batch span is about several messages: each message's own attributes go on its link (semconv:
 * per-message attributes go on the span when it is about one message, else on the links).
 */
const tracing = useTestTracing();
const clients = useKafkaClients();
const spans = (): ReadableSpan[] => tracing.current.spans();

async function linksTopic(kafka: Kafka): Promise<string> {
  const topic = `hoptrace-links-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/** Three messages, one send each (three creation contexts): a keyed one, a null key, a tombstone. */
async function produceThree(kafka: Kafka, topic: string): Promise<ReadableSpan[]> {
  const producer = await clients.producer(traceProducer(kafka.producer()));
  await producer.send({ topic, messages: [{ key: 'k0', value: 'abc' }] });
  await producer.send({ topic, messages: [{ key: null, value: 'héllo' }] });
  await producer.send({ topic, messages: [{ key: Buffer.from('k2'), value: null }] });
  const sends = spansNamed(spans(), `send ${topic}`);
  expect(sends).toHaveLength(3);
  return sends;
}

/** Consumes the topic's three messages with `options`; returns the batch spans once all have ended. */
async function consumeBatches(
  kafka: Kafka,
  topic: string,
  options: Parameters<typeof traceConsumer>[1],
): Promise<{ batches: ReadableSpan[]; sizes: number[] }> {
  const consumer = await clients.consumer(
    traceConsumer(
      kafka.consumer({ groupId: `hoptrace-links-${randomUUID()}`, maxWaitTimeInMs: 100 }),
      options,
    ),
    [topic],
  );
  const sizes: number[] = [];
  await consumer.run({
    eachBatch: async ({ batch }) => {
      sizes.push(batch.messages.length);
    },
  });
  const all = await waitForSpans(
    spans,
    (s) =>
      sizes.reduce((a, b) => a + b, 0) === 3 &&
      spansNamed(s, `process ${topic}`).filter(
        (p) => p.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] !== undefined,
      ).length === sizes.length,
  );
  const batches = spansNamed(all, `process ${topic}`).filter(
    (p) => p.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] !== undefined,
  );
  return { batches, sizes };
}

/** The links of every batch span in offset order, with each batch's own checks done. */
function batchLinks(batches: readonly ReadableSpan[], sizes: readonly number[], cap: number) {
  expect(batches.map((b) => b.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT])).toEqual(sizes);
  const links: { spanId: string; traceId: string; attributes: Attributes | undefined }[] = [];
  for (const batch of batches) {
    const size = batch.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] as number;
    expect(batch.links).toHaveLength(Math.min(size, cap));
    expect(batch.attributes[ATTR_HOPTRACE_BATCH_LINK_COUNT]).toBe(Math.min(size, cap));
    // A new trace; the partition (one per batch) stays on the span, per-message attributes do not.
    expect(parentSpanId(batch)).toBeUndefined();
    expect(batch.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBe('0');
    expect(batch.attributes[ATTR_KAFKA_OFFSET]).toBeUndefined();
    expect(batch.attributes[ATTR_KAFKA_MESSAGE_KEY]).toBeUndefined();
    expect(batch.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBeUndefined();
    for (const link of batch.links) {
      expect(link.attributes?.[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBeUndefined();
      links.push({ spanId: link.context.spanId, traceId: link.context.traceId, attributes: link.attributes });
    }
  }
  return links;
}

describe('eachBatch batch span links carry each message’s attributes (links)', () => {
  it("batchSpans 'batch' with captureKeys and captureBodySize: offset, key (never null), tombstone, body size", async () => {
    const kafka = newKafka('hoptrace-links');
    const topic = await linksTopic(kafka);
    const sends = await produceThree(kafka, topic);
    const { batches, sizes } = await consumeBatches(kafka, topic, {
      batchSpans: 'batch',
      captureKeys: true,
      captureBodySize: true,
    });
    const links = batchLinks(batches, sizes, 1000);
    expect(links.map((l) => [l.traceId, l.spanId])).toEqual(
      sends.map((s) => [s.spanContext().traceId, s.spanContext().spanId]),
    );
    expect(links.map((l) => l.attributes)).toEqual([
      { [ATTR_KAFKA_OFFSET]: 0, [ATTR_KAFKA_MESSAGE_KEY]: 'k0', [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: 3 },
      { [ATTR_KAFKA_OFFSET]: 1, [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: 6 },
      { [ATTR_KAFKA_OFFSET]: 2, [ATTR_KAFKA_MESSAGE_KEY]: 'k2', [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true },
    ]);
  });

  it('defaults (no captureKeys, no body size), the link cap and legacy names as a single-message span has them', async () => {
    const kafka = newKafka('hoptrace-links');
    const topic = await linksTopic(kafka);
    const sends = await produceThree(kafka, topic);
    const { batches, sizes } = await consumeBatches(kafka, topic, {
      batchSpans: 'batch',
      maxBatchLinks: 2,
      legacyAttributes: true,
    });
    const links = batchLinks(batches, sizes, 2);
    // Each batch links its first two messages (the cap is per batch).
    let first = 0;
    const expected: number[] = [];
    for (const size of sizes) {
      for (let i = first; i < first + Math.min(size, 2); i++) expected.push(i);
      first += size;
    }
    expect(links.map((l) => l.spanId)).toEqual(expected.map((i) => sends[i]?.spanContext().spanId));
    const legacy = (offset: number): Attributes => ({
      [ATTR_KAFKA_OFFSET]: offset,
      'messaging.kafka.offset': offset,
      'messaging.kafka.message.offset': offset,
    });
    expect(links.map((l) => l.attributes)).toEqual(
      expected.map((i) =>
        i === 2
          ? {
              ...legacy(2),
              [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true,
              'messaging.kafka.message.tombstone': true,
            }
          : legacy(i),
      ),
    );
  });

  it("batchSpans 'message': the batch span's links carry the same attributes", async () => {
    const kafka = newKafka('hoptrace-links');
    const topic = await linksTopic(kafka);
    const sends = await produceThree(kafka, topic);
    const { batches, sizes } = await consumeBatches(kafka, topic, { captureKeys: true });
    const links = batchLinks(batches, sizes, 1000);
    expect(links.map((l) => l.spanId)).toEqual(sends.map((s) => s.spanContext().spanId));
    expect(links.map((l) => l.attributes)).toEqual([
      { [ATTR_KAFKA_OFFSET]: 0, [ATTR_KAFKA_MESSAGE_KEY]: 'k0' },
      { [ATTR_KAFKA_OFFSET]: 1 },
      { [ATTR_KAFKA_OFFSET]: 2, [ATTR_KAFKA_MESSAGE_KEY]: 'k2', [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true },
    ]);
  });
});
