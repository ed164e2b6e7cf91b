import { EventEmitter } from 'node:events';
import { interceptMethods, ownListeners } from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';

type Fn = (this: unknown, ...args: unknown[]) => unknown;

/** An emitter client with a method hoptrace intercepts (`send`), as amqplib's channels are. */
class Client extends EventEmitter {
  sent: string[] = [];
  send(value: string): boolean {
    this.sent.push(value);
    return true;
  }
}

/** The raw client, or one wrapped with listener receivers (its `send` intercepted). */
function client(mode: 'raw' | 'wrapped'): Client {
  const raw = new Client();
  if (mode === 'raw') return raw;
  return interceptMethods(
    raw,
    { send: (target, args) => target.send(`traced:${String(args[0])}`) },
    {
      listeners: {},
    },
  );
}

/** Runs `scenario` on a raw client and on a wrapped one: what the application sees must be the same. */
function differential<T>(scenario: (emitter: Client, mode: 'raw' | 'wrapped') => T): void {
  const raw = scenario(client('raw'), 'raw');
  const wrapped = scenario(client('wrapped'), 'wrapped');
  expect(wrapped).toEqual(raw);
}

/** `rawListeners()` as the application can compare it: each entry named by the listener it runs. */
function describeRaw(listed: unknown[], names: Map<unknown, string>): string[] {
  return listed.map((entry) => {
    const own = names.get(entry);
    if (own) return own;
    const inner = names.get((entry as { listener?: unknown }).listener);
    return inner ? `once(${inner})` : 'unknown';
  });
}

