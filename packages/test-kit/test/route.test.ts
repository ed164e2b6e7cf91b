import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { containerRuntimeUnavailable } from '../src/harness/containers.ts';
import { probeKafka, probeRabbit, probeRedis } from '../src/harness/probes.ts';
import { resolveAllBrokers, resolveBroker } from '../src/harness/resolve.ts';
import { BROKER_ROUTE_ENV, brokerRoute, resolutionSteps } from '../src/harness/route.ts';
import { BrokerUnavailableError } from '../src/harness/types.ts';

// Every probe "answers", wherever it is pointed: so on the auto route the loopback step always wins,
// and a route that still reached loopback (or the environment) would resolve instead of failing.
vi.mock('../src/harness/probes.ts', () => ({
  probeKafka: vi.fn(async () => 'cluster fake, 1 broker(s)'),
  probeRabbit: vi.fn(async () => 'RabbitMQ (fake)'),
  probeRedis: vi.fn(async () => 'Redis (fake)'),
}));

const saved = { ...process.env };
beforeEach(() => {
  vi.clearAllMocks();
  for (const name of [BROKER_ROUTE_ENV, 'HOPTRACE_REDIS_URL', 'HOPTRACE_NO_TESTCONTAINERS', 'DOCKER_HOST']) {
    delete process.env[name];
  }
});
afterEach(() => {
  process.env = { ...saved };
});

/** A DOCKER_HOST where nothing can answer: a socket path in a fresh, empty directory. */
function deadDockerHost(): string {
  return `unix://${join(mkdtempSync(join(tmpdir(), 'hoptrace-no-runtime-')), 'docker.sock')}`;
}

describe('HOPTRACE_BROKERS: which route the harness takes', () => {
  it.each([
    [undefined, 'auto'],
    ['', 'auto'],
    ['  ', 'auto'],
    ['auto', 'auto'],
    ['testcontainers', 'testcontainers'],
    [' TestContainers ', 'testcontainers'],
  ])('reads %j as %s', (value, route) => {
    expect(brokerRoute(value === undefined ? {} : { [BROKER_ROUTE_ENV]: value })).toBe(route);
  });

  it('rejects an unknown route instead of quietly falling back to auto', () => {
    expect(() => brokerRoute({ [BROKER_ROUTE_ENV]: 'docker' })).toThrow(
      'HOPTRACE_BROKERS="docker" is not a route; use one of: auto, testcontainers',
    );
  });

  it('tries only Testcontainers on the testcontainers route, every step on auto', () => {
    expect(resolutionSteps('testcontainers')).toEqual(['testcontainers']);
    expect(resolutionSteps('auto')).toEqual(['env', 'loopback', 'testcontainers', 'provision']);
  });

  it('takes the loopback broker on the auto route (the control for the next test)', async () => {
    const broker = await resolveBroker('redis');
    expect(broker).toMatchObject({ source: 'loopback', endpoint: { host: '127.0.0.1', port: 6379 } });
    expect(probeRedis).toHaveBeenCalledTimes(1);
  });

  it('skips the environment and loopback on the testcontainers route, and says so when no runtime answers', async () => {
    process.env[BROKER_ROUTE_ENV] = 'testcontainers';
    process.env.HOPTRACE_REDIS_URL = 'redis://127.0.0.1:6379';
    const dockerHost = deadDockerHost();
    process.env.DOCKER_HOST = dockerHost;
    const attempt = resolveBroker('redis');
    await expect(attempt).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(attempt).rejects.toThrow(
      `No redis broker: HOPTRACE_BROKERS=testcontainers starts brokers with Testcontainers only, but the container runtime at DOCKER_HOST=${dockerHost} did not answer`,
    );
    await expect(attempt).rejects.toThrow('Fix: ./dev containers test');
    // Neither the broker named in the environment nor the one on loopback was even asked.
    expect(probeRedis).not.toHaveBeenCalled();
  });

  it('fails the same way when Testcontainers is disabled, rather than provisioning', async () => {
    process.env[BROKER_ROUTE_ENV] = 'testcontainers';
    process.env.HOPTRACE_NO_TESTCONTAINERS = '1';
    await expect(resolveBroker('kafka')).rejects.toThrow(
      'No kafka broker: HOPTRACE_BROKERS=testcontainers starts brokers with Testcontainers only, but disabled by HOPTRACE_NO_TESTCONTAINERS=1',
    );
    expect(probeKafka).not.toHaveBeenCalled();
  });

  it('reports every kind when the route is asked for and no runtime answers', async () => {
    process.env[BROKER_ROUTE_ENV] = 'testcontainers';
    process.env.DOCKER_HOST = deadDockerHost();
    const attempt = resolveAllBrokers(() => undefined, ['redis', 'rabbitmq', 'kafka']);
    await expect(attempt).rejects.toThrow(/No redis broker[\s\S]*No rabbitmq broker[\s\S]*No kafka broker/);
    expect(probeRedis).not.toHaveBeenCalled();
    expect(probeRabbit).not.toHaveBeenCalled();
    expect(probeKafka).not.toHaveBeenCalled();
  });

  it('names the dead DOCKER_HOST in the runtime check', async () => {
    const dockerHost = deadDockerHost();
    process.env.DOCKER_HOST = dockerHost;
    expect(await containerRuntimeUnavailable()).toMatch(
      new RegExp(`^the container runtime at DOCKER_HOST=${dockerHost} did not answer: `),
    );
  });

  it('rejects an unknown route before trying any broker', async () => {
    process.env[BROKER_ROUTE_ENV] = 'podman';
    await expect(resolveAllBrokers(() => undefined, ['redis'])).rejects.toThrow(
      'HOPTRACE_BROKERS="podman" is not a route',
    );
    expect(probeRedis).not.toHaveBeenCalled();
  });
});
