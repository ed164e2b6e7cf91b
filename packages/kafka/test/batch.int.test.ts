import { ATTR_MESSAGING_BATCH_MESSAGE_COUNT } from '@hoptrace/core/adapter';
import {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  traceConsumer,
  traceProducer,
  withMessageContext,
} from '@hoptrace/kafka';
import { parentSpanId, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();
const clients = useKafkaClients();
const spans = (): ReadableSpan[] => tracing.current.spans();

describe("16.4 eachBatch with batchSpans: 'batch'", () => {
  it('one process span per batch with capped links; a per-message span only where withMessageContext asks', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    // Five sends, so five distinct creation contexts, all in the topic before the consumer starts.
    for (let i = 0; i < 5; i++) await producer.send({ topic, messages: [{ value: `m${i}` }] });
    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(5);
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), {
        batchSpans: 'batch',
        maxBatchLinks: 3,
      }),
      [topic],
    );
    const sizes: number[] = [];
    let activeInMessage: string | undefined;
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        sizes.push(batch.messages.length);
        for (const message of batch.messages) {
          // m4: past the link cap when the five arrive in one batch (its headers are read only now).
          if (String(message.value) === 'm4') {
            await withMessageContext(message, async () => {
              activeInMessage = trace.getActiveSpan()?.spanContext().spanId;
            });
          }
          resolveOffset(message.offset);
        }
      },
    });
    const all = await waitForSpans(
      spans,
      (s) =>
        sizes.reduce((a, b) => a + b, 0) === 5 &&
        spansNamed(s, `process ${topic}`).length === sizes.length + 1,
    );
    const processes = spansNamed(all, `process ${topic}`);
    const batches = processes.filter((s) => s.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] !== undefined);
    expect(batches.map((b) => b.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT])).toEqual(sizes);
    const sendIds = new Set(sends.map((s) => s.spanContext().spanId));
    for (const batch of batches) {
      const size = batch.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] as number;
      expect(batch.links).toHaveLength(Math.min(size, 3));
      expect(batch.attributes[ATTR_HOPTRACE_BATCH_LINK_COUNT]).toBe(Math.min(size, 3));
      for (const link of batch.links) expect(sendIds.has(link.context.spanId)).toBe(true);
      expect(parentSpanId(batch)).toBeUndefined();
    }
    // The one per-message span: the message's own trace (relation parent), active inside the callback.
    const perMessage = processes.filter(
      (s) => s.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] === undefined,
    );
    expect(perMessage).toHaveLength(1);
    const m4 = perMessage[0] as ReadableSpan;
    const m4Send = sends[4] as ReadableSpan;
    expect(parentSpanId(m4)).toBe(m4Send.spanContext().spanId);
    expect(m4.spanContext().traceId).toBe(m4Send.spanContext().traceId);
    expect(activeInMessage).toBe(m4.spanContext().spanId);
  });
});
