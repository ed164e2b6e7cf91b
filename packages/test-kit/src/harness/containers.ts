import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import {
  HARNESS_LABEL,
  OWNER_LABEL,
  ownerIsGone,
  ownerLabels,
  trackContainer,
  untrackContainer,
} from './container-owner.ts';
import { waitFor } from './net.ts';
import { probeKafka } from './probes.ts';
import type { BrokerEndpoints, BrokerKind } from './types.ts';

/** The images used when no override is set: public images, for users with Docker and a registry. */
export const DEFAULT_CONTAINER_IMAGES = {
  kafka: 'confluentinc/cp-kafka:7.9.0',
  rabbitmq: 'rabbitmq:3.13-alpine',
  redis: 'redis:7-alpine',
} as const satisfies Record<BrokerKind, string>;

/** The environment variables that override the image of each kind. */
export const IMAGE_ENV = {
  kafka: 'HOPTRACE_KAFKA_IMAGE',
  rabbitmq: 'HOPTRACE_RABBITMQ_IMAGE',
  redis: 'HOPTRACE_REDIS_IMAGE',
} as const satisfies Record<BrokerKind, string>;

/** The image a kind starts from: its override, else the default. Read at call time. */
export function containerImage(kind: BrokerKind, env: NodeJS.ProcessEnv = process.env): string {
  return env[IMAGE_ENV[kind]] || DEFAULT_CONTAINER_IMAGES[kind];
}

/** Image tags used on the Testcontainers path, as set when this module was loaded. */
export const CONTAINER_IMAGES = {
  kafka: containerImage('kafka'),
  rabbitmq: containerImage('rabbitmq'),
  redis: containerImage('redis'),
} as const;

/**
 * The Kafka image built by `./dev containers setup` (see images.ts) is not a Confluent image, so
 * `@testcontainers/kafka` cannot drive it; the harness recognises it by its repository name.
 */
export function isLocalKafkaImage(image: string): boolean {
  const repository = image.split('@')[0]?.replace(/:[^/]*$/, '') ?? '';
  return repository.split('/').pop() === 'hoptrace-kafka';
}

/**
 * The contract between the local Kafka image's start script and the harness. The host port is only
 * known once the runtime has mapped it, and Kafka must advertise exactly that port; so the script
 * prints {@link LOCAL_KAFKA_WAITING_LINE}, waits for the harness to copy `host:port` into
 * {@link LOCAL_KAFKA_ADVERTISED_FILE}, then starts the broker with that advertised listener.
 * (Choosing a free host port up front instead would race with anything else binding ports between
 * the choice and the container's start.) `KAFKA_ADVERTISED=host:port` in the environment skips the
 * wait, for starting the image by hand with a fixed port.
 */
export const LOCAL_KAFKA_WAITING_LINE = 'hoptrace-kafka: waiting for the advertised address';
/** See {@link LOCAL_KAFKA_WAITING_LINE}. */
export const LOCAL_KAFKA_ADVERTISED_FILE = '/opt/kafka/advertised';
/** The image label that records the Kafka version inside the local image. */
export const KAFKA_VERSION_LABEL = 'dev.hoptrace.kafka.version';

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
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out after 10 s')), 10_000);
    });
    await Promise.race([getContainerRuntimeClient(), timeout]).finally(() => clearTimeout(timer));
    return undefined;
  } catch (error) {
    const where = process.env.DOCKER_HOST ? ` at DOCKER_HOST=${process.env.DOCKER_HOST}` : '';
    return `the container runtime${where} did not answer: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** A started container's endpoint, what it runs and its stopper. */
export interface StartedContainer<K extends keyof BrokerEndpoints> {
  endpoint: BrokerEndpoints[K];
  image: string;
  /** The broker version, when the image says (the local Kafka image carries it as a label). */
  version?: string;
  stop(): Promise<void>;
}

let staleRemoval: Promise<number> | undefined;

/**
 * Removes containers a previous run left behind (labelled by the harness, owner gone), once per
 * process, before the first container starts; resolves with how many it removed.
 */
export function removeStaleContainers(log: (line: string) => void = () => undefined): Promise<number> {
  staleRemoval ??= (async () => {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const client = await getContainerRuntimeClient();
    const found = await client.container.dockerode.listContainers({
      all: true,
      filters: { label: [HARNESS_LABEL] },
    });
    const stale = found.filter((c) => ownerIsGone(c.Labels?.[OWNER_LABEL]));
    for (const c of stale) {
      await client.container
        .getById(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined);
    }
    if (stale.length > 0) {
      log(
        `removed ${stale.length} container(s) left by an interrupted run: ${stale.map((c) => `${c.Image} ${c.Id.slice(0, 12)}`).join(', ')}`,
      );
    }
    return stale.length;
  })();
  return staleRemoval;
}

/**
 * Publishes the container's ports on the runtime host's own address when that is an IPv4 loopback
 * address (as `./dev containers` sets up with TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1), so that nothing
 * listens on other interfaces. With a remote engine or a hostname, Testcontainers' defaults stay.
 */
async function loopbackHostIp(): Promise<string | undefined> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const host = (await getContainerRuntimeClient()).info.containerRuntime.host;
  return /^127\.\d+\.\d+\.\d+$/.test(host) ? host : undefined;
}

type PortBindings = Record<string, Array<{ HostIp?: string }>> | undefined;
function pinPorts(bindings: PortBindings, hostIp: string | undefined): void {
  if (!hostIp) return;
  for (const list of Object.values(bindings ?? {})) for (const binding of list) binding.HostIp = hostIp;
}

/** Refuses early, and says how to fix it, when a locally built image is missing. */
async function ensureLocalImage(image: string): Promise<void> {
  if (!image.startsWith('localhost/')) return;
  const { getContainerRuntimeClient, ImageName } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  if (!(await client.image.exists(ImageName.fromString(image)))) {
    throw new Error(
      `image ${image} is not in the container runtime's storage; it is built here, not pulled: run ./dev containers setup`,
    );
  }
}

