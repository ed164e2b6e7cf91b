import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import type { BrokerEndpoints } from './types.ts';

/** Connects to Kafka, asks for the cluster description and returns a short description of it. */
export async function probeKafka(endpoint: BrokerEndpoints['kafka'], timeoutMs = 5000): Promise<string> {
  const kafka = new Kafka({
    clientId: 'hoptrace-harness',
    brokers: endpoint.brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return `cluster ${cluster.clusterId}, ${cluster.brokers.length} broker(s)`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Connects to RabbitMQ and returns the version the server announces. */
export async function probeRabbit(endpoint: BrokerEndpoints['rabbitmq'], timeoutMs = 5000): Promise<string> {
  const connection = await amqplib.connect(endpoint.url, { timeout: timeoutMs });
  try {
    const props = connection.connection.serverProperties;
    return `${String(props.product ?? 'RabbitMQ')} ${String(props.version ?? '(unknown version)')}`;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Connects to Redis and returns `redis_version` from INFO. */
export async function probeRedis(endpoint: BrokerEndpoints['redis'], timeoutMs = 3000): Promise<string> {
  const client = new Redis({
    host: endpoint.host,
    port: endpoint.port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = await client.info('server');
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1];
    return `Redis ${version ?? '(unknown version)'}`;
  } finally {
    client.disconnect();
  }
}
