import { inject } from 'vitest';
import type { BrokerEndpoints, BrokerKind } from './types.ts';

/**
 * The endpoint of a broker the harness resolved for this run, inside a vitest test file. Fails
 * loudly (never skips) when the run left that kind out with HOPTRACE_ONLY.
 */
export function brokerEndpoint<K extends BrokerKind>(kind: K): BrokerEndpoints[K] {
  const endpoint = inject('brokers')[kind];
  if (!endpoint) {
    throw new Error(
      `this test needs ${kind}, but the run resolved only ${Object.keys(inject('brokers')).join(', ') || 'none'} (HOPTRACE_ONLY=${process.env.HOPTRACE_ONLY ?? ''})`,
    );
  }
  return endpoint as BrokerEndpoints[K];
}
