import { interceptMethods, isThenable } from '@hoptrace/core/adapter';
import { context as contextApi } from '@opentelemetry/api';
import type { ConsumerState, MessageEntry } from './consumer-state.ts';
import { endAll, endEntry, own, type ReceivedMessage, startMessage, sweepTimedOut } from './message-spans.ts';
import { type OwnListeners, ownListeners } from './own-listeners.ts';

type Listener = (this: unknown, ...args: unknown[]) => unknown;
type AnyIterator = AsyncIterator<unknown> & Partial<AsyncIterable<unknown>>;

/** What hoptrace calls on a `MessagesStream` (all of it the stream's own). */
interface StreamLike {
  [Symbol.asyncIterator](): AnyIterator;
  iterator(...args: unknown[]): AnyIterator;
  on(event: string | symbol, listener: Listener): unknown;
  once(event: string | symbol, listener: Listener): unknown;
  off(event: string | symbol, listener: Listener): unknown;
  close(...args: unknown[]): unknown;
  read(...args: unknown[]): unknown;
}

const ADD = ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener'] as const;
const REMOVE = ['off', 'removeListener'] as const;

/**
 * Wraps a `MessagesStream` so that each message it hands out gets its process span (`message`
 * mode), ending when the application is done with it:
 *
 * - async iteration (`for await`, `stream.iterator()`): when the next message is asked for, or the
 *   loop ends (`break`, `return`, a throw in the loop body);
 * - `stream.read()`: when `read()` is called again (also when it then returns `null`);
 * - `data` listeners: when the listener returns, or the promise it returns settles (the listener
 *   runs with the span active; what it throws or rejects with is recorded and reaches the stream
 *   and the process exactly as before);
 * - in every case when the stream or its consumer closes, or after `maxProcessingMs`.
 *
 * The messages are the stream's own objects, never copied or changed. Listeners added through the
 * traced stream get it as `this`, as they would get the stream without hoptrace.
 */
export function traceStream<S extends object>(state: ConsumerState, stream: S): S {
  const raw = stream as unknown as StreamLike;
  const open = new Set<MessageEntry>();
  state.streams.add(open);
  const perMessage = state.settings.batchSpans === 'message';
  // Only `message` mode holds spans open between calls: only it needs the `maxProcessingMs` sweep.
  if (perMessage) state.sweep ??= startSweep(state);
  /** The traced `data` listener made for each of the application's. */
  const listeners = new WeakMap<Listener, Listener>();
  /** The wrapper made for each of the application's listeners of any other event. */
  const receivers = new WeakMap<Listener, Listener>();
  /** The application's listener behind each wrapper (what `listeners()` names). */
  const originals = new WeakMap<Listener, Listener>();
  /**
   * What a listener gets as `this`: the stream emits with itself as `this`, and the application
   * holds the traced stream, so a listener that calls `this.off(...)`, `this.on('data', ...)` or
   * compares `this` with its stream does what it does without hoptrace.
   */
  const receiver = (self: unknown): unknown => (self === raw ? proxy : self);
  const closed = () => {
    endAll(open);
    state.streams.delete(open);
    if (state.streams.size === 0 && state.sweep) {
      clearInterval(state.sweep);
      state.sweep = undefined;
    }
  };
  // Kept through the application's `removeAllListeners()`, and not listed (see the interceptors below).
  let mine: OwnListeners | undefined;
  try {
    mine = ownListeners(raw as unknown as Parameters<typeof ownListeners>[0], { once: { close: closed } });
  } catch {
    // not an emitter: close() and the consumer's close() still end what is open
  }

  const traceListener = (listener: Listener): Listener => {
    let traced = listeners.get(listener);
    if (!traced) {
      traced = function tracedData(this: unknown, ...args: unknown[]): unknown {
        const message = args[0];
        const self = receiver(this);
        if (!message || typeof message !== 'object') return listener.apply(self, args);
        if (!perMessage) {
          own(state, message);
          return listener.apply(self, args);
        }
        const entry = startMessage(state, message as ReceivedMessage, open);
        entry.pending++;
        let result: unknown;
        try {
          result = contextApi.with(entry.context, () => listener.apply(self, args));
        } catch (error) {
          entry.operation.noteFailure(error);
          settle(entry);
          throw error;
        }
        if (!isThenable(result)) {
          settle(entry);
          return result;
        }
        // The emitter gets the chain, which settles as the listener's promise does: a rejection
        // stays unhandled exactly as before, or, when the stream captures rejections
        // (`captureRejections`), is handled there, once, as it would be without hoptrace.
        return Promise.resolve(result).then(
          (value) => {
            settle(entry);
            return value;
          },
          (error: unknown) => {
            entry.operation.noteFailure(error);
            settle(entry);
            throw error;
          },
        );
      };
      listeners.set(listener, traced);
      originals.set(traced, listener);
    }
    return traced;
  };
  /** Any other event's listener, called with the traced stream as `this` (see `receiver`). */
  const receiverListener = (listener: Listener): Listener => {
    let wrapped = receivers.get(listener);
    if (!wrapped) {
      wrapped = function withReceiver(this: unknown, ...args: unknown[]): unknown {
        // `newListener`/`removeListener` name the listener added or removed: the application's own.
        const named = args[1];
        if (typeof named === 'function') {
          const original = originals.get(named as Listener);
          if (original) args[1] = original;
        }
        return listener.apply(receiver(this), args);
      };
      receivers.set(listener, wrapped);
      originals.set(wrapped, listener);
    }
    return wrapped;
  };
  /** The wrapper registered for `listener` as a listener of `event`, if any. */
  const wrapperOf = (event: unknown, listener: Listener): Listener | undefined =>
    (event === 'data' ? listeners : receivers).get(listener);

  // The message the last `read()` handed out: done when `read()` is called again.
  let lastRead: MessageEntry | undefined;
  const interceptors: Record<PropertyKey, (target: S, args: unknown[]) => unknown> = {
    read: (_target, args) => {
      if (lastRead) endEntry(lastRead);
      lastRead = undefined;
      const message = raw.read(...args);
      if (message && typeof message === 'object') {
        if (perMessage) {
          // A `data` listener that got this message (read() emits `data`) ends its span when it settles.
          const entry = startMessage(state, message as ReceivedMessage, open);
          if (entry.pending === 0) lastRead = entry;
        } else own(state, message);
      }
      return message;
    },
    [Symbol.asyncIterator]: () => tracedIterator(state, raw[Symbol.asyncIterator](), open, perMessage),
    iterator: (_target, args) => tracedIterator(state, raw.iterator(...args), open, perMessage),
    close: (_target, args) => {
      const callback = args[0];
      if (typeof callback === 'function') {
        return raw.close((...result: unknown[]) => {
          closed();
          return (callback as Listener)(...result);
        });
      }
      return Promise.resolve(raw.close(...args)).finally(closed);
    },
  };
  // Listener registration goes to the stream itself; listeners are wrapped on the way in (`data` ones
  // traced, every one called with the traced stream as `this`) and found again on the way out.
  // Chaining returns the traced stream.
  const listenerMethod = (name: string, swap: (event: unknown, listener: Listener) => Listener) => {
    interceptors[name] = (_target, [event, listener]) => {
      const method = (raw as unknown as Record<string, (e: unknown, l: unknown) => unknown>)[name];
      const out = method?.call(
        raw,
        event,
        typeof listener === 'function' ? swap(event, listener as Listener) : listener,
      );
      return out === raw ? proxy : out;
    };
  };
  for (const name of ADD)
    listenerMethod(name, (event, l) => (event === 'data' ? traceListener(l) : receiverListener(l)));
  for (const name of REMOVE) listenerMethod(name, (event, l) => wrapperOf(event, l) ?? l);
  // What the stream lists names the application's own listeners, as without hoptrace.
  interceptors.listeners = (_target, [event]) => {
    const listed = mine
      ? mine.hide((raw as unknown as { listeners(e: unknown): unknown }).listeners(event))
      : (raw as unknown as { listeners(e: unknown): unknown }).listeners(event);
    return Array.isArray(listed)
      ? listed.map((l: unknown) => (typeof l === 'function' ? (originals.get(l as Listener) ?? l) : l))
      : listed;
  };
  interceptors.listenerCount = (_target, args) => {
    const count = (raw as unknown as { listenerCount(...a: unknown[]): unknown }).listenerCount;
    const listener = args[1];
    if (typeof listener !== 'function') {
      const counted = count.apply(raw, args);
      return typeof counted === 'number' && mine ? counted - mine.count(args[0]) : counted;
    }
    return count.call(raw, args[0], wrapperOf(args[0], listener as Listener) ?? listener);
  };
  if (mine) {
    const own = mine;
    interceptors.removeAllListeners = (_target, args) => {
      const out = own.removeAllListeners(args);
      return out === raw ? proxy : out;
    };
    interceptors.eventNames = () => own.eventNames();
  }
  const proxy = interceptMethods(stream, interceptors);
  return proxy;
}

