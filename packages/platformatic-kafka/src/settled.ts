import { isThenable } from '@hoptrace/core/adapter';

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * Calls a @platformatic/kafka method that takes an optional last callback or returns a promise, and
 * runs `done` once the call has settled (`error` is what it failed with, `undefined` on success),
 * before the caller's callback runs (`failed`: the callback got an error, the promise rejected or
 * the call threw; `error`: with what). What the caller gets back (the promise, the callback's
 * arguments, a synchronous throw) is exactly what the method gives. `done` must not throw.
 */
export function whenSettled(
  call: (...args: unknown[]) => unknown,
  args: unknown[],
  done: (failed: boolean, error?: unknown) => void,
): unknown {
  const last = args.length - 1;
  const callback = args[last];
  if (typeof callback === 'function') {
    const wrapped = args.slice();
    wrapped[last] = function settled(this: unknown, ...result: unknown[]): unknown {
      const error = result[0];
      done(error !== null && error !== undefined, error);
      return (callback as AnyFunction).apply(this, result);
    };
    return call(...wrapped);
  }
  let result: unknown;
  try {
    result = call(...args);
  } catch (error) {
    done(true, error);
    throw error;
  }
  if (isThenable(result)) {
    // A side chain: the caller keeps the method's own promise (and its rejection, if any).
    result.then(
      () => done(false),
      (error: unknown) => done(true, error),
    );
  } else {
    done(false);
  }
  return result;
}
