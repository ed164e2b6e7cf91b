import {
  asAwaited,
  existingWrapper,
  interceptMethods,
  isThenable,
  isWrapper,
  registerWrapper,
} from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';

class Client {
  #secret = 's';
  calls = 0;
  get secret(): string {
    return this.#secret;
  }
  send(value: string): string {
    this.calls++;
    return `${this.#secret}:${value}`;
  }
  ping(): string {
    return this.#secret;
  }
  /** A chaining method, as EventEmitter's `on` or a stream's `pause`. */
  touch(): this {
    this.calls++;
    return this;
  }
}

describe('interceptMethods', () => {
  it('answers intercepted methods with the raw object, and runs every other method on the raw object', () => {
    const raw = new Client();
    const wrapped = interceptMethods(raw, {
      send: (target, args) => `traced(${target.send(String(args[0]))})`,
    });
    expect(wrapped.send('x')).toBe('traced(s:x)');
    // Private fields work: the raw object is `this` for the client's own methods and getters.
    expect(wrapped.ping()).toBe('s');
    expect(wrapped.secret).toBe('s');
    expect(wrapped.calls).toBe(1);
    wrapped.calls = 5;
    expect(raw.calls).toBe(5);
  });

  it('a delegated method that returns the raw object (chaining) returns the wrapper; other results pass as they are', () => {
    const raw = new Client();
    const wrapped = interceptMethods(raw, {});
    expect(wrapped.touch()).toBe(wrapped);
    expect(wrapped.touch().touch().calls).toBe(3);
    expect(raw.calls).toBe(3);
    expect(wrapped.ping()).toBe('s');
    const other = new Client();
    raw.touch = () => other;
    expect(wrapped.touch()).toBe(other);
  });

  it('a property whose value is an object hoptrace wrapped gives its wrapper (a stream naming its client)', () => {
    const client = new Client();
    const tracedClient = interceptMethods(client, {});
    const plain = new Client();
    const raw = {
      get owner() {
        return client;
      },
      other: plain,
    };
    const wrapped = interceptMethods(raw, {});
    expect(wrapped.owner).toBe(tracedClient);
    expect(wrapped.other).toBe(plain);
    // A non-configurable, non-writable data property stays as it is (Proxy invariant).
    const fixed = {} as { client: Client };
    Object.defineProperty(fixed, 'client', { value: client, configurable: false, writable: false });
    expect(interceptMethods(fixed, {}).client).toBe(client);
  });

  it('is idempotent: a wrapper, or an object wrapped before, yields the same wrapper', () => {
    const raw = new Client();
    const wrapped = interceptMethods(raw, {});
    expect(interceptMethods(raw, {})).toBe(wrapped);
    expect(interceptMethods(wrapped, {})).toBe(wrapped);
    expect(existingWrapper(raw)).toBe(wrapped);
    expect(isWrapper(wrapped)).toBe(true);
    expect(isWrapper(raw)).toBe(false);
  });

  it('re-binds a method the raw object replaces later, and keeps a stable bound method otherwise', () => {
    const raw = new Client();
    const wrapped = interceptMethods(raw, {});
    expect(wrapped.ping).toBe(wrapped.ping);
    raw.ping = () => 'patched';
    expect(wrapped.ping()).toBe('patched');
  });

  it('returns non-configurable, non-writable function properties as they are (Proxy invariant)', () => {
    const raw = {} as { fixed: () => string };
    Object.defineProperty(raw, 'fixed', { value: () => 'f', configurable: false, writable: false });
    const wrapped = interceptMethods(raw, {});
    expect(wrapped.fixed).toBe(raw.fixed);
  });

  it('registers wrapped functions in the same registry', () => {
    const fn = () => 1;
    const wrapper = () => 2;
    registerWrapper(wrapper, fn);
    expect(existingWrapper(fn)).toBe(wrapper);
    expect(isWrapper(wrapper)).toBe(true);
  });
});

describe('isThenable', () => {
  it('recognizes promises and thenables, and treats a throwing then getter as not a thenable', () => {
    expect(isThenable(Promise.resolve())).toBe(true);
    expect(isThenable({ then() {} })).toBe(true);
    const fn = Object.assign(() => undefined, { then() {} });
    expect(isThenable(fn)).toBe(true);
    expect(isThenable({ then: 1 })).toBe(false);
    expect(isThenable(null)).toBe(false);
    expect(isThenable('then')).toBe(false);
    const hostile = Object.defineProperty({}, 'then', {
      get() {
        throw new Error('getter');
      },
    });
    expect(isThenable(hostile)).toBe(false);
  });
});

describe('asAwaited', () => {
  it('turns a value whose then getter throws into a promise rejected with what it threw; anything else is itself', async () => {
    const thrown = new Error('strict');
    const strict = new Proxy(
      {},
      {
        get(_target, property) {
          if (property === 'then') throw thrown;
          return undefined;
        },
      },
    );
    await expect(asAwaited(strict)).rejects.toBe(thrown);
    // What an await of the value itself meets: the same value.
    await expect((async () => await strict)()).rejects.toBe(thrown);
    const promise = Promise.resolve(1);
    const thenable = { then: (resolve: (v: number) => void) => resolve(2) };
    const fn = () => 3;
    for (const value of [undefined, null, 0, 'text', promise, thenable, fn, { a: 1 }]) {
      expect(asAwaited(value)).toBe(value);
    }
  });
});
