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
    let answered = false;
    const wrapped = args.slice();
    wrapped[last] = function settled(this: unknown, ...result: unknown[]): unknown {
      if (!answered) {
        answered = true;
        const error = result[0];
        done(error !== null && error !== undefined, error);
      }
      return (callback as AnyFunction).apply(this, result);
    };
    try {
      return call(...wrapped);
    } catch (error) {
      // Thrown before the callback ran; once it has, what it throws is the caller's own.
      if (!answered) {
        answered = true;
        done(true, error);
      }
      throw error;
    }
  }
  let result: unknown;
  try {
    result = call(...args);
  } catch (error) {
    done(true, error);
    throw error;
  }
  if (!isThenable(result)) {
    done(false);
    return result;
  }
  try {
    // A side chain: the caller keeps the method's own promise (and its rejection, if any).
    result.then(
      () => done(false),
      (error: unknown) => done(true, error),
    );
  } catch (error) {
    done(true, error); // a thenable whose then() throws: nothing says how the call ended
  }
  return result;
}
