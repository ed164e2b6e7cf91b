import {
  interceptMethods,
  isThenable,
  type Listener,
  type OwnListeners,
  ownListeners,
  type Receiver,
} from '@hoptrace/core/adapter';
import { context as contextApi } from '@opentelemetry/api';
import type { ConsumerState, MessageEntry } from './consumer-state.ts';
import {
  endAll,
  endEntry,
  entryOf,
  own,
  type ReceivedMessage,
  startMessage,
  sweepTimedOut,
} from './message-spans.ts';

type AnyIterator = AsyncIterator<unknown> & Partial<AsyncIterable<unknown>>;

/** What hoptrace calls on a `MessagesStream` (all of it the stream's own). */
interface StreamLike {
  [Symbol.asyncIterator](): AnyIterator;
  iterator(...args: unknown[]): AnyIterator;
  close(...args: unknown[]): unknown;
  read(...args: unknown[]): unknown;
  readonly closed?: unknown;
  readonly destroyed?: unknown;
}

/**
 * Node's Readable helpers that call a function per message, by the position of the message among
 * that function's arguments (`reduce(reducer)` calls `reducer(accumulator, message, options)`).
 * `some`, `every`, `find` and `forEach` are built on `filter`/`map`, and get the same treatment.
 */
const CALLBACK_HELPERS: Readonly<Record<string, number>> = {
  map: 0,
  filter: 0,
  forEach: 0,
  flatMap: 0,
  some: 0,
  every: 0,
  find: 0,
  reduce: 1,
};

/**
 * Readable methods that read the stream they are called on (`this`): its async iterator (`toArray`,
 * `take`, `drop`, `asIndexedPairs`) or its `data` events (`pipe`; `compose`, which pipes; and
 * `unpipe`, which must name the same source as `pipe` did). Called through the traced stream, they get it as `this`
 * (as they get the stream itself without hoptrace), so they read through the traced iterator and
 * listeners. Every other method keeps the raw stream as `this`.
 */
const READING_METHODS = ['toArray', 'take', 'drop', 'asIndexedPairs', 'compose', 'pipe', 'unpipe'] as const;

/**
 * Wraps a `MessagesStream` so that each message it hands out gets its process span (`message`
 * mode), ending when the application is done with it:
 *
 * - async iteration (`for await`, `stream.iterator()`): when the next message is asked for, or the
 *   loop ends (`break`, `return`, a throw in the loop body); a message a `next()` still pending at
 *   the iterator's `return()`/`throw()` hands out afterwards: as it is handed out;
 * - `stream.read()`: when `read()` is called again (also when it then returns `null`);
 * - `data` listeners: when the listener returns, or the (native) promise it returns settles (the listener
 *   runs with the span active; what it throws or rejects with is recorded and reaches the stream
 *   and the process exactly as before);
 * - Readable helpers with a per-message function (`forEach`, `map`, `filter`, `flatMap`, `reduce`,
 *   `some`, `every`, `find`): like a `data` listener, the function runs with the span active and the
 *   span ends when it returns or its promise settles; helpers without one (`toArray`, `take`,
 *   `drop`) read through the traced iterator;
 * - `pipe()` (and `pipeline()`, `compose()`): when the destination's `write()` returns; the write does not run
 *   with the span active (a destination that buffers runs a later message's write in an earlier
 *   one's callback), `withMessageContext(message, fn)` in the destination continues the trace;
 * - in every case when the stream or its consumer closes, or after `maxProcessingMs`.
 *
 * The messages are the stream's own objects, never copied or changed. Listeners added through the
 * traced stream get it as `this`, as they would get the stream without hoptrace.
 */
