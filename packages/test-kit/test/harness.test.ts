import { createServer } from 'node:net';
import {
  BROKER_ENV,
  BrokerUnavailableError,
  requestedKinds,
  resolveBroker,
} from '@hoptrace/test-kit/harness';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseHostPort } from '../src/harness/net.ts';

const saved = { ...process.env };
beforeEach(() => {
  // These tests are about the auto route, also when a shell has the container route's exports.
  delete process.env.HOPTRACE_BROKERS;
});
afterEach(() => {
  process.env = { ...saved };
});

/** A port nothing listens on: bind, read the port, close. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('broker harness', () => {
  it('uses only the broker named in the environment and fails loudly when it does not answer', async () => {
    const port = await freePort();
    process.env[BROKER_ENV.redis] = `redis://127.0.0.1:${port}`;
    const attempt = resolveBroker('redis');
    await expect(attempt).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(attempt).rejects.toThrow(
      `HOPTRACE_REDIS_URL=redis://127.0.0.1:${port} is set but the broker there did not answer`,
    );
  });

  it('takes a broker from the environment and reports its version and source', async () => {
    process.env[BROKER_ENV.redis] = 'redis://127.0.0.1:6379';
    const broker = await resolveBroker('redis');
    expect(broker).toMatchObject({
      kind: 'redis',
      source: 'env',
      endpoint: { host: '127.0.0.1', port: 6379 },
    });
    expect(broker.version).toMatch(/^Redis \d+\.\d+/);
  });

  it('limits the kinds with HOPTRACE_ONLY and rejects unknown kinds', () => {
    delete process.env.HOPTRACE_ONLY;
    expect(requestedKinds()).toEqual(['redis', 'rabbitmq', 'kafka']);
    process.env.HOPTRACE_ONLY = 'kafka, redis';
    expect(requestedKinds()).toEqual(['redis', 'kafka']);
    process.env.HOPTRACE_ONLY = 'mqtt';
    expect(() => requestedKinds()).toThrow('HOPTRACE_ONLY: unknown broker kind "mqtt"');
  });

  it.each([
    ['127.0.0.1:9092', { host: '127.0.0.1', port: 9092 }],
    ['kafka.internal', { host: 'kafka.internal', port: 9092 }],
    ['[::1]:19092', { host: '::1', port: 19092 }],
  ])('parses %s', (input, expected) => {
    expect(parseHostPort(input, 9092)).toEqual(expected);
  });
});
