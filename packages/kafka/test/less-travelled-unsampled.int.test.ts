/**
 * Less-travelled kafkajs paths with nothing sampled but metrics on (kjsmisc): the operations then
 * have no span, only a metric; raw and traced runs must observe the same, each metric point once.
 */
import { randomUUID } from 'node:crypto';
import { endOpenSpans } from '@hoptrace/core';
import { traceKafka } from '@hoptrace/kafka';
import { collectMetrics, sleep, TestMetricReader, until, useTestTracing } from '@hoptrace/test-kit';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { Kafka } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { committedOffsets, createTopics, newKafka, produceValues } from './helpers.ts';

const tracing = useTestTracing({ sampled: false });

afterEach(() => {
  expect(endOpenSpans()).toBe(0);
});

const name = (what: string) => `kjsmisc-${what}-${randomUUID()}`;

/** One new topic (see `createTopics`). */
async function createTopic(): Promise<string> {
  return (await createTopics(newKafka()))[0] as string;
}

describe('kjsmisc unsampled, metrics on', () => {
  it('consume-transform-produce with commit and abort, a handler that throws once: as raw; one metric point per operation', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    try {
      const run = async (kafka: Kafka) => {
        const input = await createTopic();
        const output = await createTopic();
        await produceValues(input, 3);
        const group = name('group');
        const producer = kafka.producer({
          transactionalId: name('tx'),
          idempotent: true,
          maxInFlightRequests: 1,
        });
        await producer.connect();
        const consumer = kafka.consumer({
          groupId: group,
          maxWaitTimeInMs: 100,
          retry: { retries: 3, initialRetryTime: 30, maxRetryTime: 60 },
        });
        await consumer.connect();
        await consumer.subscribe({ topics: [input], fromBeginning: true });
        const seen: string[] = [];
        let threw = false;
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ topic, partition, message }) => {
            seen.push(message.offset);
            const tx = await producer.transaction();
            await tx.send({ topic: output, messages: [{ value: `o-${message.value}` }] });
            await tx.sendOffsets({
              consumerGroupId: group,
              topics: [{ topic, partitions: [{ partition, offset: String(Number(message.offset) + 1) }] }],
            });
            if (message.offset === '1' && !threw) {
              threw = true;
              await tx.abort();
              throw new Error('once');
            }
            await tx.commit();
          },
        });
        await until(() => seen.includes('2'), 'the last');
        await sleep(300);
        await consumer.disconnect();
        await producer.disconnect();
        return { seen, committed: await committedOffsets(group, input) };
      };
      const raw = await run(newKafka('kjsmisc-raw'));
      const traced = await run(traceKafka(newKafka('kjsmisc-traced'), { meterProvider }));
      expect(traced).toEqual(raw);
      expect(tracing.current.spans()).toEqual([]);
      const metrics = await collectMetrics(reader);
      const count = (value: unknown) => (value as { count: number }).count;
      const ops = (metrics.get('messaging.client.operation.duration') ?? [])
        .map(
          (p) =>
            `${p.attributes['messaging.operation.name']}:${p.attributes['error.type'] ?? ''}:${count(p.value)}`,
        )
        .sort();
      const processed = (metrics.get('messaging.process.duration') ?? [])
        .map((p) => `${p.attributes['error.type'] ?? ''}:${count(p.value)}`)
        .sort();
      // Four deliveries (one failed and retried), four transactions (one aborted), each measured once.
      expect(ops).toEqual(['abort_transaction::1', 'commit_transaction::3', 'send::4', 'send_offsets::4']);
      expect(processed).toEqual([':3', 'Error:1']);
      const consumed = (metrics.get('messaging.client.consumed.messages') ?? []).map(
        (p) => p.value as number,
      );
      expect(consumed.reduce((a, b) => a + b, 0)).toBe(4);
    } finally {
      await meterProvider.shutdown();
    }
  });
});
