/**
 * Listeners an application adds to a wrapped event emitter (an amqplib connection or channel, a
 * @platformatic/kafka client or stream, a BullMQ queue): the emitter calls them with itself as
 * `this`, the raw object, where without hoptrace `this` is the very object the application added them
 * on. So each is registered on the raw object as a small wrapper that calls it with the hoptrace
 * wrapper as `this` instead; everything the application asks of the emitter about its listeners
 * names its own functions, and leaves hoptrace's own listeners out.
 *
 * @packageDocumentation
 */

import type { OwnListeners } from './own-listeners.ts';

/** An event listener, called with some `this`. */
export type Listener = (this: unknown, ...args: unknown[]) => unknown;

/** Maps the `this` the raw emitter gives a listener to the one the application expects. */
export type Receiver = (self: unknown) => unknown;

/** How an adapter opts a wrapped emitter into listener receivers (see {@link ListenerOptions}). */
export interface ListenerOptions {
  /**
   * A different wrapper for the listeners of some events (a traced `data` listener), by event name:
   * gets the application's listener and the {@link Receiver} to call it with, returns what is
   * registered on the raw object. Made once per listener and event, then reused.
   */
  readonly wrap?: Readonly<Record<string, (listener: Listener, receiver: Receiver) => Listener>>;
  /**
   * hoptrace's own listeners on the raw object (made with `ownListeners`): left out of `listeners()`,
   * `rawListeners()`, `listenerCount(event)` and `eventNames()`, and kept through the application's
   * `removeAllListeners()`, as without hoptrace.
   */
  readonly own?: OwnListeners;
}

type Interceptor = (target: object, args: unknown[]) => unknown;
type Method = (this: unknown, ...args: unknown[]) => unknown;

const ADD = ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener'] as const;
const REMOVE = ['off', 'removeListener'] as const;
/** The kind of every event without a wrapper of its own. */
const PLAIN = Symbol('plain');
/** `newListener` and `removeListener`, whose second argument is the listener added or removed. */
const NAMING = Symbol('naming');

/**
 * The interceptors that give listeners added through `wrapper()` (the wrapper of `raw`) that wrapper
 * as `this`: the adding methods register a wrapper of the application's function (one per function
 * and kind of event, in a WeakMap keyed by it), the removing ones find it again (or the function
 * itself when it was added to the raw object directly: the last added goes first, as the emitter
 * does), and `listeners()`, `rawListeners()`, `listenerCount()` name the application's functions.
 * Call order, `emit` results and `once` semantics are the emitter's own; only methods the raw object
 * has are intercepted. Used by `interceptMethods` (its `listeners` option).
 */
