type Listener = (...args: unknown[]) => void;

/** What hoptrace needs of a client's stream (a Node emitter) to keep its own listeners on it. */
interface Emitter {
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  removeAllListeners(...args: unknown[]): unknown;
}

/**
 * Adds hoptrace's own listeners to a client's stream (`on`: every time, `once`: the first time), and
 * returns the stream's `removeAllListeners` as its traced proxy runs it: the application's call
 * removes what it removes, as without hoptrace, and hoptrace's listeners of the events it cleared
 * are added back (a `once` listener only while its event has not come), so what they end (the spans
 * the stream holds) still ends.
 */
export function ownListeners(
  raw: Emitter,
  own: {
    readonly on?: Readonly<Record<string, Listener>>;
    readonly once?: Readonly<Record<string, Listener>>;
  },
): (args: unknown[]) => unknown {
  const every = own.on ?? {};
  const first: Record<string, Listener> = {};
  for (const event in own.once) {
    const listener = own.once[event] as Listener;
    first[event] = (...args: unknown[]) => {
      delete first[event];
      listener(...args);
    };
  }
  for (const event in every) raw.on(event, every[event] as Listener);
  for (const event in first) raw.once(event, first[event] as Listener);
  return (args) => {
    const out = raw.removeAllListeners(...args);
    // `removeAllListeners()` clears every event; with an argument (even `undefined`), that one only.
    const cleared = (event: string) => args.length === 0 || args[0] === event;
    for (const event in every) if (cleared(event)) raw.on(event, every[event] as Listener);
    for (const event in first) if (cleared(event)) raw.once(event, first[event] as Listener);
    return out;
  };
}
