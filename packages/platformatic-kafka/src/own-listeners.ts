type Listener = (...args: unknown[]) => void;

/** What hoptrace needs of a client's stream (a Node emitter) to keep its own listeners on it. */
interface Emitter {
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  removeAllListeners(...args: unknown[]): unknown;
  listeners(event: unknown): unknown;
  eventNames(): unknown;
}

/** hoptrace's own listeners on a client's stream, as the stream's traced proxy shows them. */
export interface OwnListeners {
  /**
   * The stream's `removeAllListeners`: removes what the application asks, as without hoptrace, and
   * adds hoptrace's listeners of the events it cleared back (a `once` listener only while its event
   * has not come), so what they end (the spans the stream holds) still ends. Returns what the stream
   * returns.
   */
  removeAllListeners(args: unknown[]): unknown;
  /**
   * Whether `listener` is one of hoptrace's (what the traced proxy leaves out of `listeners()`,
   * `rawListeners()` and `listenerCount()`: core's `isOwn`).
   */
  has(listener: unknown): boolean;
  /** The stream's `eventNames()` without the events only hoptrace listens to. */
  eventNames(): unknown;
}

/**
 * Adds hoptrace's own listeners to a client's stream (`on`: every time, `once`: the first time),
 * which the stream's traced proxy keeps through `removeAllListeners()` and leaves out of what it
 * lists (`listeners`, `listenerCount`, `eventNames`), as without hoptrace. The listeners must
 * tolerate a repeated event. Throws what the stream's `on`/`once` throw (not an emitter).
 */
export function ownListeners(
  raw: Emitter,
  own: {
    readonly on?: Readonly<Record<string, Listener>>;
    readonly once?: Readonly<Record<string, Listener>>;
  },
): OwnListeners {
  const every = own.on ?? {};
  const first: Record<string, Listener> = {};
  const mine = new WeakSet<object>();
  for (const event in every) mine.add(every[event] as Listener);
  for (const event in own.once) {
    const listener = own.once[event] as Listener;
    const wrapper = (...args: unknown[]) => {
      delete first[event];
      listener(...args);
    };
    first[event] = wrapper;
    mine.add(wrapper);
  }
  for (const event in every) raw.on(event, every[event] as Listener);
  for (const event in first) raw.once(event, first[event] as Listener);
  const has = (listener: unknown): boolean => typeof listener === 'function' && mine.has(listener);
  const count = (event: unknown): number => {
    const listed = raw.listeners(event);
    return Array.isArray(listed) ? listed.filter(has).length : 0;
  };
  return {
    removeAllListeners(args) {
      const out = raw.removeAllListeners(...args);
      // `removeAllListeners()` clears every event; with an argument (even `undefined`), that one only.
      const cleared = (event: string) => args.length === 0 || args[0] === event;
      for (const event in every) if (cleared(event)) raw.on(event, every[event] as Listener);
      for (const event in first) if (cleared(event)) raw.once(event, first[event] as Listener);
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