export function listenerInterceptors(
  raw: object,
  wrapper: () => object,
  options: ListenerOptions,
): Record<string, Interceptor> {
  const methods = raw as Record<string, unknown>;
  const call = (name: string, args: unknown[]): unknown => (methods[name] as Method).apply(raw, args);
  const chained = (out: unknown): unknown => (out === raw ? wrapper() : out);
  const receiver: Receiver = (self) => (self === raw ? wrapper() : self);
  const special = options.wrap ?? {};
  const isOwn = options.own?.has;
  /** The wrapper registered for each application listener, by kind of event. */
  const made = new Map<string | symbol, WeakMap<Listener, Listener>>();
  /** The application's listener behind each wrapper. */
  const originals = new WeakMap<object, Listener>();
  /** What `rawListeners()` shows for the emitter's `once` entry around a wrapper, and back. */
  const views = new WeakMap<object, object>();
  const viewed = new WeakMap<object, object>();

  const kindOf = (event: unknown): string | symbol => {
    if (typeof event === 'string' && Object.hasOwn(special, event)) return event;
    return event === 'newListener' || event === 'removeListener' ? NAMING : PLAIN;
  };
  const makeWrapper = (kind: string | symbol, listener: Listener): Listener => {
    if (typeof kind === 'string')
      return (special[kind] as NonNullable<ListenerOptions['wrap']>[string])(listener, receiver);
    if (kind === NAMING) {
      return function withNamedReceiver(this: unknown, ...args: unknown[]): unknown {
        const named = args[1];
        if (typeof named === 'function') args[1] = originals.get(named) ?? named;
        return Reflect.apply(listener, receiver(this), args);
      };
    }
    return function withReceiver(this: unknown, ...args: unknown[]): unknown {
      return Reflect.apply(listener, receiver(this), args);
    };
  };
  const wrapperFor = (event: unknown, listener: Listener, create: boolean): Listener | undefined => {
    const kind = kindOf(event);
    let byListener = made.get(kind);
    let found = byListener?.get(listener);
    if (found || !create) return found;
    if (!byListener) {
      byListener = new WeakMap();
      made.set(kind, byListener);
    }
    found = makeWrapper(kind, listener);
    byListener.set(listener, found);
    originals.set(found, listener);
    return found;
  };
  /** What the emitter runs for `entry` (the listener itself, or what its `once` entry wraps). */
  const inner = (entry: unknown): unknown =>
    typeof entry === 'function' ? ((entry as { listener?: unknown }).listener ?? entry) : entry;
  const own = (entry: unknown): boolean => isOwn !== undefined && (isOwn(entry) || isOwn(inner(entry)));
  /** Which of `listener` and its wrapper the emitter would remove: the last added. */
  const toRemove = (event: unknown, listener: unknown): unknown => {
    const target = (typeof listener === 'function' && viewed.get(listener)) || listener;
    if (typeof target !== 'function') return target;
    const wrapped = wrapperFor(event, target as Listener, false);
    if (!wrapped) return target;
    const listed = typeof methods.rawListeners === 'function' ? call('rawListeners', [event]) : undefined;
    if (!Array.isArray(listed)) return wrapped;
    for (let i = listed.length - 1; i >= 0; i--) {
      const entry: unknown = listed[i];
      if (entry === wrapped || inner(entry) === wrapped) return wrapped;
      if (entry === target || inner(entry) === target) return target;
    }
    return wrapped;
  };
  /** What the application sees for a `rawListeners()` entry. */
  const rawEntry = (entry: unknown): unknown => {
    if (typeof entry !== 'function') return entry;
    const original = originals.get(entry);
    if (original) return original;
    const wrapped = inner(entry);
    const listener = typeof wrapped === 'function' ? originals.get(wrapped) : undefined;
    if (!listener) return entry;
    let view = views.get(entry);
    if (!view) {
      // The emitter's own `once` entry (calling it runs the listener once and removes it), naming the
      // application's listener as its `listener`.
      view = new Proxy(entry, {
        get: (target, property) => (property === 'listener' ? listener : Reflect.get(target, property)),
      });
      views.set(entry, view);
      viewed.set(view, entry);
    }
    return view;
  };

  const interceptors: Record<string, Interceptor> = {};
  const has = (name: string) => typeof methods[name] === 'function';
  for (const name of ADD) {
    if (!has(name)) continue;
    interceptors[name] = (_target, args) => {
      const listener = args[1];
      if (typeof listener === 'function') {
        args[1] = wrapperFor(args[0], listener as Listener, true);
      }
      return chained(call(name, args));
    };
  }
  for (const name of REMOVE) {
    if (!has(name)) continue;
    interceptors[name] = (_target, args) => {
      args[1] = toRemove(args[0], args[1]);
      return chained(call(name, args));
    };
  }
  if (has('listeners')) {
    interceptors.listeners = (_target, args) => {
      const listed = call('listeners', args);
      if (!Array.isArray(listed)) return listed;
      const shown = isOwn ? listed.filter((l: unknown) => !own(l)) : listed;
      return shown.map((l: unknown) => (typeof l === 'function' ? (originals.get(l) ?? l) : l));
    };
  }
  if (has('rawListeners')) {
    interceptors.rawListeners = (_target, args) => {
      const listed = call('rawListeners', args);
      if (!Array.isArray(listed)) return listed;
      return (isOwn ? listed.filter((l: unknown) => !own(l)) : listed).map(rawEntry);
    };
  }
  if (has('listenerCount')) {
    interceptors.listenerCount = (_target, args) => {
      const listener = args[1];
      if (typeof listener === 'function') {
        const target = (viewed.get(listener) as Listener | undefined) ?? (listener as Listener);
        const wrapped = wrapperFor(args[0], target, false);
        const counted = call('listenerCount', [args[0], target, ...args.slice(2)]);
        if (!wrapped || typeof counted !== 'number') return counted;
        return counted + (call('listenerCount', [args[0], wrapped, ...args.slice(2)]) as number);
      }
      const counted = call('listenerCount', args);
      if (!isOwn || typeof counted !== 'number' || !has('rawListeners')) return counted;
      const listed = call('rawListeners', [args[0]]);
      return Array.isArray(listed) ? counted - listed.filter(own).length : counted;
    };
  }
  const { own: mine } = options;
  if (mine) {
    interceptors.removeAllListeners = (_target, args) => chained(mine.removeAllListeners(args));
    interceptors.eventNames = () => mine.eventNames();
  }
  return interceptors;
}
