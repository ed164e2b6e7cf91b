/**
 * The one way hoptrace wraps a client object: a Proxy that intercepts named methods and delegates
 * everything else to the object itself. One receiver rule (the raw object is always `this`, for the
 * client's own methods and getters alike, since client internals call each other and may use private
 * fields), one registry of what is already wrapped, one thenable check.
 *
 * @packageDocumentation
 */

import { type ListenerOptions, listenerInterceptors } from './listener-receiver.ts';

/** Wrappers hoptrace handed out, by the object they wrap. */
const wrapperOf = new WeakMap<object, object>();
/** Everything hoptrace handed out as a wrapper (proxies and wrapped functions). */
const wrappers = new WeakSet<object>();

/** True when `value` is a wrapper hoptrace made (wrapping it again returns it unchanged). */
export function isWrapper(value: unknown): boolean {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && wrappers.has(value);
}

/**
 * The wrapper already made for `target`: `target` itself when it is a wrapper, the existing wrapper
 * when `target` was wrapped before, else `undefined`.
 */
export function existingWrapper<T extends object>(target: T): T | undefined {
  if (wrappers.has(target)) return target;
  return wrapperOf.get(target) as T | undefined;
}

/**
 * Registers `wrapper` as hoptrace's wrapper of `target` (when given) and returns it, so later wrap
 * calls with either return it unchanged.
 */
export function registerWrapper<T extends object>(wrapper: T, target?: object): T {
  wrappers.add(wrapper);
  if (target !== undefined) wrapperOf.set(target, wrapper);
  return wrapper;
}

/** A method override: receives the raw object and the call's arguments. */
export type Interceptor<T> = (target: T, args: unknown[]) => unknown;

type AnyFunction = (...args: unknown[]) => unknown;

/** Options of {@link interceptMethods}. */
export interface InterceptOptions {
  /**
   * For an event emitter: listeners the application adds through the wrapper are called with the
   * wrapper as `this` (as they are called with the emitter itself without hoptrace), and what the
   * wrapper lists (`listeners()`, `rawListeners()`, `listenerCount()`) names the application's own
   * functions. See {@link ListenerOptions}; interceptors given for the same methods take precedence.
   */
  readonly listeners?: ListenerOptions;
}

/**
 * Wraps `target` in a Proxy that answers the named methods with `interceptors` and delegates every
 * other property to `target`: methods are called on `target` (re-bound if the object's method is
 * replaced later) and one that returns `target` itself returns the wrapper instead (chaining keeps
 * the wrapper), getters and setters run on `target`. Idempotent: a wrapper, or an object wrapped
 * before, yields the existing wrapper. The target is never modified; its type is kept. With
 * `options.listeners`, listeners added through the wrapper get it as `this` (see
 * {@link InterceptOptions}).
 */
export function interceptMethods<T extends object>(
  target: T,
  interceptors: Readonly<Partial<Record<PropertyKey, Interceptor<T>>>>,
  options: InterceptOptions = {},
): T {
  const existing = existingWrapper(target);
  if (existing) return existing;
  const overrides = new Map<PropertyKey, AnyFunction>();
  const bound = new Map<PropertyKey, { original: unknown; fn: AnyFunction }>();
  const all: Readonly<Partial<Record<PropertyKey, Interceptor<T>>>> = options.listeners
    ? { ...listenerInterceptors(target, () => proxy, options.listeners), ...interceptors }
    : interceptors;
  for (const key of Reflect.ownKeys(all)) {
    const interceptor = all[key as keyof typeof all];
    if (typeof interceptor === 'function') {
      overrides.set(key, (...args: unknown[]) => interceptor(target, args));
    }
  }
  const proxy = new Proxy(target, {
    get(raw, property) {
      const override = overrides.get(property);
      if (override) return override;
      const value: unknown = Reflect.get(raw, property, raw);
      if (typeof value !== 'function') {
        // A property naming a client hoptrace wrapped (a consumer stream's `consumer`, a producer
        // stream's `producer`) gives its wrapper, as a method returning the object itself does.
        if (value === null || typeof value !== 'object') return value;
        const wrapper = wrapperOf.get(value);
        return wrapper === undefined || isFrozenProperty(raw, property) ? value : wrapper;
      }
      if (isFrozenProperty(raw, property)) return value;
      const cached = bound.get(property);
      if (cached && cached.original === value) return cached.fn;
      // Called on the raw object; a method that returns it (chaining: `on`, `pause`, `end`...) returns
      // the wrapper, so the caller never ends up holding the untraced object.
      const fn = function delegated(...args: unknown[]): unknown {
        const out = Reflect.apply(value as AnyFunction, raw, args);
        return out === raw ? proxy : out;
      };
      bound.set(property, { original: value, fn });
      return fn;
    },
    set(raw, property, value) {
      return Reflect.set(raw, property, value, raw);
    },
  });
  return registerWrapper(proxy, target);
}

/** A non-configurable, non-writable property must be returned as is (a Proxy invariant). */
function isFrozenProperty(raw: object, property: PropertyKey): boolean {
  const descriptor = Reflect.getOwnPropertyDescriptor(raw, property);
  return descriptor !== undefined && descriptor.configurable === false && descriptor.writable === false;
}

/**
 * `value` as a client's `await` of it meets it, for a result the client awaits (a kafkajs handler's,
 * a BullMQ processor's): a value whose `then` getter throws (a strict Proxy) makes the `await` throw
 * what the getter threw, so it becomes a promise rejected with that (the traced operation records it,
 * and the client meets the same value, asynchronously, as awaiting the value itself); anything else
 * is returned as it is.
 */
export function asAwaited(value: unknown): unknown {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return value;
  try {
    void (value as { then?: unknown }).then;
  } catch (error) {
    return Promise.reject(error);
  }
  return value;
}

/**
 * Whether `value` is a thenable (a promise, or any object or function with a `then` method). A
 * `then` getter that throws makes it "not a thenable" rather than an error.
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  try {
    return typeof (value as { then?: unknown }).then === 'function';
  } catch {
    return false;
  }
}
