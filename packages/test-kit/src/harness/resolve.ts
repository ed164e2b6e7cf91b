import {
  containerImage,
  containerRuntimeUnavailable,
  IMAGE_ENV,
  type StartedContainer,
  startKafkaContainer,
  startRabbitContainer,
  startRedisContainer,
} from './containers.ts';
import { startDebianRabbit, startDebianRedis } from './debian.ts';
import { kafkaVersion, runningLocalKafkaVersion, startLocalKafka } from './kafka-local.ts';
import { parseHostPort } from './net.ts';
import { probeKafka, probeRabbit, probeRedis } from './probes.ts';
import { BROKER_ROUTE_ENV, type BrokerRoute, brokerRoute } from './route.ts';
import {
  type BrokerEndpoints,
  type BrokerKind,
  BrokerUnavailableError,
  type ResolvedBroker,
} from './types.ts';

/**
 * Environment variables that point the suite at brokers of your own. When one is set, the harness
 * uses it and nothing else for that kind (a broker named but unreachable is an error, not a fallback).
 */
export const BROKER_ENV = {
  kafka: 'HOPTRACE_KAFKA_BROKERS',
  rabbitmq: 'HOPTRACE_RABBITMQ_URL',
  redis: 'HOPTRACE_REDIS_URL',
} as const satisfies Record<BrokerKind, string>;

interface BrokerSpec<K extends BrokerKind> {
  kind: K;
  fromEnv(value: string): BrokerEndpoints[K];
  loopback: BrokerEndpoints[K];
  /** The broker's own account of itself; `known` is a version learnt elsewhere (an image label). */
  probe(endpoint: BrokerEndpoints[K], known?: string): Promise<string>;
  container(log: (line: string) => void): Promise<StartedContainer<K>>;
  provision(
    log: (line: string) => void,
  ): Promise<{ endpoint: BrokerEndpoints[K]; version?: string; stop(): Promise<void> }>;
  provisionHow: string;
  fix: string;
}

const SPECS: { [K in BrokerKind]: BrokerSpec<K> } = {
  kafka: {
    kind: 'kafka',
    fromEnv: (v) => ({
      brokers: v
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean),
    }),
    loopback: { brokers: ['127.0.0.1:9092'] },
    probe: async (e, known) => {
      const description = await probeKafka(e);
      const port = parseHostPort(e.brokers[0] ?? '', 9092).port;
      const version = known?.replace(/^Kafka /, '') ?? runningLocalKafkaVersion(port);
      return version
        ? `Kafka ${version} (${description})`
        : `Kafka, version not reported by the protocol (${description})`;
    },
    container: startKafkaContainer,
    provision: async (log) => {
      const kafka = await startLocalKafka({ log });
      return { endpoint: { brokers: kafka.brokers }, version: `Kafka ${kafka.version}`, stop: kafka.stop };
    },
    provisionHow: `Kafka ${kafkaVersion()} from Maven Central jars in KRaft mode`,
    fix: './dev kafka start   (or set HOPTRACE_KAFKA_BROKERS=host:port)',
  },
  rabbitmq: {
    kind: 'rabbitmq',
    fromEnv: (v) => ({ url: v }),
    loopback: { url: 'amqp://guest:guest@127.0.0.1:5672' },
    probe: (e) => probeRabbit(e),
    container: startRabbitContainer,
    provision: async () => {
      const stop = await startDebianRabbit();
      return { endpoint: { url: 'amqp://guest:guest@127.0.0.1:5672' }, stop };
    },
    provisionHow: "RabbitMQ from Debian's rabbitmq-server package",
    fix: 'apt-get install -y rabbitmq-server && rabbitmq-server -detached   (or set HOPTRACE_RABBITMQ_URL=amqp://...)',
  },
  redis: {
    kind: 'redis',
    fromEnv: (v) => {
      const url = new URL(v.includes('://') ? v : `redis://${v}`);
      return { host: url.hostname, port: url.port ? Number(url.port) : 6379 };
    },
    loopback: { host: '127.0.0.1', port: 6379 },
    probe: (e) => probeRedis(e),
    container: startRedisContainer,
    provision: async () => {
      const stop = await startDebianRedis(6379);
      return { endpoint: { host: '127.0.0.1', port: 6379 }, stop };
    },
    provisionHow: "Redis from Debian's redis-server package",
    fix: 'apt-get install -y redis-server && redis-server --daemonize yes --port 6379   (or set HOPTRACE_REDIS_URL=redis://host:port)',
  },
};

