import { DEFAULT_METRIC_ATTRIBUTE_SETS } from '@hoptrace/core/adapter';
import { traceKafka, traceProducer } from '@hoptrace/kafka';
import { metricPoints, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { fakeConsumer, fakeProducer, message } from './helpers.ts';

useTestTracing();

/** A kafkajs-shaped client whose producer() and consumer() hand out fresh fakes. */
function fakeKafka(): Kafka {
  return {
    producer: () => fakeProducer().producer,
    consumer: () => fakeConsumer().consumer,
  } as unknown as Kafka;
}

const CLIENTS = 4;
const TOPICS_EACH = 100;

describe('the metric series cap holds across clients (short-lived producers and consumers)', () => {
  it('producers of one traceKafka, one after another, never add series past the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const kafka = traceKafka(fakeKafka(), { meterProvider });
    for (let c = 0; c < CLIENTS; c++) {
      const producer = kafka.producer();
      for (let i = 0; i < TOPICS_EACH; i++)
        await producer.send({ topic: `t-${c}-${i}`, messages: [{ value: 'x' }] });
      await producer.disconnect();
    }
    const sent = await metricPoints(reader, 'messaging.client.sent.messages');
    expect(sent.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    expect(sent.reduce((n, p) => n + Number(p.value), 0)).toBe(CLIENTS * TOPICS_EACH);
    await meterProvider.shutdown();
  });

  it('producers traced one by one on one MeterProvider never add series past the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    for (let c = 0; c < CLIENTS; c++) {
      const producer = traceProducer(fakeProducer().producer, { meterProvider });
      for (let i = 0; i < TOPICS_EACH; i++)
        await producer.send({ topic: `t-${c}-${i}`, messages: [{ value: 'x' }] });
    }
    const sent = await metricPoints(reader, 'messaging.client.sent.messages');
    expect(sent.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    await meterProvider.shutdown();
  });

  it('consumers of one traceKafka never add series past the cap', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const kafka = traceKafka(
      {
        producer: () => fakeProducer().producer,
        consumer: () => {
          const fake = fakeConsumer();
          fakes.push(fake);
          return fake.consumer;
        },
      } as unknown as Kafka,
      { meterProvider },
    );
    const fakes: ReturnType<typeof fakeConsumer>[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const consumer = kafka.consumer({ groupId: 'g' });
      await consumer.run({ eachMessage: async () => undefined });
      const run = fakes[c]?.config?.eachMessage;
      for (let i = 0; i < TOPICS_EACH; i++) {
        await run?.({
          topic: `t-${c}-${i}`,
          partition: 0,
          message: message(i),
          heartbeat: async () => undefined,
          pause: () => () => undefined,
        });
      }
      await consumer.disconnect();
    }
    const consumed = await metricPoints(reader, 'messaging.client.consumed.messages');
    expect(consumed.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    expect(consumed.reduce((n, p) => n + Number(p.value), 0)).toBe(CLIENTS * TOPICS_EACH);
    await meterProvider.shutdown();
  });
});