export function traceStream<S extends object>(state: ConsumerState, stream: S): S {
  const raw = stream as unknown as StreamLike;
  const open = new Set<MessageEntry>();
  // Over once closed or destroyed; a stream that is not an emitter (no `close` event to drop it)
  // counts as over when its consumer closes.
  state.streams.set(open, () => mine === undefined || raw.closed === true || raw.destroyed === true);
  const perMessage = state.settings.batchSpans === 'message';
  // Only `message` mode holds spans open between calls: only it needs the `maxProcessingMs` sweep.
  if (perMessage) state.sweep ??= startSweep(state);
  const closed = () => {
    endAll(open);
    dropStream(state, open);
  };
  // Kept through the application's `removeAllListeners()`, and not listed (see the interceptors below).
  let mine: OwnListeners | undefined;
  try {
    mine = ownListeners(raw as unknown as Parameters<typeof ownListeners>[0], { once: { close: closed } });
  } catch {
    // not an emitter: close() and the consumer's close() still end what is open
  }

  // `pipe()` is adding its `data` listener: it gets spans, not the message's context (see below).
  let piping = 0;
  // The traced `data` listener registered for each of the application's (core makes it once per
  // listener, and finds it again for `off`, `listeners()`...). `receiver` gives the listener the
  // traced stream as `this`, as the stream itself is without hoptrace.
  const traceListener = (listener: Listener, receiver: Receiver): Listener => {
    // pipe()'s listener hands the message to the destination's write(), which may buffer it and
    // write it later from an earlier message's callback: run in a message's context, such writes
    // would continue the wrong trace. So it runs as it would without hoptrace; the span ends when
    // the destination has taken the message.
    const inContext = piping === 0;
    return function tracedData(this: unknown, ...args: unknown[]): unknown {
      const message = args[0];
      const self = receiver(this);
      if (!message || typeof message !== 'object') return listener.apply(self, args);
      if (!perMessage) {
        own(state, message);
        return listener.apply(self, args);
      }
      return runFor(
        startMessage(state, message as ReceivedMessage, open),
        listener,
        self,
        args,
        inContext,
        false,
      );
    };
  };

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
  // The Readable helpers a stream has (Node >= 22 has them all but `asIndexedPairs`, gone in 24).
  const method = (name: string) => Reflect.get(raw, name, raw) as Listener;
  for (const name of Object.keys(CALLBACK_HELPERS)) {
    if (typeof method(name) !== 'function') continue;
    const at = CALLBACK_HELPERS[name] as number;
    interceptors[name] = (_target, args) => {
      const fn = args[0];
      if (!perMessage || typeof fn !== 'function') return Reflect.apply(method(name), proxy, args);
      const traced = args.slice(); // `reduce` counts its arguments: keep their number
      traced[0] = tracedCallback(fn as Listener, at);
      return Reflect.apply(method(name), proxy, traced);
    };
  }
  for (const name of READING_METHODS) {
    if (typeof method(name) !== 'function') continue;
    interceptors[name] =
      name === 'pipe'
        ? (_target, args) => {
            piping++;
            try {
              return Reflect.apply(method(name), proxy, args);
            } finally {
              piping--;
            }
          }
        : (_target, args) => Reflect.apply(method(name), proxy, args);
  }
  // Listeners added through the traced stream get it as `this`, `data` ones traced; what it lists
  // names the application's listeners and leaves hoptrace's own out, as without hoptrace.
  const proxy = interceptMethods(stream, interceptors, {
    listeners: { wrap: { data: traceListener }, ...(mine ? { own: mine } : {}) },
  });
  return proxy;
}

/**
 * Calls `fn` (a `data` listener, a helper's per-message function) for the message of `entry`, with
 * its span active when `inContext`, holding the span until the call returns or its promise settles.
 * What it throws or rejects with is recorded and goes on unchanged: a helper gets the promise its own
 * `await` would make (no added step), a `data` listener's emitter the chain on the promise, which
 * settles as that promise does.
 *
 * @param anyThenable - observe any thenable `fn` returns (a helper awaits it anyway); else only a
 * native promise is (an emitter leaves what a listener returns alone unless it captures rejections,
 * and calling `then` on another thenable may start its work, e.g. a lazy query builder's, or turn its
 * rejection into an unhandled one): another thenable is handed on untouched and the span ends now.
 */
function runFor(
  entry: MessageEntry,
  fn: Listener,
  self: unknown,
  args: unknown[],
  inContext: boolean,
  anyThenable: boolean,
): unknown {
  entry.pending++;
  let result: unknown;
  try {
    result = inContext ? contextApi.with(entry.context, () => fn.apply(self, args)) : fn.apply(self, args);
  } catch (error) {
    entry.operation.noteFailure(error);
    settle(entry);
    throw error;
  }
  if (anyThenable ? !isThenable(result) : !(result instanceof Promise)) {
    settle(entry);
    return result;
  }
  if (anyThenable) {
    // A helper awaits what its function returns: it gets the promise its `await` would make of it
    // (the function's own native promise as is, else one following the thenable), and the span ends
    // in a reaction added before the helper's. No promise step is added, so the helper settles, and
    // destroys the stream when it stops early (a throw in `forEach`), at the microtask it would
    // without hoptrace, and a `close()` racing that destroy ends as it would (a chain here put the
    // destroy a step later, so a `close()` that resolves raw could fail `AbortError` traced).
    const settling = Promise.resolve(result);
    settling.then(
      () => settle(entry),
      (error: unknown) => {
        entry.operation.noteFailure(error);
        settle(entry);
      },
    );
    return settling;
  }
  // For a `data` listener the emitter gets the chain: a rejection stays unhandled exactly as before,
  // or, when the stream captures rejections (`captureRejections`), is handled there, once.
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
}