const noop = async () => undefined;

/** The fix printed when the Testcontainers route cannot start a broker. */
const ROUTE_FIX =
  './dev containers test   (runs the container lane), or ./dev containers setup, then eval "$(./dev containers env)"';

/**
 * Finds a real broker of one kind. On the `auto` route ({@link brokerRoute}) it tries, in order: the
 * environment variable, the default loopback port, Testcontainers (when a container runtime answers),
 * then local provisioning. On the `testcontainers` route it starts the broker with Testcontainers and
 * tries nothing else. Never skips: throws {@link BrokerUnavailableError} naming every attempt and the
 * command that fixes it.
 */
export async function resolveBroker<K extends BrokerKind>(
  kind: K,
  log: (line: string) => void = () => undefined,
  route: BrokerRoute = brokerRoute(),
): Promise<ResolvedBroker<K>> {
  const spec = SPECS[kind] as unknown as BrokerSpec<K>;
  if (route === 'testcontainers') return resolveWithTestcontainers(spec, log);
  const tried: string[] = [];
  const envName = BROKER_ENV[kind];
  const envValue = process.env[envName];
  if (envValue) {
    const endpoint = spec.fromEnv(envValue);
    try {
      const version = await spec.probe(endpoint);
      return { kind, endpoint, version, source: 'env', detail: `from ${envName}=${envValue}`, stop: noop };
    } catch (error) {
      throw new BrokerUnavailableError(
        `${kind}: ${envName}=${envValue} is set but the broker there did not answer: ${(error as Error).message}`,
      );
    }
  }
  tried.push(`${envName} (unset)`);

  try {
    const version = await spec.probe(spec.loopback);
    return {
      kind,
      endpoint: spec.loopback,
      version,
      source: 'loopback',
      detail: `already listening on loopback (${describe(spec.loopback)})`,
      stop: noop,
    };
  } catch (error) {
    tried.push(`loopback ${describe(spec.loopback)}: ${firstLine(error)}`);
  }

  const noRuntime = await containerRuntimeUnavailable();
  if (noRuntime) {
    tried.push(`Testcontainers: ${noRuntime}`);
  } else {
    try {
      return await startWithTestcontainers(spec, log, '');
    } catch (error) {
      tried.push(`Testcontainers: ${firstLine(error)}`);
    }
  }

  if (process.env.HOPTRACE_NO_PROVISION === '1') {
    tried.push('local provisioning: disabled by HOPTRACE_NO_PROVISION=1');
  } else {
    try {
      const started = await spec.provision(log);
      const version = started.version ?? (await spec.probe(started.endpoint));
      return {
        kind,
        endpoint: started.endpoint,
        version,
        source: 'provisioned',
        detail: `started here: ${spec.provisionHow}`,
        stop: started.stop,
      };
    } catch (error) {
      tried.push(`local provisioning (${spec.provisionHow}): ${firstLine(error)}`);
    }
  }
  throw new BrokerUnavailableError(
    `No ${kind} broker could be had. Tried, in order:\n  - ${tried.join('\n  - ')}\nFix: ${spec.fix}`,
  );
}

/** Starts the broker's container and probes it; stops the container again if the probe fails. */
async function startWithTestcontainers<K extends BrokerKind>(
  spec: BrokerSpec<K>,
  log: (line: string) => void,
  why: string,
): Promise<ResolvedBroker<K>> {
  const started = await spec.container(log);
  try {
    const version = await spec.probe(started.endpoint, started.version);
    return {
      kind: spec.kind,
      endpoint: started.endpoint,
      version,
      source: 'testcontainers',
      detail: `started with Testcontainers from ${started.image}${why}`,
      stop: started.stop,
    };
  } catch (error) {
    await started.stop().catch(() => undefined);
    throw error;
  }
}

