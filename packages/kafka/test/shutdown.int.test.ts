import { ERROR_SHUTDOWN, endOpenSpans } from '@hoptrace/core';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/kafka';
import {
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();
const clients = useKafkaClients();

function spans(): ReadableSpan[] {
  return tracing.current.spans();
}

describe('endOpenSpans (process shutdown) on kafkajs', () => {
  let release = deferred();
  afterEach(() => release.resolve());

  it('ends the span of an eachMessage handler still running, once; the handler finishes, kafkajs commits and the consumer keeps working', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    const crashes: unknown[] = [];
    consumer.on(consumer.events.CRASH, (event) => crashes.push(event));
    release = deferred();
    const started = deferred();
    const seen: string[] = [];
    const both = deferred();
    await consumer.run({
      eachMessage: async ({ message }) => {
        const value = message.value?.toString() ?? '';
        if (value === 'held') {
          started.resolve();
          await release.promise;
        }
        seen.push(value);
        if (seen.length === 2) both.resolve();
      },
    });
    await trace.getTracer('test').startActiveSpan('request', async (span) => {
      await producer.send({ topic, messages: [{ value: 'held' }] });
      span.end();
    });
    await started.promise;
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${topic}`]);

    expect(endOpenSpans()).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
    const request = onlySpan(spans(), 'request');
    const send = onlySpan(spans(), `send ${topic}`);
    const process = onlySpan(spans(), `process ${topic}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(process.attributes['error.type']).toBe(ERROR_SHUTDOWN);
    expect(process.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);

    // The client is left alone: the handler finishes, the offset is committed, the next message flows.
    release.resolve();
    await producer.send({ topic, messages: [{ value: 'next' }] });
    await both.promise;
    expect(seen).toEqual(['held', 'next']);
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 2);
    const processes = spansNamed(all, `process ${topic}`);
    expect(processes.filter((s) => s.attributes['kafka.offset'] === 0)).toEqual([process]);
    const next = processes.find((s) => s !== process);
    expect(next?.status.code).toBe(SpanStatusCode.UNSET);
    expect(next?.attributes['kafka.offset']).toBe(1);
    // Delivered once: the late completion resolved the offset as usual (no retry of the held message).
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual(['held', 'next']);
    expect(crashes).toEqual([]);
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it('ends a transactional send held until commit, once; the commit afterwards works and the message is delivered under it', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(
      traceProducer(
        kafka.producer({ transactionalId: `hoptrace-tx-${topic}`, idempotent: true, maxInFlightRequests: 1 }),
      ),
    );
    const transaction = await producer.transaction();
    await trace.getTracer('test').startActiveSpan('request', async (span) => {
      await transaction.send({ topic, messages: [{ value: 'in-tx' }] });
      span.end();
    });
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`send ${topic}`]);

    expect(endOpenSpans()).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
    const request = onlySpan(spans(), 'request');
    const send = onlySpan(spans(), `send ${topic}`);
    expect(send.status.code).toBe(SpanStatusCode.ERROR);
    expect(send.attributes['error.type']).toBe(ERROR_SHUTDOWN);
    expect(parentSpanId(send)).toBe(request.spanContext().spanId);

    // The transaction is the application's: the commit goes through, and later ones too.
    await expect(transaction.commit()).resolves.not.toThrow();
    const second = await producer.transaction();
    await second.send({ topic, messages: [{ value: 'second-tx' }] });
    await second.commit();
    expect(spansNamed(spans(), 'commit_transaction')).toHaveLength(2);
    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(2);
    expect(sends.filter((s) => s.attributes['error.type'] === ERROR_SHUTDOWN)).toEqual([send]);
    const later = sends.find((s) => s !== send);
    expect(later?.attributes['hoptrace.kafka.transaction.outcome']).toBe('committed');
    expect(later?.status.code).toBe(SpanStatusCode.UNSET);

    const seen: string[] = [];
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value?.toString() ?? '');
      },
    });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 2);
    expect(seen).toEqual(['in-tx', 'second-tx']);
    const first = spansNamed(all, `process ${topic}`).find((s) => s.attributes['kafka.offset'] === 0);
    expect(first?.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(first && parentSpanId(first)).toBe(send.spanContext().spanId);
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it("eachBatch, batchSpans 'message': the batch span and the held message's span end once with shutdown; the handler finishes, resolves and commits, and the next messages get spans of their own", async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    const crashes: unknown[] = [];
    consumer.on(consumer.events.CRASH, (event) => crashes.push(event));
    release = deferred();
    const started = deferred();
    const seen: string[] = [];
    const returned: unknown[] = [];
    const all = deferred();
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const message of batch.messages) {
          const value = message.value?.toString() ?? '';
          returned.push(
            await withMessageContext(message, async () => {
              if (value === 'held') {
                started.resolve();
                await release.promise;
              }
              return `handled ${value}`;
            }),
          );
          seen.push(value);
          resolveOffset(message.offset);
        }
        if (seen.length === 2) all.resolve();
      },
    });
    await producer.send({ topic, messages: [{ value: 'held' }] });
    await started.promise;
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${topic}`, `process ${topic}`]);

    expect(endOpenSpans()).toBe(2);
    expect(tracing.current.openSpans()).toEqual([]);
    const ended = spansNamed(spans(), `process ${topic}`);
    expect(ended).toHaveLength(2);
    for (const span of ended) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes['error.type']).toBe(ERROR_SHUTDOWN);
    }

    release.resolve();
    await producer.send({ topic, messages: [{ value: 'next' }] });
    await all.promise;
    expect(seen).toEqual(['held', 'next']);
    expect(returned).toEqual(['handled held', 'handled next']);
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 4);
    const processes = spansNamed(done, `process ${topic}`);
    expect(processes.filter((s) => s.attributes['error.type'] === ERROR_SHUTDOWN)).toEqual(ended);
    expect(processes.filter((s) => s.status.code === SpanStatusCode.UNSET)).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual(['held', 'next']);
    expect(crashes).toEqual([]);
    expect(tracing.current.openSpans()).toEqual([]);
    expect(spansNamed(spans(), `process ${topic}`)).toHaveLength(4);
  });

  it("eachBatch, batchSpans 'batch': the batch span and a withMessageContext call span still running end once with shutdown; the call's value reaches the handler unchanged", async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), { batchSpans: 'batch' }),
      [topic],
    );
    release = deferred();
    const started = deferred();
    const returned: unknown[] = [];
    const finished = deferred();
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          returned.push(
            await withMessageContext(message, async () => {
              started.resolve();
              await release.promise;
              return message.value?.toString();
            }),
          );
        }
        finished.resolve();
      },
    });
    await producer.send({ topic, messages: [{ value: 'held' }] });
    await started.promise;
    expect(tracing.current.openSpans()).toHaveLength(2);
    expect(endOpenSpans()).toBe(2);
    expect(tracing.current.openSpans()).toEqual([]);
    const ended = spansNamed(spans(), `process ${topic}`);
    expect(ended).toHaveLength(2);
    for (const span of ended) expect(span.attributes['error.type']).toBe(ERROR_SHUTDOWN);

    release.resolve();
    await finished.promise;
    expect(returned).toEqual(['held']);
    await new Promise((r) => setTimeout(r, 200));
    expect(spansNamed(spans(), `process ${topic}`)).toEqual(ended);
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it('a send in flight ends once with shutdown; its result reaches the caller unchanged', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const pending = producer.send({ topic, messages: [{ value: 'in-flight' }] });
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`send ${topic}`]);
    expect(endOpenSpans()).toBe(1);
    const metadata = await pending;
    expect(metadata).toEqual([expect.objectContaining({ topicName: topic, partition: 0, baseOffset: '0' })]);
    const send = onlySpan(spans(), `send ${topic}`);
    expect(send.status.code).toBe(SpanStatusCode.ERROR);
    expect(send.attributes['error.type']).toBe(ERROR_SHUTDOWN);
    expect(tracing.current.openSpans()).toEqual([]);
  });
});
