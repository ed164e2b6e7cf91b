import { traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { collectMetrics, onlySpan, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, createTopics, runCleanup, streamOf, stringConsumer, stringProducer } from './helpers.ts';

const tracing = useTestTracing();

afterEach(runCleanup);

/** The bootstrap broker the clients are given, as `server.address` / `server.port` should say. */
function server(): { 'server.address': string; 'server.port': number } {
  const [address, port] = (brokers()[0] as string).split(':');
  return { 'server.address': address as string, 'server.port': Number(port) };
}

describe('server.address / server.port on a real broker', () => {
  it('are on the first send of a producer that has not connected yet (the client connects during it)', async () => {
    const [topic] = await createTopics();
    const producer = traceProducer(stringProducer());
    await producer.send({ messages: [{ topic: topic as string, value: 'first' }] });
    expect(onlySpan(tracing.current.spans(), `send ${topic}`).attributes).toMatchObject(server());
  });

  it('are on the spans of clients wrapped after they connected', async () => {
    const [topic] = await createTopics();
    const raw = stringProducer();
    await raw.metadata({ topics: [topic as string] }); // connects before it is wrapped
    const producer = traceProducer(raw);
    await producer.send({ messages: [{ topic: topic as string, value: 'late' }] });
    expect(onlySpan(tracing.current.spans(), `send ${topic}`).attributes).toMatchObject(server());

    const rawConsumer = stringConsumer();
    await rawConsumer.metadata({ topics: [topic as string] });
    const consumer = traceConsumer(rawConsumer);
    const stream = await streamOf(consumer, [topic as string]);
    for await (const _message of stream) break;
    expect(onlySpan(tracing.current.spans(), `process ${topic}`).attributes).toMatchObject(server());
  });

  it('are on every point of the messaging metrics, with the values the spans carry', async () => {
    const [topic] = (await createTopics()) as [string];
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    try {
      const producer = traceProducer(stringProducer(), { meterProvider });
      await producer.send({ messages: [{ topic, value: 'a' }] });
      const consumer = traceConsumer(stringConsumer(), { meterProvider });
      const stream = await streamOf(consumer, [topic]);
      for await (const _message of stream) break;
      const servers = new Set(
        tracing.current
          .spans()
          .filter((s) => s.name.endsWith(topic))
          .map((s) => `${s.attributes['server.address']}:${s.attributes['server.port']}`),
      );
      expect([...servers]).not.toContain('undefined:undefined');
      const metrics = await collectMetrics(reader);
      for (const name of [
        'messaging.client.operation.duration',
        'messaging.process.duration',
        'messaging.client.sent.messages',
        'messaging.client.consumed.messages',
      ]) {
        const points = metrics.get(name) ?? [];
        expect(points.length, name).toBeGreaterThan(0);
        for (const { attributes } of points)
          expect(servers, name).toContain(`${attributes['server.address']}:${attributes['server.port']}`);
      }
    } finally {
      await meterProvider.shutdown();
    }
  });
});
