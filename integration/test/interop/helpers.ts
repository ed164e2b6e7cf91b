import { randomUUID } from 'node:crypto';
import { brokerEndpoint } from '@hoptrace/test-kit';
import { Kafka, logLevel } from 'kafkajs';

/** A kafkajs client (untraced) for the shared test broker. */
export function kafkajsClient(clientId: string): Kafka {
  return new Kafka({ clientId, brokers: brokerEndpoint('kafka').brokers, logLevel: logLevel.NOTHING });
}

/** Creates a fresh topic named `<prefix>-<uuid>` on the shared test broker and returns its name. */
export async function newTopic(prefix: string): Promise<string> {
  const topic = `${prefix}-${randomUUID()}`;
  const admin = kafkajsClient(`${prefix}-admin`).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}
