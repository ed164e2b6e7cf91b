/** Wrappers handed out by this package: wrapping one again returns it unchanged. */
const wrappers = new WeakSet<object>();

/** True when `value` is a wrapper this package made. */
export function isWrapper(value: object): boolean {
  return wrappers.has(value);
}

/** Registers a wrapper so later wrap calls return it unchanged. */
export function markWrapper<T extends object>(value: T): T {
  wrappers.add(value);
  return value;
}

/**
 * A Proxy over `target` that answers `overrides` for the named methods and delegates everything else
 * to `target` (methods bound to it, so BullMQ's classes see their own `this`). The target is never
 * modified; its type is preserved.
 */
export function delegatingProxy<T extends object>(
  target: T,
  overrides: Readonly<Record<string, unknown>>,
): T {
  const bound = new Map<PropertyKey, unknown>();
  return markWrapper(
    new Proxy(target, {
      get(t, prop) {
        if (typeof prop === 'string' && Object.hasOwn(overrides, prop)) return overrides[prop];
        const value: unknown = Reflect.get(t, prop, t);
        if (typeof value !== 'function') return value;
        let fn = bound.get(prop);
        if (fn === undefined || (fn as { original?: unknown }).original !== value) {
          const b = (value as (...args: unknown[]) => unknown).bind(t) as ((
            ...args: unknown[]
          ) => unknown) & {
            original?: unknown;
          };
          b.original = value;
          fn = b;
          bound.set(prop, fn);
        }
        return fn;
      },
    }),
  );
}