/**
 * The stopper of a started container. The container was tracked for clean-up when it was created
 * (the `containerCreated` hooks below), before its start-up wait: a run interrupted while a broker
 * is still starting must remove that container too. Its normal stop removes it and untracks it.
 */
function owned(started: StartedTestContainer): () => Promise<void> {
  const id = started.getId();
  return async () => {
    await started.stop({ timeout: 0, remove: true, removeVolumes: true });
    untrackContainer(id);
  };
}

/** Starts Kafka: the local KRaft image through GenericContainer, or a Confluent image through KafkaContainer. */
export async function startKafkaContainer(
  log: (line: string) => void = () => undefined,
): Promise<StartedContainer<'kafka'>> {
  const image = containerImage('kafka');
  await removeStaleContainers(log);
  const hostIp = await loopbackHostIp();
  if (isLocalKafkaImage(image)) return startLocalKafkaImage(image, hostIp);
  const { KafkaContainer } = await import('@testcontainers/kafka');
  class PinnedKafka extends KafkaContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      await super.beforeContainerCreated?.();
      pinPorts(this.hostConfig.PortBindings, hostIp);
    }
    protected override async containerCreated(id: string): Promise<void> {
      trackContainer(id);
    }
  }
  const started = await new PinnedKafka(image).withKraft().withLabels(ownerLabels()).start();
  return {
    endpoint: { brokers: [`${started.getHost()}:${started.getMappedPort(9093)}`] },
    image,
    stop: owned(started),
  };
}

async function startLocalKafkaImage(
  image: string,
  hostIp: string | undefined,
): Promise<StartedContainer<'kafka'>> {
  await ensureLocalImage(image);
  const { GenericContainer, getContainerRuntimeClient, ImageName, Wait } = await import('testcontainers');
  class PinnedGeneric extends GenericContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      pinPorts(this.hostConfig.PortBindings, hostIp);
    }
    protected override async containerCreated(id: string): Promise<void> {
      trackContainer(id);
    }
  }
  const started = await new PinnedGeneric(image)
    .withExposedPorts(9092)
    .withLabels(ownerLabels())
    .withWaitStrategy(Wait.forLogMessage(LOCAL_KAFKA_WAITING_LINE))
    .withStartupTimeout(60_000)
    .start();
  const stop = owned(started);
  try {
    const advertised = `${started.getHost()}:${started.getMappedPort(9092)}`;
    await started.copyContentToContainer([
      { content: `${advertised}\n`, target: LOCAL_KAFKA_ADVERTISED_FILE },
    ]);
    const brokers = [advertised];
    const ready = await waitFor(() => probeKafka({ brokers }, 3000).then(() => true), 90_000, 300);
    if (!ready) {
      const logs = await started.logs({ tail: 40 });
      let tail = '';
      for await (const chunk of logs) tail += String(chunk);
      throw new Error(
        `Kafka in ${image} did not answer on ${advertised} within 90 s; last log lines:\n${tail}`,
      );
    }
    const client = await getContainerRuntimeClient();
    const labels = (await client.image.inspect(ImageName.fromString(image))).Config?.Labels ?? {};
    const version = labels[KAFKA_VERSION_LABEL];
    return { endpoint: { brokers }, image, ...(version ? { version: `Kafka ${version}` } : {}), stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** Starts a RabbitMQ container. */
export async function startRabbitContainer(
  log: (line: string) => void = () => undefined,
): Promise<StartedContainer<'rabbitmq'>> {
  const image = containerImage('rabbitmq');
  await removeStaleContainers(log);
  await ensureLocalImage(image);
  const hostIp = await loopbackHostIp();
  const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
  class PinnedRabbit extends RabbitMQContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      pinPorts(this.hostConfig.PortBindings, hostIp);
    }
    protected override async containerCreated(id: string): Promise<void> {
      trackContainer(id);
    }
  }
  // The module's 30 s start-up budget is tight for a cold Erlang VM on two busy cores.
  const started = await new PinnedRabbit(image).withLabels(ownerLabels()).withStartupTimeout(120_000).start();
  return { endpoint: { url: started.getAmqpUrl() }, image, stop: owned(started) };
}

/** Starts a Redis container. */
export async function startRedisContainer(
  log: (line: string) => void = () => undefined,
): Promise<StartedContainer<'redis'>> {
  const image = containerImage('redis');
  await removeStaleContainers(log);
  await ensureLocalImage(image);
  const hostIp = await loopbackHostIp();
  const { RedisContainer } = await import('@testcontainers/redis');
  class PinnedRedis extends RedisContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      pinPorts(this.hostConfig.PortBindings, hostIp);
    }
    protected override async containerCreated(id: string): Promise<void> {
      trackContainer(id);
    }
  }
  const started = await new PinnedRedis(image).withLabels(ownerLabels()).start();
  return { endpoint: { host: started.getHost(), port: started.getPort() }, image, stop: owned(started) };
}
