import { randomUUID } from 'node:crypto';
import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
} from '@hoptrace/core/adapter';
import {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  traceConsumer,
  traceProducer,
  withBatchContext,
} from '@hoptrace/platformatic-kafka';
import { onlySpan, parentSpanId, spansNamed, useTestTracing } from '@hoptrace/test-kit';
import { type Attributes, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Admin, type Message } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, groupId, runCleanup, streamOf, stringConsumer, stringProducer } from './helpers.ts';

/**
 * A withBatchContext span is about several messages: each message's own attributes go on its link
 * (semconv: per-message attributes go on the span when it is about one message, else on the links).
 */
const tracing = useTestTracing();
const spans = (): ReadableSpan[] => tracing.current.spans();
afterEach(runCleanup);

async function linksTopic(partitions: number): Promise<string> {
  const topic = `hoptrace-links-${randomUUID()}`;
  const admin = new Admin({ clientId: 'hoptrace-links-admin', bootstrapBrokers: brokers() });
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
  return topic;
}

type StringMessage = Message<string, string, string, string>;

async function take(stream: AsyncIterable<StringMessage>, count: number): Promise<StringMessage[]> {
  const out: StringMessage[] = [];
  for await (const message of stream) {
    out.push(message);
    if (out.length === count) break;
  }
  return out;
}

/** Three messages, one send each (three creation contexts): keyed, unkeyed, a tombstone on partition 1. */
async function produceThree(topic: string): Promise<ReadableSpan[]> {
  const producer = traceProducer(stringProducer());
  await producer.send({ messages: [{ topic, key: 'k0', value: 'abc', partition: 0 }] });
  await producer.send({ messages: [{ topic, value: 'héllo', partition: 0 }] });
  await producer.send({
    messages: [{ topic, key: 'k2', value: null as unknown as string, partition: 1 }],
  });
  const sends = spansNamed(spans(), `send ${topic}`);
  expect(sends).toHaveLength(3);
  return sends;
}

/** Runs withBatchContext over `messages`; returns the batch span, checked, and its links by send. */
async function batchOver(topic: string, messages: StringMessage[], sends: readonly ReadableSpan[]) {
  let active: string | undefined;
  await withBatchContext(messages, async () => {
    active = trace.getActiveSpan()?.spanContext().spanId;
  });
  const batch = onlySpan(spans(), `process ${topic}`);
  expect(active).toBe(batch.spanContext().spanId);
  expect(parentSpanId(batch)).toBeUndefined();
  expect(batch.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(messages.length);
  // Per-message attributes are not the span's.
  for (const key of [ATTR_KAFKA_OFFSET, ATTR_KAFKA_MESSAGE_KEY, ATTR_KAFKA_MESSAGE_TOMBSTONE])
    expect(batch.attributes[key]).toBeUndefined();
  const bySend = new Map<number, Attributes | undefined>();
  for (const link of batch.links) {
    const i = sends.findIndex(
      (s) =>
        s.spanContext().spanId === link.context.spanId && s.spanContext().traceId === link.context.traceId,
    );
    expect(i).toBeGreaterThanOrEqual(0);
    bySend.set(i, link.attributes);
  }
  // The links follow the messages' order.
  expect(batch.links.map((l) => l.context.spanId)).toEqual(
    messages
      .slice(0, batch.links.length)
      .map((m) => sends[Number(m.partition) === 1 ? 2 : Number(m.offset)]?.spanContext().spanId),
  );
  return { batch, bySend };
}

describe('withBatchContext links carry each message’s attributes (links)', () => {
  it('with captureKeys and captureBodySize: partition, offset, key (never when absent), tombstone, body size', async () => {
    const topic = await linksTopic(2);
    const sends = await produceThree(topic);
    const consumer = traceConsumer(stringConsumer({ groupId: `hoptrace-links-${randomUUID()}` }), {
      batchSpans: 'batch',
      captureKeys: true,
      captureBodySize: true,
    });
    const messages = await take(await streamOf(consumer, [topic]), 3);
    const { batch, bySend } = await batchOver(topic, messages, sends);
    expect(batch.links).toHaveLength(3);
    expect(batch.attributes[ATTR_HOPTRACE_BATCH_LINK_COUNT]).toBe(3);
    expect(bySend.get(0)).toEqual({
      [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '0',
      [ATTR_KAFKA_OFFSET]: 0,
      [ATTR_KAFKA_MESSAGE_KEY]: 'k0',
      [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: 3,
    });
    expect(bySend.get(1)).toEqual({
      [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '0',
      [ATTR_KAFKA_OFFSET]: 1,
      [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: 6,
    });
    expect(bySend.get(2)).toEqual({
      [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '1',
      [ATTR_KAFKA_OFFSET]: 0,
      [ATTR_KAFKA_MESSAGE_KEY]: 'k2',
      [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true,
    });
  });

  it('defaults: no key, no body size; legacy names as a single-message span has them; the link cap holds', async () => {
    const topic = await linksTopic(1);
    const producer = traceProducer(stringProducer());
    for (const value of ['a', 'b', 'c']) await producer.send({ messages: [{ topic, key: 'k', value }] });
    const sends = spansNamed(spans(), `send ${topic}`);
    const consumer = traceConsumer(stringConsumer({ groupId: groupId() }), {
      batchSpans: 'batch',
      maxBatchLinks: 2,
      legacyAttributes: true,
    });
    const messages = await take(await streamOf(consumer, [topic]), 3);
    const { batch } = await batchOver(topic, messages, sends);
    expect(batch.attributes[ATTR_HOPTRACE_BATCH_LINK_COUNT]).toBe(2);
    expect(batch.links.map((l) => l.context.spanId)).toEqual(
      sends.slice(0, 2).map((s) => s.spanContext().spanId),
    );
    expect(batch.links.map((l) => l.attributes)).toEqual(
      [0, 1].map((offset) => ({
        [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '0',
        'messaging.kafka.destination.partition': 0,
        [ATTR_KAFKA_OFFSET]: offset,
        'messaging.kafka.offset': offset,
        'messaging.kafka.message.offset': offset,
      })),
    );
  });
});
