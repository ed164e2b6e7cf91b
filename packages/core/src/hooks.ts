import { diag } from '@opentelemetry/api';

/**
 * Runs a user hook so that its failure never reaches the host: a throw (or a rejected promise) is
 * reported to the OpenTelemetry diagnostic logger and processing carries on.
 *
 * @param name - the hook's option name, for the diagnostic message.
 */
export function runHook<A extends unknown[]>(
  name: string,
  hook: ((...args: A) => unknown) | undefined,
  ...args: A
): void {
  if (!hook) return;
  try {
    const result = hook(...args);
    if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (error: unknown) =>
        diag.error(`hoptrace: hook ${name} rejected`, error),
      );
    }
  } catch (error) {
    diag.error(`hoptrace: hook ${name} threw`, error);
  }
}
