import { type InstrumentationScope, MESSAGING_SYSTEM } from '@hoptrace/core/adapter';
import packageJson from '../package.json' with { type: 'json' };

/**
 * BullMQ's "not done yet" signals: thrown by a processor to move the job elsewhere (delayed, back to
 * wait, waiting for children), never failures. BullMQ itself tells them apart by these names (or
 * their classes); a rate limit only by its message (`RATE_LIMIT_MESSAGE`), whatever the error's name.
 */
const CONTROL_FLOW = new Set(['DelayedError', 'WaitingError', 'WaitingChildrenError']);
const RATE_LIMIT_MESSAGE = 'bullmq:rateLimitExceeded';

/** How far up an error's class chain BullMQ's own classes are looked for. */
const MAX_CLASS_DEPTH = 8;

/**
 * Whether `error` is (by name, or by a class it extends) one of `names`, as BullMQ tells its errors
 * apart (`instanceof` or the name, so a subclass of `DelayedError` is still control flow). Returns
 * the matched name. A class is only taken for BullMQ's when the error has a `name` of its own, as
 * every BullMQ error's constructor sets one: the user's own `class DelayedError extends Error {}`
 * (named `Error`) is a failure to BullMQ, and so to hoptrace. Never throws (getters and proxy traps
 * that throw mean "no").
 */
export function bullmqErrorName(error: unknown, names: ReadonlySet<string>): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  try {
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && names.has(name)) return name;
    if (!Object.hasOwn(error, 'name')) return undefined;
    let proto: unknown = Object.getPrototypeOf(error);
    for (let depth = 0; proto !== null && typeof proto === 'object' && depth < MAX_CLASS_DEPTH; depth++) {
      const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as
        | { name?: unknown }
        | undefined;
      const className = typeof ctor === 'function' ? ctor.name : undefined;
      if (typeof className === 'string' && names.has(className)) return className;
      proto = Object.getPrototypeOf(proto);
    }
  } catch {
    // a hostile object: not one of BullMQ's
  }
  return undefined;
}

/**
 * The name of a BullMQ control-flow signal, or `undefined` for anything else. Checked in BullMQ's
 * order: the rate-limit message first, then the names. Never throws.
 */
export function bullmqControlFlow(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  try {
    if ((error as { message?: unknown }).message === RATE_LIMIT_MESSAGE) return 'RateLimitError';
  } catch {
    return undefined;
  }
  return bullmqErrorName(error, CONTROL_FLOW);
}

/** What every BullMQ wrapper tells core about itself: scope, version (from package.json at build time), system, control flow. */
export const BULLMQ_SCOPE: InstrumentationScope = {
  name: '@hoptrace/bullmq',
  version: packageJson.version,
  system: MESSAGING_SYSTEM.bullmq,
  controlFlow: bullmqControlFlow,
};
