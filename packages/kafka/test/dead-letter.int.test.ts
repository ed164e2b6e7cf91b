import {
  ATTR_HOPTRACE_FAILURE_ATTEMPTS,
  ATTR_HOPTRACE_FAILURE_DESTINATION,
  ATTR_HOPTRACE_FAILURE_ERROR_TYPE,
  ATTR_HOPTRACE_FAILURE_OFFSET,
  ATTR_HOPTRACE_FAILURE_PARTITION,
  ATTR_HOPTRACE_FAILURE_RETRYABLE,
  failureLineageOf,
} from '@hoptrace/core';
import { deadLetterMessage, traceKafka } from '@hoptrace/kafka';
import { onlySpan, parentSpanId, spansNamed, until, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { context, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();
const clients = useKafkaClients();
const spans = (): ReadableSpan[] => tracing.current.spans();

class StockError extends Error {
  override name = 'StockError';
}
const classifyError = (error: unknown) =>
  error instanceof StockError ? { type: 'STOCK_UNAVAILABLE', retryable: true } : undefined;

describe('13.2 dead-letter lineage on a real broker', () => {
  it('a dead-letter copy keeps the original trace, links to the failed attempt, and plain clients read its headers', async () => {
    const kafka = traceKafka(newKafka('dlq-test'), { classifyError });
    const [orders, dlq] = (await createTopics(kafka, 2)) as [string, string];
    const producer = await clients.producer(kafka.producer());

    // The failing consumer: on failure it republishes to the dead-letter topic with the helper.
    let failedSpanId: string | undefined;
    const ordersConsumer = await clients.consumer(
      kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }),
      [orders],
    );
    await ordersConsumer.run({
      eachMessage: async (payload) => {
        try {
          throw new StockError(`no stock for ${String(payload.message.value)}`);
        } catch (error) {
          failedSpanId = trace.getActiveSpan()?.spanContext().spanId;
          await producer.send({
            topic: dlq,
            messages: [deadLetterMessage(payload, error, { classifyError })],
          });
        }
      },
    });

    // A traced dead-letter consumer, and a plain kafkajs consumer with no hoptrace at all.
    const lineageInHandler: unknown[] = [];
    const dlqConsumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
      dlq,
    ]);
    await dlqConsumer.run({
      eachMessage: async () => {
        lineageInHandler.push(failureLineageOf()?.errorType);
      },
    });
    const rawHeaders: Record<string, string>[] = [];
    const rawConsumer = await clients.consumer(
      newKafka('plain').consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }),
      [dlq],
    );
    await rawConsumer.run({
      eachMessage: async ({ message }) => {
        const out: Record<string, string> = {};
        for (const [key, value] of Object.entries(message.headers ?? {})) out[key] = String(value);
        rawHeaders.push(out);
      },
    });

    const request = trace.getTracer('app').startSpan('checkout');
    await context.with(trace.setSpan(context.active(), request), () =>
      producer.send({ topic: orders, messages: [{ key: 'order-7', value: 'order-7' }] }),
    );
    request.end();

    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${dlq}`).length === 1);
    await until(() => rawHeaders.length === 1, 'the plain consumer');
    const original = onlySpan(all, `send ${orders}`);
    const failed = onlySpan(all, `process ${orders}`);
    const dlqSend = onlySpan(all, `send ${dlq}`);
    const dlqProcess = onlySpan(all, `process ${dlq}`);
    const traceId = request.spanContext().traceId;
    expect(failed.spanContext().spanId).toBe(failedSpanId);

    // The dead-letter send happens inside the failed attempt and keeps the message's creation context.
    expect(parentSpanId(dlqSend)).toBe(failed.spanContext().spanId);
    expect(dlqSend.links.map((l) => l.context.spanId)).toEqual([original.spanContext().spanId]);

    // The dead-letter consumer continues the original trace (relation `parent`) ...
    expect(dlqProcess.spanContext().traceId).toBe(traceId);
    expect(parentSpanId(dlqProcess)).toBe(original.spanContext().spanId);
    // ... and links to the failed attempt, naming the failure.
    const lineage = {
      [ATTR_HOPTRACE_FAILURE_DESTINATION]: orders,
      [ATTR_HOPTRACE_FAILURE_ERROR_TYPE]: 'STOCK_UNAVAILABLE',
      [ATTR_HOPTRACE_FAILURE_RETRYABLE]: true,
      [ATTR_HOPTRACE_FAILURE_ATTEMPTS]: 1,
      [ATTR_HOPTRACE_FAILURE_PARTITION]: '0',
      [ATTR_HOPTRACE_FAILURE_OFFSET]: '0',
    };
    expect(dlqProcess.links).toHaveLength(1);
    expect(dlqProcess.links[0]?.context.spanId).toBe(failed.spanContext().spanId);
    expect(dlqProcess.links[0]?.context.traceId).toBe(traceId);
    expect(dlqProcess.links[0]?.attributes).toEqual(lineage);
    expect(dlqProcess.attributes).toMatchObject(lineage);
    expect(lineageInHandler).toEqual(['STOCK_UNAVAILABLE']);

    // A plain client with no OpenTelemetry reads every lineage header as text.
    const headers = rawHeaders[0] as Record<string, string>;
    expect(headers).toMatchObject({
      traceparent: `00-${traceId}-${original.spanContext().spanId}-01`,
      'hoptrace-original-destination': orders,
      'hoptrace-original-partition': '0',
      'hoptrace-original-offset': '0',
      'hoptrace-error-type': 'STOCK_UNAVAILABLE',
      'hoptrace-error-message': 'no stock for order-7',
      'hoptrace-error-retryable': 'true',
      'hoptrace-attempts': '1',
      'hoptrace-failed-traceparent': `00-${traceId}-${failed.spanContext().spanId}-01`,
    });
  });

  it('non-ASCII lineage (error type, message) reads back as written: the copy carries UTF-8 text, not Latin-1', async () => {
    const type = 'STOCK_ÉPUISÉ';
    const classify = () => ({ type, retryable: false });
    const kafka = traceKafka(newKafka('dlq-utf8'), { classifyError: classify });
    const [orders, dlq] = (await createTopics(kafka, 2)) as [string, string];
    const producer = await clients.producer(kafka.producer());
    const ordersConsumer = await clients.consumer(
      kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }),
      [orders],
    );
    await ordersConsumer.run({
      eachMessage: async (payload) => {
        const error = new Error('Lagerbestand für Artikel erschöpft 📦');
        await producer.send({
          topic: dlq,
          messages: [deadLetterMessage(payload, error, { classifyError: classify })],
        });
      },
    });
    const read: unknown[] = [];
    const dlqConsumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
      dlq,
    ]);
    await dlqConsumer.run({
      eachMessage: async () => {
        const lineage = failureLineageOf();
        read.push([lineage?.errorType, lineage?.errorMessage]);
      },
    });
    await producer.send({ topic: orders, messages: [{ value: 'order-8' }] });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${dlq}`).length === 1);
    const failed = onlySpan(all, `process ${orders}`);
    const dlqProcess = onlySpan(all, `process ${dlq}`);
    expect(read).toEqual([[type, 'Lagerbestand für Artikel erschöpft 📦']]);
    expect(dlqProcess.attributes[ATTR_HOPTRACE_FAILURE_ERROR_TYPE]).toBe(type);
    expect(dlqProcess.links).toHaveLength(1);
    expect(dlqProcess.links[0]?.context.spanId).toBe(failed.spanContext().spanId);
    expect(dlqProcess.links[0]?.attributes?.[ATTR_HOPTRACE_FAILURE_ERROR_TYPE]).toBe(type);
  });

  it('malformed lineage from a raw producer: only numbers where numbers belong, every value capped, the message as sent', async () => {
    const raw = newKafka('raw-lineage');
    const [topic] = (await createTopics(raw, 1)) as [string];
    const producer = await clients.producer(raw.producer());
    const kafka = traceKafka(newKafka('lineage-reader'));
    const got: unknown[] = [];
    const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
      topic,
    ]);
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.headers);
      },
    });
    const failed = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    const headers = {
      'hoptrace-error-type': 'T'.repeat(1000),
      'hoptrace-original-destination': 'd'.repeat(1000),
      'hoptrace-original-offset': '{"a":1}',
      'hoptrace-original-partition': '-1',
      'hoptrace-attempts': '99999999999999999999',
      'hoptrace-error-retryable': 'TRUE',
      'hoptrace-failed-traceparent': failed,
    };
    await producer.send({ topic, messages: [{ value: 'x', headers }] });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 1);
    const process = onlySpan(all, `process ${topic}`);
    const lineage = {
      [ATTR_HOPTRACE_FAILURE_ERROR_TYPE]: 'T'.repeat(128),
      [ATTR_HOPTRACE_FAILURE_DESTINATION]: 'd'.repeat(256),
    };
    expect(process.links).toHaveLength(1);
    expect(process.links[0]?.context.spanId).toBe('b'.repeat(16));
    expect(process.links[0]?.attributes).toEqual(lineage);
    for (const name of [
      ATTR_HOPTRACE_FAILURE_OFFSET,
      ATTR_HOPTRACE_FAILURE_PARTITION,
      ATTR_HOPTRACE_FAILURE_ATTEMPTS,
      ATTR_HOPTRACE_FAILURE_RETRYABLE,
    ]) {
      expect(process.attributes[name], name).toBeUndefined();
    }
    expect(process.attributes).toMatchObject(lineage);
    expect(got).toHaveLength(1);
    expect(Object.fromEntries(Object.entries(got[0] as object).map(([k, v]) => [k, String(v)]))).toEqual(
      headers,
    );
  });
});
