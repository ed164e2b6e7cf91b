/**
 * The small async helpers every test file needs: waiting for a condition, a promise with its
 * resolvers exposed, and a plain sleep.
 *
 * @packageDocumentation
 */

/** A promise with its `resolve` and `reject` exposed, for waiting on events. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

/** A new {@link Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once `predicate` holds, polling every 20 ms; rejects after `timeoutMs` with an error
 * naming `what`.
 */
export async function until(
  predicate: () => boolean,
  what = 'a condition',
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
