import { EventEmitter } from 'node:events';
import { type AmqpTracingOptions, deadLetterOptions, traceChannel, traceConnection } from '@hoptrace/amqp';
import { FAILURE_HEADERS } from '@hoptrace/core';
import { allUndefined, spanShapesOf, useTestTracing } from '@hoptrace/test-kit';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { AMQP_OPTION_KEYS } from '../src/options.ts';

const tracing = useTestTracing();

/** A minimal stand-in with the methods traceChannel checks (no broker needed for option checks). */
function fakeChannel() {
  const emitter = new EventEmitter();
  return Object.assign(emitter, {
    publish: (..._args: unknown[]): boolean => true,
    sendToQueue: (..._args: unknown[]): boolean => true,
    consume: () => Promise.resolve({ consumerTag: 'c' }),
    ack: () => undefined,
    assertQueue: function (this: unknown) {
      return { calledOn: this };
    },
    prefetch: function (this: unknown) {
      return this;
    },
  });
}

describe('options are validated at wrap time', () => {
  it.each([
    [{ settleTimeoutMs: 0 }, 'Expected `settleTimeoutMs` to be an integer from 1 to 2147483647, got 0'],
    [{ settleTimeoutMs: 1.5 }, 'Expected `settleTimeoutMs` to be an integer from 1 to 2147483647, got 1.5'],
    [{ settleSpans: 'yes' }, 'Expected `settleSpans` to be a boolean, got "yes"'],
    [{ serverAddress: '' }, 'Expected `serverAddress` to be a non-empty string, got ""'],
    [{ serverPort: -1 }, 'Expected `serverPort` to be an integer from 1 to 65535, got -1'],
    [{ spanDestination: 'queue' }, 'Expected `spanDestination` to be a function, got "queue"'],
    [{ relation: 'sibling' }, "Expected `relation` to be one of 'parent', 'link', 'root', got \"sibling\""],
    [{ legacyAttributes: 1 }, 'Expected `legacyAttributes` to be a boolean, got 1'],
    // Node.js timers fire after 1 ms past 2^31 - 1: every span would end as settle_timeout at once.
    [
      { settleTimeoutMs: 2 ** 31 },
      'Expected `settleTimeoutMs` to be an integer from 1 to 2147483647, got 2147483648',
    ],
    [{ serverPort: 65_536 }, 'Expected `serverPort` to be an integer from 1 to 65535, got 65536'],
  ])('%j throws a TypeError naming the option and value', (options, message) => {
    expect(() => traceChannel(fakeChannel(), options as never)).toThrow(new TypeError(message));
    expect(() =>
      traceConnection(
        { createChannel: () => undefined, createConfirmChannel: () => undefined },
        options as never,
      ),
    ).toThrow(new TypeError(message));
  });

  it('rejects a null options object, as every other hoptrace wrapper does', () => {
    const message = 'Expected options to be an object, got null';
    expect(() => traceChannel(fakeChannel(), null as never)).toThrow(new TypeError(message));
    expect(() =>
      traceConnection(
        { createChannel: () => undefined, createConfirmChannel: () => undefined },
        null as never,
      ),
    ).toThrow(new TypeError(message));
  });

  it('validates the options of a call that returns an existing wrapper too', () => {
    const raw = fakeChannel();
    const traced = traceChannel(raw);
    const message = new TypeError('Expected `settleSpans` to be a boolean, got "yes"');
    expect(() => traceChannel(traced, { settleSpans: 'yes' } as never)).toThrow(message);
    expect(() => traceChannel(raw, { settleSpans: 'yes' } as never)).toThrow(message);
    const connection = traceConnection({
      createChannel: () => undefined,
      createConfirmChannel: () => undefined,
    });
    expect(() => traceConnection(connection, { settleSpans: 'yes' } as never)).toThrow(message);
    expect(traceChannel(raw, { settleSpans: true })).toBe(traced);
  });

  it.each([
    ['amqp://user:secret@rabbit-1.internal', '"amqp://***@rabbit-1.internal"'],
    ['user:secret@rabbit-1.internal', '"***@rabbit-1.internal"'],
    ['amqps://rabbit-1.internal', '"amqps://rabbit-1.internal"'],
  ])(
    'refuses a serverAddress that is a URL or carries credentials (%s), leaving them out of the message',
    (serverAddress, shown) => {
      const message = new TypeError(
        `Expected \`serverAddress\` to be a host name or IP address (no scheme, path or credentials), got ${shown}`,
      );
      expect(() => traceChannel(fakeChannel(), { serverAddress })).toThrow(message);
      expect(() =>
        traceConnection(
          { createChannel: () => undefined, createConfirmChannel: () => undefined },
          { serverAddress },
        ),
      ).toThrow(message);
    },
  );

  it('refuses an option it does not take, naming the one meant', () => {
    expect(() => traceChannel(fakeChannel(), { settleSpan: true } as never)).toThrow(
      new TypeError('Unknown option `settleSpan` for traceChannel (did you mean `settleSpans`?)'),
    );
    expect(() =>
      traceConnection({ createChannel: () => undefined, createConfirmChannel: () => undefined }, {
        captureKeys: true,
      } as never),
    ).toThrow(new TypeError('Unknown option `captureKeys` for traceConnection'));
  });

  it('accepts the longest timeout Node.js timers take', () => {
    expect(() =>
      traceChannel(fakeChannel(), { settleTimeoutMs: 2 ** 31 - 1, serverPort: 65_535 }),
    ).not.toThrow();
  });

  it('rejects things that are not channels or connections', () => {
    expect(() => traceChannel(null as never)).toThrow(TypeError);
    expect(() => traceChannel({} as never)).toThrow('Expected `channel` to be an amqplib Channel');
    expect(() => traceConnection({} as never)).toThrow('Expected `connection` to be an amqplib connection');
    // An ioredis client (BullMQ's connection): publish() and on() too, but no consume() or ack(). It
    // was wrapped, and its pub/sub publish(channel, message) was read as an AMQP publish.
    class Redis extends EventEmitter {
      publish() {}
      subscribe() {}
    }
    expect(() => traceChannel(new Redis() as never)).toThrow(
      new TypeError('Expected `channel` to be an amqplib Channel, got a Redis without sendToQueue()'),
    );
    expect(() => traceChannel({} as never)).toThrow(
      new TypeError('Expected `channel` to be an amqplib Channel, got an object without publish()'),
    );
    expect(() => traceConnection(null as never)).toThrow(
      new TypeError('Expected `connection` to be an amqplib connection, got null'),
    );
  });
});

