/**
 * hoptrace's own listeners on a client's emitter (a channel's `close`, a stream's `close` or
 * `flush`): what they do (end the spans the client holds) must happen whatever the application does
 * with its listeners, and the application must not see them.
 *
 * @packageDocumentation
 */

/** One of hoptrace's listeners (whatever arguments it takes). */
type OwnListener = (...args: never[]) => void;
/** A listener as an emitter takes it. */
type EmitterListener = (...args: unknown[]) => void;

/** What hoptrace needs of a client's emitter (a Node emitter) to keep its own listeners on it. */
export interface OwnEmitter {
  on(event: string, listener: EmitterListener): unknown;
  once(event: string, listener: EmitterListener): unknown;
  /** Used for {@link OwnListenerSpec.prepend} (`on` when the emitter has none). */
  prependListener?(event: string, listener: EmitterListener): unknown;
  removeAllListeners(...args: unknown[]): unknown;
  listeners(event: unknown): unknown;
  eventNames(): unknown;
}

/** hoptrace's own listeners on a client's emitter, as the emitter's traced proxy shows them. */
export interface OwnListeners {
  /**
   * The emitter's `removeAllListeners`: removes what the application asks, as without hoptrace, and
   * adds hoptrace's listeners of the events it cleared back (a `once` listener only while its event
   * has not come; a prepended one ahead of any other again), so what they end still ends. Returns
   * what the emitter returns.
   */
  removeAllListeners(args: unknown[]): unknown;
  /** Whether `listener` is one of hoptrace's (left out of what the traced proxy lists). */
  has(listener: unknown): boolean;
  /** The emitter's `eventNames()` without the events only hoptrace listens to. */
  eventNames(): unknown;
}

/** hoptrace's listeners, by how they are added and event name. */
export interface OwnListenerSpec {
  /** Added with `on`: called every time. */
  readonly on?: Readonly<Record<string, OwnListener>>;
  /** Added with `once`: called the first time. */
  readonly once?: Readonly<Record<string, OwnListener>>;
  /** Added with `prependListener`, ahead of the emitter's other listeners: called every time. */
  readonly prepend?: Readonly<Record<string, OwnListener>>;
}

/**
 * Adds hoptrace's own listeners to a client's emitter, which its traced proxy keeps through
 * `removeAllListeners()` and leaves out of what it lists (`listeners`, `rawListeners`,
 * `listenerCount`, `eventNames`: pass the result as `interceptMethods`' `listeners.own`), as without
 * hoptrace. The listeners must tolerate a repeated event. Throws what the emitter's `on`/`once`
 * throw (not an emitter).
 */
export function ownListeners(raw: OwnEmitter, own: OwnListenerSpec): OwnListeners {
  const every = own.on ?? {};
  const ahead = own.prepend ?? {};
  const first: Record<string, OwnListener> = {};
  const mine = new WeakSet<object>();
  for (const event in every) mine.add(every[event] as OwnListener);
  for (const event in ahead) mine.add(ahead[event] as OwnListener);
  for (const event in own.once) {
    const listener = own.once[event] as OwnListener;
    const wrapper = (...args: never[]) => {
      delete first[event];
      listener(...args);
    };
    first[event] = wrapper;
    mine.add(wrapper);
  }
  const prepend = (event: string) =>
    (raw.prependListener ?? raw.on).call(raw, event, ahead[event] as EmitterListener);
  const add = (cleared: (event: string) => boolean) => {
    for (const event in every) if (cleared(event)) raw.on(event, every[event] as EmitterListener);
    for (const event in first) if (cleared(event)) raw.once(event, first[event] as EmitterListener);
    for (const event in ahead) if (cleared(event)) prepend(event);
  };
  add(() => true);
  const has = (listener: unknown): boolean => typeof listener === 'function' && mine.has(listener);
  const count = (event: unknown): number => {
    const listed = raw.listeners(event);
    return Array.isArray(listed) ? listed.filter(has).length : 0;
  };
  return {
    removeAllListeners(args) {
      const out = raw.removeAllListeners(...args);
      // `removeAllListeners()` clears every event; with an argument (even `undefined`), that one only.
      add((event) => args.length === 0 || args[0] === event);
      return out;
    },
    has,
    eventNames() {
      const names = raw.eventNames();
      if (!Array.isArray(names)) return names;
      return names.filter((event: unknown) => {
        const listed = raw.listeners(event);
        return !Array.isArray(listed) || listed.length > count(event);
      });
    },
  };
}
