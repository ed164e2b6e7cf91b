import { traceConsumer } from '@hoptrace/kafka';
import { sleep, until, useTestTracing } from '@hoptrace/test-kit';
import type { ConsumerRunConfig, EachBatchPayload, EachMessagePayload, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

useTestTracing();
const clients = useKafkaClients();

/**
 * A run config that is a class instance: kafkajs destructures `run()`'s argument, so settings given
 * as getters (or inherited) count exactly like own fields.
 */
class ManualCommitRun {
  readonly seen: string[] = [];
  get autoCommit(): boolean {
    return false;
  }
  eachMessage = async ({ message }: EachMessagePayload): Promise<void> => {
    this.seen.push(message.offset);
  };
}

class NoAutoResolveRun {
  readonly seen: string[] = [];
  get eachBatchAutoResolve(): boolean {
    return false;
  }
  eachBatch = async ({ batch, resolveOffset }: EachBatchPayload): Promise<void> => {
    if (this.seen.length > 0) return; // kafkajs fetches the unresolved rest again: leave it
    for (const m of batch.messages) this.seen.push(m.offset);
    // Only the first message counts as processed: the rest stays uncommitted.
    resolveOffset(batch.messages[0]?.offset as string);
  };
}

async function committedOffsets(kafka: Kafka, group: string, topic: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return (offsets?.partitions ?? []).map((p) => p.offset);
  } finally {
    await admin.disconnect();
  }
}

/** Consumes three messages with `config` (raw or traced) and returns what the group committed. */
async function commitsAfter(
  traced: boolean,
  config: { seen: string[] } & ConsumerRunConfig,
): Promise<{ seen: string[]; committed: string[] }> {
  const kafka = newKafka();
  const [topic] = (await createTopics(kafka)) as [string];
  const producer = await clients.producer(kafka.producer());
  await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
  const group = groupId();
  const made = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
  const consumer = await clients.consumer(traced ? traceConsumer(made) : made, [topic]);
  await consumer.run(config);
  await until(() => config.seen.length === 3, 'three messages');
  await sleep(300);
  await consumer.stop();
  return { seen: config.seen, committed: await committedOffsets(kafka, group, topic) };
}

describe('a run config whose settings are getters (a class instance)', () => {
  it('autoCommit: false from a getter: the traced consumer commits nothing, as kafkajs alone', async () => {
    const raw = await commitsAfter(false, new ManualCommitRun() as ManualCommitRun & ConsumerRunConfig);
    const traced = await commitsAfter(true, new ManualCommitRun() as ManualCommitRun & ConsumerRunConfig);
    expect(raw).toEqual({ seen: ['0', '1', '2'], committed: ['-1'] });
    expect(traced).toEqual(raw);
  });

  it('eachBatchAutoResolve: false from a getter: only what the handler resolved is committed', async () => {
    const raw = await commitsAfter(false, new NoAutoResolveRun() as NoAutoResolveRun & ConsumerRunConfig);
    const traced = await commitsAfter(true, new NoAutoResolveRun() as NoAutoResolveRun & ConsumerRunConfig);
    expect(raw).toEqual({ seen: ['0', '1', '2'], committed: ['1'] });
    expect(traced).toEqual(raw);
  });
});