/**
 * A Readable helper's per-message function, run with the span of the message at argument `at`
 * active (a value that is not a message from the traced stream: called as it is).
 */
function tracedCallback(fn: Listener, at: number): Listener {
  return function tracedHelperCallback(this: unknown, ...args: unknown[]): unknown {
    const entry = entryOf(args[at]);
    return entry ? runFor(entry, fn, this, args, true, true) : fn.apply(this, args);
  };
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

/** Forgets a stream that closed: it leaves the sweep, which stops with the last one. */
export function dropStream(state: ConsumerState, open: Set<MessageEntry>): void {
  state.streams.delete(open);
  if (state.streams.size === 0 && state.sweep) {
    clearInterval(state.sweep);
    state.sweep = undefined;
  }
}

/** The `maxProcessingMs` sweep (unref'd: it never keeps the process alive). */
function startSweep(state: ConsumerState): ReturnType<typeof setInterval> {
  const every = Math.max(10, Math.min(1000, Math.floor(state.settings.maxProcessingMs / 4)));
  const timer = setInterval(() => sweepTimedOut(state), every);
  timer.unref?.();
  return timer;
}

/** The caller of `next()` gets its rejection; the side reaction that starts spans ignores it. */
function noRejection(): void {}

/** `%AsyncIteratorPrototype%`, which every async generator object (a Readable's iterator) inherits from. */
const AsyncIteratorPrototype: object = Object.getPrototypeOf(
  Object.getPrototypeOf(async function* () {}).prototype,
);

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
  // `return()` or `throw()` was called: the consumer of the iterator is done. A `next()` still pending
  // then (the async generator queues the `return()` behind it) may yet resolve with a message; that
  // message is handed over, but nothing will ask for another one, so its span ends as it is handed out
  // (rather than waiting for the stream to close or `maxProcessingMs`).
  let finished = false;
  const release = () => {
    const done = current;
    current = undefined;
    // A message a helper's function still works on ends when that function settles.
    if (Array.isArray(done)) {
      for (const entry of done) if (entry.pending === 0) endEntry(entry);
    } else if (done && done.pending === 0) endEntry(done);
  };
  const received = (result: IteratorResult<unknown>) => {
    const message = result.value;
    if (!result.done && message && typeof message === 'object') {
      if (perMessage) {
        const entry = startMessage(state, message as ReceivedMessage, open);
        if (finished) {
          if (entry.pending === 0) endEntry(entry);
        } else if (current === undefined) current = entry;
        else if (Array.isArray(current)) current.push(entry);
        else current = [current, entry];
      } else own(state, message);
    }
    return result;
  };
  // Inherits `[Symbol.asyncIterator]` (returns itself) and, where the runtime has it,
  // `[Symbol.asyncDispose]` (calls `return()`), as the stream's own async-generator iterator does:
  // `await using iterator = stream.iterator()` works on the traced stream as on the raw one.
  const traced: AsyncIterableIterator<unknown> = Object.create(AsyncIteratorPrototype);
  Object.assign(traced, {
    next: (...args: [] | [unknown]) => {
      release();
      // The caller gets the iterator's own promise (a native one as is), so it settles, and whoever
      // awaits it resumes, at the microtask it would without hoptrace: `forEach` and the other helpers
      // pull through this iterator, and when they stop early they destroy the stream, which a
      // `close()` called around then races (a chained promise here moved that destroy a microtask
      // later). The message's span starts in a reaction added first, so before the caller sees it.
      // That reaction handles a rejection too: a `next()` promise the application drops no longer
      // reports an unhandled rejection (an awaited one, as in `for await` or a helper, is unchanged).
      const pending = Promise.resolve(iterator.next(...args));
      pending.then(received, noRejection);
      return pending;
    },
    return: (value?: unknown) => {
      finished = true;
      release();
      return iterator.return ? iterator.return(value) : Promise.resolve({ done: true, value });
    },
    throw: (error?: unknown) => {
      finished = true;
      release();
      return iterator.throw ? iterator.throw(error) : Promise.reject(error);
    },
  });
  return traced;
}