describe('listeners added through a wrapper (interceptMethods with `listeners`)', () => {
  it('get the wrapper as `this`, for every way of adding one', () => {
    differential((emitter) => {
      const seen: string[] = [];
      for (const method of ['on', 'addListener', 'prependListener', 'once', 'prependOnceListener'] as const) {
        emitter[method]('event', function (this: unknown) {
          seen.push(`${method}:${String(this === emitter)}`);
        });
      }
      emitter.emit('event');
      emitter.emit('event');
      return seen;
    });
  });

  it('a listener that removes itself with this.off / this.removeListener is removed', () => {
    differential((emitter) => {
      let calls = 0;
      const viaOff: Fn = function (this: unknown) {
        calls++;
        (this as Client).off('event', viaOff);
      };
      const viaRemove: Fn = function (this: unknown) {
        calls++;
        (this as Client).removeListener('event', viaRemove);
      };
      emitter.on('event', viaOff).on('event', viaRemove);
      const results = [emitter.emit('event'), emitter.emit('event'), emitter.emit('event')];
      return { calls, results, count: emitter.listenerCount('event') };
    });
  });

  it('a method called on `this` in a listener goes through the wrapper, as one called on the wrapper does', () => {
    const wrapped = client('wrapped');
    wrapped.on('drain', function (this: unknown) {
      (this as Client).send('from this');
    });
    wrapped.emit('drain');
    wrapped.send('from the wrapper');
    expect(wrapped.sent).toEqual(['traced:from this', 'traced:from the wrapper']);
  });

  it('keeps call order, emit results, once semantics and thrown errors', () => {
    differential((emitter) => {
      const order: string[] = [];
      emitter.on('event', () => order.push('a'));
      emitter.prependListener('event', () => order.push('b'));
      emitter.once('event', () => order.push('c'));
      emitter.prependOnceListener('event', () => order.push('d'));
      const results = [emitter.emit('event'), emitter.emit('event'), emitter.emit('nothing')];
      emitter.on('boom', () => {
        throw new Error('listener failed');
      });
      let thrown: unknown;
      try {
        emitter.emit('boom');
      } catch (error) {
        thrown = (error as Error).message;
      }
      return { order, results, thrown };
    });
  });

  it('listeners(), rawListeners() and listenerCount() name the application listeners', () => {
    differential((emitter) => {
      const a: Fn = () => undefined;
      const b: Fn = () => undefined;
      const names = new Map<unknown, string>([
        [a, 'a'],
        [b, 'b'],
      ]);
      emitter.on('event', a);
      emitter.once('event', b);
      emitter.on('event', a);
      emitter.on('other', a);
      const before = {
        listeners: emitter.listeners('event').map((l) => names.get(l) ?? 'unknown'),
        raw: describeRaw(emitter.rawListeners('event'), names),
        count: emitter.listenerCount('event'),
        countA: emitter.listenerCount('event', a),
        countB: emitter.listenerCount('event', b),
        names: emitter.eventNames(),
      };
      emitter.off('event', a);
      const afterOff = {
        listeners: emitter.listeners('event').map((l) => names.get(l) ?? 'unknown'),
        countA: emitter.listenerCount('event', a),
        other: emitter.listenerCount('other', a),
      };
      emitter.removeAllListeners('event');
      return { before, afterOff, after: emitter.listenerCount('event') };
    });
  });

  it('a once entry of rawListeners() runs the listener once with the wrapper as `this`, and removes it', () => {
    differential((emitter) => {
      const seen: boolean[] = [];
      emitter.once('event', function (this: unknown) {
        seen.push(this === emitter);
      });
      const [entry] = emitter.rawListeners('event') as Fn[];
      entry?.call(undefined);
      const afterCall = emitter.listenerCount('event');
      emitter.once('event', () => undefined);
      const [again] = emitter.rawListeners('event') as Fn[];
      emitter.off('event', again as Fn);
      return { seen, afterCall, afterOff: emitter.listenerCount('event'), emitted: emitter.emit('event') };
    });
  });

  it('newListener and removeListener name the application listener', () => {
    differential((emitter) => {
      const a: Fn = () => undefined;
      const named: string[] = [];
      emitter.on('newListener', function (this: unknown, event: unknown, listener: unknown) {
        named.push(`new:${String(event)}:${String(listener === a)}:${String(this === emitter)}`);
      });
      emitter.on('removeListener', (event: unknown, listener: unknown) => {
        named.push(`remove:${String(event)}:${String(listener === a)}`);
      });
      emitter.on('event', a);
      emitter.once('event', a);
      emitter.off('event', a);
      emitter.emit('event');
      return named;
    });
  });

  it('removes a listener the application added to the raw object directly, and the last added first', () => {
    const raw = new Client();
    const wrapped = interceptMethods(raw, {}, { listeners: {} });
    const calls: string[] = [];
    const a: Fn = function (this: unknown) {
      calls.push(this === raw ? 'raw' : this === wrapped ? 'wrapped' : 'other');
    };
    raw.on('event', a);
    wrapped.off('event', a);
    expect(raw.listenerCount('event')).toBe(0);
    // Added both ways: removal takes the last added, as the emitter does for one added twice.
    wrapped.on('event', a);
    raw.on('event', a);
    expect(wrapped.listenerCount('event', a)).toBe(2);
    wrapped.off('event', a);
    wrapped.emit('event');
    expect(calls).toEqual(['wrapped']);
    raw.on('event', a);
    wrapped.on('event', a);
    wrapped.off('event', a);
    calls.length = 0;
    wrapped.emit('event');
    expect(calls).toEqual(['wrapped', 'raw']);
  });

  it('an adapter may wrap one event differently, and hide its own listeners', () => {
    const raw = new Client();
    const own = (): void => undefined;
    const mine = ownListeners(raw, { on: { data: own }, once: { close: own } });
    const wrapped = interceptMethods(
      raw,
      {},
      {
        listeners: {
          wrap: {
            data: (listener, receiver) =>
              function traced(this: unknown, ...args: unknown[]) {
                return listener.apply(receiver(this), ['traced', ...args]);
              },
          },
          own: mine,
        },
      },
    );
    const seen: unknown[] = [];
    const app: Fn = function (this: unknown, ...args: unknown[]) {
      seen.push(this === wrapped, ...args);
    };
    wrapped.on('data', app);
    wrapped.on('close', app);
    // hoptrace's own `once('close')` is not listed.
    expect(wrapped.rawListeners('close')).toEqual([app]);
    expect(wrapped.listenerCount('close')).toBe(1);
    wrapped.emit('data', 1);
    wrapped.emit('close');
    expect(seen).toEqual([true, 'traced', 1, true]);
    expect(wrapped.listeners('data')).toEqual([app]);
    expect(wrapped.listenerCount('data')).toBe(1);
    expect(wrapped.listenerCount('data', app)).toBe(1);
    wrapped.off('data', app);
    expect(raw.listeners('data')).toEqual([own]);
  });

  it("keeps hoptrace's own listeners through removeAllListeners(), unlisted", () => {
    differential((emitter, mode) => {
      const calls: string[] = [];
      const raw = mode === 'raw' ? emitter : new Client();
      let target = emitter;
      if (mode === 'wrapped') {
        const mine = ownListeners(raw, {
          prepend: { close: () => calls.push('own-close') },
          on: { flush: () => calls.push('own-flush') },
          once: { end: () => calls.push('own-end') },
        });
        target = interceptMethods(raw as Client, {}, { listeners: { own: mine } });
      }
      target.on('close', () => calls.push('app-close'));
      target.on('other', () => undefined);
      const names = [target.eventNames(), target.listenerCount('close'), target.rawListeners('end').length];
      target.emit('end');
      const afterEnd = target.listenerCount('end');
      const cleared = target.removeAllListeners() === target;
      target.on('close', () => calls.push('app-close-2'));
      target.emit('close');
      target.emit('flush');
      target.emit('end');
      target.removeAllListeners('close');
      const after = [target.eventNames(), target.listenerCount('close'), target.listeners('flush').length];
      // What the application observes: its own listeners only (hoptrace's calls are left out).
      return { names, afterEnd, cleared, after, calls: calls.filter((c) => c.startsWith('app')) };
    });
    const raw = new Client();
    const calls: string[] = [];
    const mine = ownListeners(raw, {
      prepend: { close: () => calls.push('own-close') },
      once: { end: () => calls.push('own-end') },
    });
    const wrapped = interceptMethods(raw, {}, { listeners: { own: mine } });
    wrapped.on('close', () => calls.push('app-close'));
    wrapped.removeAllListeners();
    wrapped.on('close', () => calls.push('app-after'));
    wrapped.emit('close');
    wrapped.emit('end');
    wrapped.emit('end');
    // Added back (the prepended one ahead), the `once` one kept until its event came.
    expect(calls).toEqual(['own-close', 'app-after', 'own-end']);
  });

  it('is opt-in: without `listeners`, listeners are added to the raw object as they are', () => {
    const raw = new Client();
    const wrapped = interceptMethods(raw, {});
    const a: Fn = () => undefined;
    wrapped.on('event', a);
    expect(raw.listeners('event')).toEqual([a]);
  });
});
