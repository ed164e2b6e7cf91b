import { traceConsumer, traceProducer } from '@hoptrace/kafka';
import { collectMetrics, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { fakeConsumer, fakeProducer, message } from './helpers.ts';

useTestTracing();

describe('metrics', () => {
  it('records sent messages and operation duration, with error.type on failure', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer, { meterProvider });
    await producer.send({ topic: 'orders', messages: [{ value: 'a' }, { value: 'b' }] });
    fake.failWith = Object.assign(new Error('nope'), { type: 'NOT_LEADER_FOR_PARTITION' });
    await producer.send({ topic: 'orders', messages: [{ value: 'c' }] }).catch(() => undefined);
    const metrics = await collectMetrics(reader);
    const sent = metrics.get('messaging.client.sent.messages') ?? [];
    expect(sent).toEqual([
      {
        attributes: {
          'messaging.system.name': 'kafka',
          'messaging.operation.name': 'send',
          'messaging.operation.type': 'send',
          'messaging.destination.name': 'orders',
        },
        value: 2,
      },
      {
        attributes: {
          'messaging.system.name': 'kafka',
          'messaging.operation.name': 'send',
          'messaging.operation.type': 'send',
          'messaging.destination.name': 'orders',
          'error.type': 'NOT_LEADER_FOR_PARTITION',
        },
        value: 1,
      },
    ]);
    const duration = metrics.get('messaging.client.operation.duration') ?? [];
    expect(duration.map((d) => (d.value as { count: number }).count)).toEqual([1, 1]);
  });

  it('records consumed messages and process duration with the consumer group', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const fake = fakeConsumer();
    const consumer = traceConsumer(fake.consumer, { meterProvider, groupId: 'billing' });
    await consumer.run({ eachMessage: async () => undefined });
    const payload = {
      topic: 'orders',
      partition: 0,
      message: message(1),
      heartbeat: async () => undefined,
      pause: () => () => undefined,
    };
    await fake.config?.eachMessage?.(payload);
    await fake.config?.eachMessage?.(payload);
    const metrics = await collectMetrics(reader);
    expect(metrics.get('messaging.client.consumed.messages')).toEqual([
      {
        attributes: {
          'messaging.system.name': 'kafka',
          'messaging.operation.name': 'process',
          'messaging.destination.name': 'orders',
          'messaging.consumer.group.name': 'billing',
        },
        value: 2,
      },
    ]);
    const duration = metrics.get('messaging.process.duration') ?? [];
    expect(duration.map((d) => (d.value as { count: number }).count)).toEqual([2]);
  });
});
