/**
 * Options objects with every option set to `undefined`, for the tests that an option left
 * `undefined` means "not set", at compile time (`exactOptionalPropertyTypes`) and at run time.
 *
 * @packageDocumentation
 */

/** Every option of `T`, set to `undefined`: the compiler fails when one is left out. */
export type AllUndefined<T> = { [K in keyof Required<T>]: undefined };

/** Every option of `T` given a value that may be `undefined` (read from configuration, say). */
export type MaybeSet<T> = { [K in keyof Required<T>]: Required<T>[K] | undefined };

/**
 * An options object with every name of `keys` (a wrapper's option-name table, which the compiler
 * holds to the options type) set to `undefined`.
 */
export function allUndefined<T>(keys: { readonly [K in keyof Required<T>]: true }): AllUndefined<T> {
  return Object.fromEntries(Object.keys(keys).map((name) => [name, undefined])) as AllUndefined<T>;
}
