import type { TestProject } from 'vitest/node';
import { resolveAllBrokers } from './resolve.ts';
import type { BrokerEndpoints } from './types.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Real brokers resolved once for the whole run by the harness (see `brokerEndpoint`). */
    brokers: Partial<BrokerEndpoints>;
  }
}

type Resolved = Awaited<ReturnType<typeof resolveAllBrokers>>;
interface Shared {
  resolved: Promise<Resolved>;
  users: number;
}
const KEY = Symbol.for('hoptrace.harness.brokers');
const registry = globalThis as typeof globalThis & { [KEY]?: Shared };

/**
 * vitest global setup for every test that needs a broker: resolves Kafka, RabbitMQ and Redis once per
 * run (shared by every project that lists this setup), prints which ones were used and how they were
 * found, and stops what it started when the last project is done.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let shared = registry[KEY];
  if (!shared) {
    const log = (line: string) => process.stdout.write(`[harness] ${line}\n`);
    shared = {
      users: 0,
      resolved: resolveAllBrokers(log).then((resolved) => {
        process.stdout.write(`\n${resolved.summary()}\n\n`);
        return resolved;
      }),
    };
    registry[KEY] = shared;
  }
  shared.users += 1;
  const resolved = await shared.resolved;
  project.provide('brokers', resolved.endpoints);
  return async () => {
    const current = registry[KEY];
    if (!current) return;
    current.users -= 1;
    if (current.users === 0) {
      delete registry[KEY];
      await resolved.stop();
    }
  };
}
