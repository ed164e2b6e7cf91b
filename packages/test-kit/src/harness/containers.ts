import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { BrokerEndpoints } from './types.ts';

/** Image tags used on the Testcontainers path (for users with Docker). */
export const CONTAINER_IMAGES = {
  kafka: process.env.HOPTRACE_KAFKA_IMAGE ?? 'confluentinc/cp-kafka:7.9.0',
  rabbitmq: process.env.HOPTRACE_RABBITMQ_IMAGE ?? 'rabbitmq:3.13-alpine',
  redis: process.env.HOPTRACE_REDIS_IMAGE ?? 'redis:7-alpine',
} as const;

/**
 * Why a container runtime cannot be used, or undefined when one answers. Looks for the usual sockets
 * first so that machines without Docker do not pay for loading Testcontainers.
 */
export async function containerRuntimeUnavailable(): Promise<string | undefined> {
  if (process.env.HOPTRACE_NO_TESTCONTAINERS === '1') return 'disabled by HOPTRACE_NO_TESTCONTAINERS=1';
  const sockets = [
    '/var/run/docker.sock',
    join(homedir(), '.docker/run/docker.sock'),
    join(homedir(), '.colima/default/docker.sock'),
  ];
  if (!process.env.DOCKER_HOST && !sockets.some((s) => existsSync(s))) {
    return `no container runtime (DOCKER_HOST unset, no socket at ${sockets.join(', ')})`;
  }
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('timed out')), 10_000),
    );
    await Promise.race([getContainerRuntimeClient(), timeout]);
    return undefined;
  } catch (error) {
    return `container runtime did not answer: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** A started container's endpoint and its stopper. */
export interface StartedContainer<K extends keyof BrokerEndpoints> {
  endpoint: BrokerEndpoints[K];
  stop(): Promise<void>;
}

/** Starts a Kafka container in KRaft mode. */
export async function startKafkaContainer(): Promise<StartedContainer<'kafka'>> {
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const started = await new KafkaContainer(CONTAINER_IMAGES.kafka).withKraft().start();
  return {
    endpoint: { brokers: [`${started.getHost()}:${started.getMappedPort(9093)}`] },
    stop: async () => void (await started.stop()),
  };
}

/** Starts a RabbitMQ container. */
export async function startRabbitContainer(): Promise<StartedContainer<'rabbitmq'>> {
  const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
  const started = await new RabbitMQContainer(CONTAINER_IMAGES.rabbitmq).start();
  return { endpoint: { url: started.getAmqpUrl() }, stop: async () => void (await started.stop()) };
}

/** Starts a Redis container. */
export async function startRedisContainer(): Promise<StartedContainer<'redis'>> {
  const { RedisContainer } = await import('@testcontainers/redis');
  const started = await new RedisContainer(CONTAINER_IMAGES.redis).start();
  return {
    endpoint: { host: started.getHost(), port: started.getPort() },
    stop: async () => void (await started.stop()),
  };
}