/** A `data` listener call settled: the message's span ends once no listener call for it runs. */
function settle(entry: MessageEntry): void {
  entry.pending--;
  if (entry.pending > 0) return;
  // Every listener of one `data` event runs before this microtask: the span covers all of them.
  queueMicrotask(() => {
    if (entry.pending === 0) endEntry(entry);
  });
}

/** The `maxProcessingMs` sweep (unref'd: it never keeps the process alive). */
function startSweep(state: ConsumerState): ReturnType<typeof setInterval> {
  const every = Math.max(10, Math.min(1000, Math.floor(state.settings.maxProcessingMs / 4)));
  const timer = setInterval(() => sweepTimedOut(state), every);
  timer.unref?.();
  return timer;
}

/** The stream's iterator, ending each message's span when the next is asked for or the loop ends. */
function tracedIterator(
  state: ConsumerState,
  iterator: AnyIterator,
  open: Set<MessageEntry>,
  perMessage: boolean,
): AsyncIterableIterator<unknown> {
  // The messages handed out since the last call: usually one, more when `next()` calls overlap
  // (each is done once a later message is asked for).
  let current: MessageEntry | MessageEntry[] | undefined;
  const release = () => {
    const done = current;
    current = undefined;
    if (Array.isArray(done)) for (const entry of done) endEntry(entry);
    else if (done) endEntry(done);
  };
  const received = (result: IteratorResult<unknown>) => {
    const message = result.value;
    if (!result.done && message && typeof message === 'object') {
      if (perMessage) {
        const entry = startMessage(state, message as ReceivedMessage, open);
        if (current === undefined) current = entry;
        else if (Array.isArray(current)) current.push(entry);
        else current = [current, entry];
      } else own(state, message);
    }
    return result;
  };
  const traced: AsyncIterableIterator<unknown> = {
    next: (...args: [] | [unknown]) => {
      release();
      return iterator.next(...args).then(received);
    },
    return: (value?: unknown) => {
      release();
      return iterator.return ? iterator.return(value) : Promise.resolve({ done: true, value });
    },
    throw: (error?: unknown) => {
      release();
      return iterator.throw ? iterator.throw(error) : Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return traced;
    },
  };
  return traced;
}
