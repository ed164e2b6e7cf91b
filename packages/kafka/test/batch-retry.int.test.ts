import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/kafka';
import { spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();
const clients = useKafkaClients();
const spans = (): ReadableSpan[] => tracing.current.spans();

describe("batchSpans: 'batch': withMessageContext called again for the same message (a retry)", () => {
  it('each call gets its own span, so the failure of a second attempt is recorded', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    await producer.send({ topic, messages: [{ value: 'm0' }] });
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), { batchSpans: 'batch' }),
      [topic],
    );
    const thrown: unknown[] = [];
    let done = false;
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const message of batch.messages) {
          // Two attempts; both fail with a non-Error value.
          for (const value of ['first attempt', undefined]) {
            try {
              await withMessageContext(message as KafkaMessage, async () => {
                throw value;
              });
            } catch (error) {
              thrown.push(error);
            }
          }
          resolveOffset(message.offset);
        }
        done = true;
      },
    });
    await until(() => done && tracing.current.openSpans().length === 0);
    expect(thrown).toEqual(['first attempt', undefined]);
    const perMessage = spansNamed(spans(), `process ${topic}`).filter(
      (s) => s.attributes['messaging.batch.message_count'] === undefined,
    );
    // One span per call, each ERROR with its own failure.
    expect(perMessage).toHaveLength(2);
    for (const span of perMessage) expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });
});