describe('an option set to undefined is not set', () => {
  const options = allUndefined<AmqpTracingOptions>(AMQP_OPTION_KEYS);

  /** The shapes of the spans `run` makes. */
  const shapesOf = (run: () => Promise<unknown>) => spanShapesOf(tracing.current, run);

  type AnyCall = (...args: unknown[]) => unknown;

  /** Publishes, then consumes and acks a message carrying a context, through `traced`. */
  async function publishAndConsume(
    wrap: (raw: ReturnType<typeof fakeChannel>) => ReturnType<typeof fakeChannel>,
  ) {
    const raw = fakeChannel();
    let deliver: ((message: unknown) => void) | undefined;
    raw.consume = ((_queue: string, callback: (message: unknown) => void) => {
      deliver = callback;
      return Promise.resolve({ consumerTag: 'c' });
    }) as never;
    const traced = wrap(raw) as unknown as Record<'publish' | 'sendToQueue' | 'consume' | 'ack', AnyCall>;
    traced.publish('orders', 'eu.created', Buffer.from('x'));
    traced.sendToQueue('amq.gen-1', Buffer.from('y'));
    await traced.consume('orders.eu', () => undefined);
    const message = {
      content: Buffer.from('x'),
      fields: {
        deliveryTag: 1,
        redelivered: false,
        exchange: 'orders',
        routingKey: 'eu.created',
        consumerTag: 'c',
      },
      properties: { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } },
    };
    deliver?.(message);
    traced.ack(message);
  }

  it('traceChannel and traceConnection given every option as undefined trace as given {}', async () => {
    const viaChannel = (o: AmqpTracingOptions) => () => publishAndConsume((raw) => traceChannel(raw, o));
    const shapes = await shapesOf(viaChannel(options));
    expect(shapes.map((s) => s.name).sort()).toEqual(['process orders.eu', 'send', 'send orders']);
    expect(shapes).toEqual(await shapesOf(viaChannel({})));
    const viaConnection = (o: AmqpTracingOptions) => () =>
      publishAndConsume((raw) =>
        traceConnection({ createChannel: () => raw, createConfirmChannel: () => raw }, o).createChannel(),
      );
    expect(await shapesOf(viaConnection(options))).toEqual(shapes);
    expect(await shapesOf(viaConnection({}))).toEqual(shapes);
  });
});

