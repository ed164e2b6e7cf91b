import { randomUUID } from 'node:crypto';
import { brokerEndpoint } from '@hoptrace/integration/harness';
import { Kafka, logLevel } from 'kafkajs';

/** A fresh kafkajs client for the shared test broker. */
export function newKafka(clientId = 'hoptrace-test'): Kafka {
  return new Kafka({ clientId, brokers: brokerEndpoint('kafka').brokers, logLevel: logLevel.NOTHING });
}

/** Creates `count` uniquely named topics with `partitions` partitions each. */
export async function createTopics(kafka: Kafka, count = 1, partitions = 1): Promise<string[]> {
  const topics = Array.from({ length: count }, () => `hoptrace-kafka-${randomUUID()}`);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: partitions })),
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  return topics;
}

/** A unique consumer group id. */
export function groupId(): string {
  return `hoptrace-kafka-${randomUUID()}`;
}

/** Resolves once `predicate` holds, polling every 25 ms; fails after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
