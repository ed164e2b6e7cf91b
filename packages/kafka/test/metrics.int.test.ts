import { traceKafka } from '@hoptrace/kafka';
import { collectMetrics, TestMetricReader, until, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, seedBrokerAttributes, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();
const clients = useKafkaClients();

/** `name:type` of each point of `points` (its messaging.operation.name and .type), sorted. */
function nameAndType(points: { attributes: Record<string, unknown> }[] | undefined): string[] {
  return (points ?? [])
    .map((p) => `${p.attributes['messaging.operation.name']}:${p.attributes['messaging.operation.type']}`)
    .sort();
}

describe('metrics on a real broker', () => {
  it('messaging.client.operation.duration carries messaging.operation.type (send, settle); counts are per message', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    try {
      const kafka = traceKafka(newKafka('metrics-metrics'), { meterProvider });
      const [topic] = (await createTopics(kafka)) as [string];
      const producer = await clients.producer(kafka.producer());
      await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
      let seen = 0;
      const consumer = await clients.consumer(kafka.consumer({ groupId: groupId() }), [topic]);
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) {
            seen++;
            resolveOffset(m.offset);
          }
        },
      });
      await until(() => seen === 3);
      const transactional = await clients.producer(
        kafka.producer({ transactionalId: `metrics-${groupId()}`, maxInFlightRequests: 1, idempotent: true }),
      );
      const transaction = await transactional.transaction();
      await transaction.send({ topic, messages: [{ value: 'x' }] });
      await transaction.abort();

      const metrics = await collectMetrics(reader);
      expect(nameAndType(metrics.get('messaging.client.operation.duration'))).toEqual([
        'abort_transaction:settle',
        'send:send',
      ]);
      expect(nameAndType(metrics.get('messaging.process.duration'))).toEqual(['process:undefined']);
      expect(metrics.get('messaging.client.sent.messages')?.map((p) => p.value)).toEqual([4]);
      expect(metrics.get('messaging.client.consumed.messages')?.map((p) => p.value)).toEqual([3]);
    } finally {
      await meterProvider.shutdown();
    }
  });

  it('every point of the four messaging metrics carries server.address and server.port, as the spans do', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    try {
      const kafka = traceKafka(newKafka('metrics-server'), { meterProvider });
      const [topic] = (await createTopics(kafka)) as [string];
      const producer = await clients.producer(kafka.producer());
      await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
      let seen = 0;
      const consumer = await clients.consumer(kafka.consumer({ groupId: groupId() }), [topic]);
      await consumer.run({
        eachMessage: async () => {
          seen++;
        },
      });
      await until(() => seen === 2);
      const server = seedBrokerAttributes();
      const spans = tracing.current.spans().filter((s) => s.name.endsWith(topic));
      expect(spans.length).toBeGreaterThan(0);
      for (const span of spans) expect(span.attributes).toMatchObject(server);

      const metrics = await collectMetrics(reader);
      for (const name of [
        'messaging.client.operation.duration',
        'messaging.process.duration',
        'messaging.client.sent.messages',
        'messaging.client.consumed.messages',
        'hoptrace.messaging.time_in_queue',
      ]) {
        const points = metrics.get(name) ?? [];
        expect(points.length, name).toBeGreaterThan(0);
        for (const point of points) expect(point.attributes, name).toMatchObject(server);
      }
    } finally {
      await meterProvider.shutdown();
    }
  });

  it('legacyAttributes: the metrics carry the older names too (messaging.system, messaging.operation, messaging.kafka.consumer.group); a wrapper without it on the same MeterProvider does not', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    try {
      const legacy = traceKafka(newKafka('metrics-legacy'), { meterProvider, legacyAttributes: true });
      const plain = traceKafka(newKafka('metrics-plain'), { meterProvider });
      const [legacyTopic, plainTopic] = (await createTopics(legacy, 2)) as [string, string];
      const group = groupId();
      await (await clients.producer(legacy.producer())).send({
        topic: legacyTopic,
        messages: [{ value: 'a' }],
      });
      await (await clients.producer(plain.producer())).send({
        topic: plainTopic,
        messages: [{ value: 'b' }],
      });
      let seen = 0;
      const consumer = await clients.consumer(legacy.consumer({ groupId: group }), [legacyTopic]);
      await consumer.run({
        eachMessage: async () => {
          seen++;
        },
      });
      await until(() => seen === 1);
      const metrics = await collectMetrics(reader);
      const sent = metrics.get('messaging.client.sent.messages') ?? [];
      const legacySent = sent.find((p) => p.attributes['messaging.destination.name'] === legacyTopic);
      expect(legacySent?.attributes).toMatchObject({
        'messaging.system.name': 'kafka',
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.operation': 'publish',
      });
      const plainSent = sent.find((p) => p.attributes['messaging.destination.name'] === plainTopic);
      expect(plainSent?.attributes['messaging.system.name']).toBe('kafka');
      expect(plainSent?.attributes['messaging.system']).toBeUndefined();
      expect(plainSent?.attributes['messaging.operation']).toBeUndefined();
      const processed = metrics.get('messaging.process.duration') ?? [];
      expect(processed).toHaveLength(1);
      expect(processed[0]?.attributes).toMatchObject({
        'messaging.system': 'kafka',
        'messaging.consumer.group.name': group,
        'messaging.kafka.consumer.group': group,
      });
    } finally {
      await meterProvider.shutdown();
    }
  });
});
