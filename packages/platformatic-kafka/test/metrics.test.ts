import { traceConsumer, traceProducer, withBatchContext } from '@hoptrace/platformatic-kafka';
import { metricPoints, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { fakeConsumer, fakeProducer, message } from './fakes.ts';

useTestTracing();

const base = { 'messaging.system.name': 'kafka', 'messaging.destination.name': 't' };

describe('metrics (same names and attributes as @hoptrace/kafka)', () => {
  it('records sent messages per send, with error.type on failure', async () => {
    const reader = new TestMetricReader();
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer, {
      meterProvider: new MeterProvider({ readers: [reader] }),
    });
    await producer.send({
      messages: [
        { topic: 't', value: 'a' },
        { topic: 't', value: 'b' },
      ],
    });
    fake.producer.failWith = Object.assign(new Error('nope'), { code: 'PLT_KFK_NETWORK' });
    await Promise.resolve(producer.send({ messages: [{ topic: 't', value: 'c' }] })).catch(() => undefined);
    expect(await metricPoints(reader, 'messaging.client.sent.messages')).toEqual([
      {
        attributes: { ...base, 'messaging.operation.name': 'send', 'messaging.operation.type': 'send' },
        value: 2,
      },
      {
        attributes: {
          ...base,
          'messaging.operation.name': 'send',
          'messaging.operation.type': 'send',
          'error.type': 'PLT_KFK_NETWORK',
        },
        value: 1,
      },
    ]);
    const durations = await metricPoints(reader, 'messaging.client.operation.duration');
    expect(durations).toHaveLength(2);
  });

  it('a send on a transaction records its metrics when the broker answers, both styles, not at the aborted commit', async () => {
    const reader = new TestMetricReader();
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer, {
      meterProvider: new MeterProvider({ readers: [reader] }),
    });
    const transaction = await producer.beginTransaction();
    await transaction.send({ messages: [{ topic: 't', value: 'a' }] });
    await new Promise((resolve) => transaction.send({ messages: [{ topic: 't', value: 'b' }] }, resolve));
    // Both sends wait for the outcome (their spans are open), yet their metrics are recorded.
    const sent = [
      {
        attributes: { ...base, 'messaging.operation.name': 'send', 'messaging.operation.type': 'send' },
        value: 2,
      },
    ];
    expect(await metricPoints(reader, 'messaging.client.sent.messages')).toEqual(sent);
    await transaction.abort();
    // The abort ends the send spans ERROR; the sends themselves succeeded and are not counted again.
    expect(await metricPoints(reader, 'messaging.client.sent.messages')).toEqual(sent);
  });

  it('records one consumed message per processed message with the group, and time in queue', async () => {
    const reader = new TestMetricReader();
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer, {
      meterProvider: new MeterProvider({ readers: [reader] }),
    }).consume();
    s.on('data', () => undefined);
    stream.emit('data', message(new Map(), 0n));
    stream.emit('data', message(new Map(), 1n));
    await new Promise((r) => setImmediate(r));
    const attributes = {
      ...base,
      'messaging.operation.name': 'process',
      'messaging.consumer.group.name': 'fake-group',
    };
    expect(await metricPoints(reader, 'messaging.client.consumed.messages')).toEqual([
      { attributes, value: 2 },
    ]);
    const process = await metricPoints(reader, 'messaging.process.duration');
    expect(process.map((p) => p.attributes)).toEqual([attributes]);
    expect(process[0]?.value).toMatchObject({ count: 2 });
    const queue = await metricPoints(reader, 'hoptrace.messaging.time_in_queue');
    expect(queue[0]?.value).toMatchObject({ count: 2 });
  });

  it('batch mode: a withBatchContext batch counts its messages once', async () => {
    const reader = new TestMetricReader();
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer, {
      batchSpans: 'batch',
      meterProvider: new MeterProvider({ readers: [reader] }),
    }).consume();
    const got: object[] = [];
    s.on('data', (m: object) => got.push(m));
    for (const offset of [0n, 1n, 2n]) stream.emit('data', message(new Map(), offset));
    await withBatchContext(got, async () => undefined);
    expect((await metricPoints(reader, 'messaging.client.consumed.messages')).map((p) => p.value)).toEqual([
      3,
    ]);
  });
});