describe('wrapping', () => {
  it('is idempotent and keeps the channel’s own members', () => {
    const raw = fakeChannel();
    const traced = traceChannel(raw);
    expect(traced).not.toBe(raw);
    expect(traceChannel(traced)).toBe(traced);
    expect(traceChannel(raw)).toBe(traced);
    expect(traced.assertQueue().calledOn).toBe(raw); // other methods run on the raw channel
    expect(traced.prefetch()).toBe(traced); // and one that returns the channel returns the wrapper
    // hoptrace's own close listener is on the raw channel, and not listed by the traced one.
    expect(raw.listenerCount('close')).toBe(1);
    expect(traced.listenerCount('close')).toBe(0);
    expect(raw.listenerCount('error')).toBe(0); // never changes amqplib's error semantics
  });

  it('passes publish’s return value through (back-pressure) and never mutates the caller’s options', () => {
    const raw = fakeChannel();
    let seen: unknown;
    raw.publish = (...args: unknown[]) => {
      seen = args[3];
      return false;
    };
    const traced = traceChannel(raw);
    const options = Object.freeze({ headers: Object.freeze({ a: 1 }) });
    expect(traced.publish('ex', 'rk', Buffer.from('x'), options)).toBe(false);
    expect(options).toEqual({ headers: { a: 1 } });
    expect(seen).not.toBe(options);
    expect((seen as { headers: Record<string, unknown> }).headers.a).toBe(1);
  });
});

describe('deadLetterOptions options', () => {
  const message = () => ({ fields: { exchange: '', routingKey: 'orders' }, properties: { headers: {} } });

  it('refuses an option it does not take, naming the one it most likely misspells (it was ignored)', () => {
    expect(() => deadLetterOptions(message(), 'x', { queu: 'orders' } as never)).toThrow(
      new TypeError('Unknown option `queu` for deadLetterOptions (did you mean `queue`?)'),
    );
    expect(() => deadLetterOptions(message(), 'x', { attempt: 3 } as never)).toThrow(
      new TypeError('Unknown option `attempt` for deadLetterOptions (did you mean `attempts`?)'),
    );
    expect(() => deadLetterOptions(message(), 'x', { exchange: 'orders.dlx' } as never)).toThrow(
      new TypeError('Unknown option `exchange` for deadLetterOptions'),
    );
  });

  it('takes every option it knows, and an unknown one set to undefined', () => {
    const out = deadLetterOptions(message(), 'x', {
      queue: 'orders',
      attempts: 3,
      classifyError: () => undefined,
      context: ROOT_CONTEXT,
    });
    expect(out.headers).toMatchObject({
      [FAILURE_HEADERS.destination]: 'orders',
      [FAILURE_HEADERS.attempts]: '3',
    });
    expect(() => deadLetterOptions(message(), 'x', { queu: undefined } as never)).not.toThrow();
  });
});
