import { assertClient, existingWrapper, type Interceptor, interceptMethods } from '@hoptrace/core/adapter';
import { ChannelState, type RawChannel } from './channel-state.ts';
import { tracedConsume } from './consumer.ts';
import { type AmqpTracingOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { tracedPublish } from './producer.ts';
import { tracedGet } from './receive.ts';
import { tracedRecover, tracedSettle } from './settle.ts';
import type { TraceableChannel } from './types.ts';

/**
 * Traces an amqplib `Channel` or `ConfirmChannel` (promise API from `amqplib`, or callback API from
 * `amqplib/callback_api`; amqplib 0.10 to 2.x):
 * - `publish` / `sendToQueue`: a `send` span (PRODUCER) whose context travels in a copy of the
 *   message headers; it ends when `publish` returns, or on a confirm channel when the broker
 *   confirms (ERROR when it nacks). Return value and back-pressure (`false` + `drain`) untouched.
 * - `consume`: a `process` span (CONSUMER) per delivery, active while the callback runs, ended when
 *   the message is settled on this channel (`ack`, `nack`, `reject`, `allUpTo`, `ackAll`,
 *   `nackAll`), when the callback is done for `noAck` consumers, as `recovered` on `recover()`, or
 *   with an error when the channel or connection closes (or `settleTimeoutMs` passes). At most
 *   `maxOpenDeliveries` stay open per channel.
 * - `get`: a `receive` span (CLIENT) until amqplib answers.
 *
 * Returns a Proxy with the channel's own type; every other property is the channel's own, and
 * listeners added to it get it as `this`. Never
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
  // Every method the channel type names: an ioredis client has a publish() (and an on()) too.
  assertClient('channel', channel, 'an amqplib Channel', CHANNEL_METHODS);
  // Options are validated also when the channel was wrapped before (they are then ignored).
  const resolved = resolveOptions(options, 'traceChannel');
  return wrapChannel(channel, resolved);
}

const CHANNEL_METHODS = ['publish', 'sendToQueue', 'consume', 'ack', 'on'] as const;

/** Wraps a raw channel with already resolved options (used by {@link traceConnection}). */
export function wrapChannel<C extends TraceableChannel>(channel: C, options: ResolvedOptions): C {
  const existing = existingWrapper(channel);
  if (existing) return existing;
  const state = new ChannelState(channel as C & RawChannel, options);
  let traced: C | undefined;
  // The callback API's consume, get, settle and recover return the channel for chaining: the caller
  // gets the traced channel back, as every method hoptrace does not intercept does.
  const chained =
    (traceCall: (args: unknown[]) => unknown): Interceptor<C> =>
    (raw, args) => {
      const result = traceCall(args);
      return result === raw ? traced : result;
    };
  const settle = (method: string): Interceptor<C> => chained((args) => tracedSettle(state, method, args));
  traced = interceptMethods(
    channel,
    {
      publish: (_raw, args) => tracedPublish(state, 'publish', args),
      sendToQueue: (_raw, args) => tracedPublish(state, 'sendToQueue', args),
      consume: chained((args) => tracedConsume(state, args)),
      get: chained((args) => tracedGet(state, args)),
      ack: settle('ack'),
      nack: settle('nack'),
      reject: settle('reject'),
      ackAll: settle('ackAll'),
      nackAll: settle('nackAll'),
      recover: chained((args) => tracedRecover(state, args)),
    },
    // Listeners added to the traced channel (`close`, `error`, `return`, `drain`...) get it as
    // `this`, as they get the channel itself without hoptrace; hoptrace's own stay out of sight.
    { listeners: { own: state.own } },
  );
  return traced;
}