/** The `testcontainers` route: no environment, no loopback, no provisioning, no fallback. */
async function resolveWithTestcontainers<K extends BrokerKind>(
  spec: BrokerSpec<K>,
  log: (line: string) => void,
): Promise<ResolvedBroker<K>> {
  const asked = `${BROKER_ROUTE_ENV}=testcontainers`;
  const noRuntime = await containerRuntimeUnavailable();
  if (noRuntime) {
    throw new BrokerUnavailableError(
      `No ${spec.kind} broker: ${asked} starts brokers with Testcontainers only, but ${noRuntime}.\nFix: ${ROUTE_FIX}`,
    );
  }
  const image = containerImage(spec.kind);
  try {
    return await startWithTestcontainers(spec, log, ` (${asked})`);
  } catch (error) {
    throw new BrokerUnavailableError(
      `No ${spec.kind} broker: ${asked}, but Testcontainers could not start ${image} (${IMAGE_ENV[spec.kind]}): ${(error as Error).message}\nFix: ${ROUTE_FIX}`,
    );
  }
}

function describe(endpoint: BrokerEndpoints[BrokerKind]): string {
  if ('brokers' in endpoint) return endpoint.brokers.join(',');
  if ('url' in endpoint) return endpoint.url.replace(/\/\/[^@]*@/, '//');
  return `${endpoint.host}:${endpoint.port}`;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

/**
 * The kinds this run needs: all three, or those listed in `HOPTRACE_ONLY` (comma-separated, e.g.
 * `rabbitmq,redis`) when working on one adapter. A test asking for a kind left out fails loudly.
 */
export function requestedKinds(): BrokerKind[] {
  const all: BrokerKind[] = ['redis', 'rabbitmq', 'kafka'];
  const only = process.env.HOPTRACE_ONLY?.split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  if (!only || only.length === 0) return all;
  for (const k of only) {
    if (!all.includes(k as BrokerKind))
      throw new Error(`HOPTRACE_ONLY: unknown broker kind ${JSON.stringify(k)}`);
  }
  return all.filter((k) => only.includes(k));
}

/** What {@link resolveAllBrokers} returns. */
export interface ResolvedBrokers {
  brokers: Partial<{ [K in BrokerKind]: ResolvedBroker<K> }>;
  endpoints: Partial<BrokerEndpoints>;
  stop(): Promise<void>;
  summary(): string;
}

/**
 * Resolves every requested broker ({@link requestedKinds}) on the route named by `HOPTRACE_BROKERS`:
 * one after another on `auto`, side by side on `testcontainers`. Stops what it started if another
 * one fails, and then throws with every failure's account.
 */
export async function resolveAllBrokers(
  log: (line: string) => void = () => undefined,
  kinds: BrokerKind[] = requestedKinds(),
): Promise<ResolvedBrokers> {
  const route = brokerRoute();
  const done: ResolvedBroker[] = [];
  const errors: string[] = [];
  if (route === 'testcontainers') {
    // Containers start independently of one another, so the route starts them side by side (the
    // auto route stays sequential: provisioning may run apt-get, which must not run twice at once).
    const settled = await Promise.allSettled(kinds.map((kind) => resolveBroker(kind, log, route)));
    for (const result of settled) {
      if (result.status === 'fulfilled') done.push(result.value);
      else errors.push((result.reason as Error).message);
    }
  } else {
    for (const kind of kinds) {
      try {
        done.push(await resolveBroker(kind, log, route));
      } catch (error) {
        errors.push((error as Error).message);
      }
    }
  }
  const stop = async () => {
    for (const broker of [...done].reverse()) await broker.stop().catch(() => undefined);
  };
  if (errors.length > 0) {
    await stop();
    throw new BrokerUnavailableError(errors.join('\n\n'));
  }
  const brokers: ResolvedBrokers['brokers'] = {};
  const endpoints: Partial<BrokerEndpoints> = {};
  for (const b of done) {
    (brokers as Record<string, ResolvedBroker>)[b.kind] = b;
    (endpoints as Record<string, unknown>)[b.kind] = b.endpoint;
  }
  return {
    brokers,
    endpoints,
    stop,
    summary: () =>
      [
        'brokers for this run:',
        ...done.map(
          (b) =>
            `  ${b.kind.padEnd(8)} ${describe(b.endpoint).padEnd(22)} ${b.version} — ${b.source}: ${b.detail}`,
        ),
        ...(route === 'testcontainers'
          ? [`  (${BROKER_ROUTE_ENV}=testcontainers: environment, loopback and provisioning were not tried)`]
          : []),
        ...(kinds.length < 3
          ? [`  (only ${kinds.join(', ')}: HOPTRACE_ONLY=${process.env.HOPTRACE_ONLY})`]
          : []),
      ].join('\n'),
  };
}
