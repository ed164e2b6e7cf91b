import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/kafka';
import { spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode, trace } from '@opentelemetry/api';
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

describe("batchSpans: 'batch': withMessageContext for a message whose parent is not sampled", () => {
  it('builds no span, runs in the message context (its trace id flows on) and rethrows unchanged', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    // Another service's message under an unsampled parent (flags 00).
    const producer = await clients.producer(kafka.producer());
    await producer.send({
      topic,
      messages: [
        { value: 'm0', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' } },
      ],
    });
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), {
        batchSpans: 'batch',
        unsampled: 'skip', // the test provider samples everything; take the unsampled path as ParentBased would
      }),
      [topic],
    );
    const seen: Array<[string | undefined, string | undefined, boolean | undefined]> = [];
    const thrown: unknown[] = [];
    let done = false;
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const message of batch.messages) {
          try {
            await withMessageContext(message as KafkaMessage, async () => {
              const active = trace.getActiveSpan();
              seen.push([active?.spanContext().traceId, active?.spanContext().spanId, active?.isRecording()]);
              throw 'boom';
            });
          } catch (error) {
            thrown.push(error);
          }
          resolveOffset(message.offset);
        }
        done = true;
      },
    });
    await until(() => done && tracing.current.openSpans().length === 0);
    // The handler ran in the message's own (remote, unsampled) context.
    expect(seen).toEqual([['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', false]]);
    expect(thrown).toEqual(['boom']);
    // No per-message span: only the batch span (a new trace, linked to the message) records.
    const processSpans = spansNamed(spans(), `process ${topic}`);
    expect(processSpans).toHaveLength(1);
    expect(processSpans[0]?.attributes['messaging.batch.message_count']).toBe(1);
    expect(processSpans[0]?.spanContext().traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});
