import { type InstrumentationScope, MESSAGING_SYSTEM } from '@hoptrace/core/adapter';
import packageJson from '../package.json' with { type: 'json' };

/**
 * BullMQ's "not done yet" signals: thrown by a processor to move the job elsewhere (delayed, back to
 * wait, waiting for children, rate limited), never failures. BullMQ itself tells them apart by
 * these names (and the rate limit by its message).
 */
const CONTROL_FLOW = new Set(['DelayedError', 'WaitingError', 'WaitingChildrenError', 'RateLimitError']);
const RATE_LIMIT_MESSAGE = 'bullmq:rateLimitExceeded';

/** The name of a BullMQ control-flow signal, or `undefined` for anything else. Never throws. */
export function bullmqControlFlow(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  try {
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && CONTROL_FLOW.has(name)) return name;
    return (error as { message?: unknown }).message === RATE_LIMIT_MESSAGE ? 'RateLimitError' : undefined;
  } catch {
    return undefined;
  }
}

/** What every BullMQ wrapper tells core about itself: scope, version (from package.json at build time), system, control flow. */
export const BULLMQ_SCOPE: InstrumentationScope = {
  name: '@hoptrace/bullmq',
  version: packageJson.version,
  system: MESSAGING_SYSTEM.bullmq,
  controlFlow: bullmqControlFlow,
};
