import { DEFAULT_METRIC_ATTRIBUTE_SETS } from '@hoptrace/core/adapter';
import { traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { metricPoints, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { fakeConsumer, fakeProducer, message } from './fakes.ts';

useTestTracing();

const CLIENTS = 4;
const TOPICS_EACH = 100;

describe('the metric series cap holds across clients (short-lived producers and consumers)', () => {
  it('producers traced one after another on one MeterProvider never add series past the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    for (let c = 0; c < CLIENTS; c++) {
      const producer = traceProducer(fakeProducer().producer, { meterProvider });
      for (let i = 0; i < TOPICS_EACH; i++)
        await producer.send({ messages: [{ topic: `t-${c}-${i}`, value: 'x' }] });
    }
    const sent = await metricPoints(reader, 'messaging.client.sent.messages');
    expect(sent.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    expect(sent.reduce((n, p) => n + Number(p.value), 0)).toBe(CLIENTS * TOPICS_EACH);
    await meterProvider.shutdown();
  });

  it('consumers traced one after another on one MeterProvider never add series past the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    for (let c = 0; c < CLIENTS; c++) {
      const fake = fakeConsumer();
      const consumer = traceConsumer(fake.consumer, { meterProvider });
      const stream = (await consumer.consume()) as AsyncIterable<unknown>;
      for (let i = 0; i < TOPICS_EACH; i++)
        fake.stream.push({ ...message(new Map(), BigInt(i)), topic: `t-${c}-${i}` });
      let seen = 0;
      for await (const _ of stream) if (++seen === TOPICS_EACH) break;
      await consumer.close();
    }
    const consumed = await metricPoints(reader, 'messaging.client.consumed.messages');
    expect(consumed.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    expect(consumed.reduce((n, p) => n + Number(p.value), 0)).toBe(CLIENTS * TOPICS_EACH);
    await meterProvider.shutdown();
  });
});
