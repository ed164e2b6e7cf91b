import { ChannelState, type RawChannel } from './channel-state.ts';
import { tracedConsume } from './consumer.ts';
import { type AmqpTracingOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { tracedPublish } from './producer.ts';
import { tracedGet } from './receive.ts';
import { tracedSettle } from './settle.ts';
import type { AnyFunction, TraceableChannel } from './types.ts';

/** Every traced channel hoptrace handed out (wrapping one again returns it unchanged). */
const tracedChannels = new WeakSet<object>();
/** The traced channel of each raw channel (wrapping a raw channel twice shares its state). */
const byRawChannel = new WeakMap<object, object>();

type Override = (state: ChannelState, args: unknown[]) => unknown;

const OVERRIDES: ReadonlyMap<PropertyKey, Override> = new Map<PropertyKey, Override>([
  ['publish', (state, args) => tracedPublish(state, 'publish', args)],
  ['sendToQueue', (state, args) => tracedPublish(state, 'sendToQueue', args)],
  ['consume', tracedConsume],
  ['get', tracedGet],
  ['ack', (state, args) => tracedSettle(state, 'ack', args)],
  ['nack', (state, args) => tracedSettle(state, 'nack', args)],
  ['reject', (state, args) => tracedSettle(state, 'reject', args)],
  ['ackAll', (state, args) => tracedSettle(state, 'ackAll', args)],
  ['nackAll', (state, args) => tracedSettle(state, 'nackAll', args)],
]);

/**
 * Traces an amqplib `Channel` or `ConfirmChannel` (promise API from `amqplib`, or callback API from
 * `amqplib/callback_api`; amqplib 0.10 to 2.x):
 * - `publish` / `sendToQueue`: a `send` span (PRODUCER) whose context travels in a copy of the
 *   message headers; it ends when `publish` returns, or on a confirm channel when the broker
 *   confirms (ERROR when it nacks). Return value and back-pressure (`false` + `drain`) untouched.
 * - `consume`: a `process` span (CONSUMER) per delivery, active while the callback runs, ended when
 *   the message is settled on this channel (`ack`, `nack`, `reject`, `allUpTo`, `ackAll`,
 *   `nackAll`), when the callback is done for `noAck` consumers, or with an error when the channel
 *   or connection closes (or `settleTimeoutMs` passes).
 * - `get`: a `receive` span (CLIENT) until amqplib answers.
 *
 * Returns a Proxy with the channel's own type; every other property is the channel's own. Never
 * patches prototypes, never mutates the caller's options, headers or messages. Idempotent: a traced
 * channel is returned unchanged, and the same raw channel always yields the same traced channel
 * (options of later calls are then ignored). Settle messages on the traced channel: acks sent on the
 * raw channel are not seen (those spans then end when the channel closes).
 *
 * @param channel - the channel from `createChannel()` / `createConfirmChannel()`.
 * @param options - see {@link AmqpTracingOptions}; validated now (TypeError on a bad value).
 * @example
 * const channel = traceChannel(await connection.createChannel());
 */
export function traceChannel<C extends TraceableChannel>(channel: C, options?: AmqpTracingOptions): C {
  if (channel === null || typeof channel !== 'object' || typeof channel.publish !== 'function') {
    throw new TypeError(`Expected \`channel\` to be an amqplib Channel, got ${String(channel)}`);
  }
  if (tracedChannels.has(channel)) return channel;
  const existing = byRawChannel.get(channel);
  if (existing) return existing as C;
  return wrapChannel(channel, resolveOptions(options));
}

/** Wraps a raw channel with already resolved options (used by {@link traceConnection}). */
export function wrapChannel<C extends TraceableChannel>(channel: C, options: ResolvedOptions): C {
  if (tracedChannels.has(channel)) return channel;
  const existing = byRawChannel.get(channel);
  if (existing) return existing as C;
  const state = new ChannelState(channel as C & RawChannel, options);
  const methods = new Map<PropertyKey, AnyFunction>();
  const proxy = new Proxy(channel, {
    get(target, property) {
      const cached = methods.get(property);
      if (cached) return cached;
      const override = OVERRIDES.get(property);
      if (override) {
        const method = (...args: unknown[]): unknown => override(state, args);
        methods.set(property, method);
        return method;
      }
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      // amqplib's own methods run with the raw channel as `this` (its internals call each other).
      const bound = (value as AnyFunction).bind(target);
      methods.set(property, bound);
      return bound;
    },
  });
  tracedChannels.add(proxy);
  byRawChannel.set(channel, proxy);
  return proxy;
}
