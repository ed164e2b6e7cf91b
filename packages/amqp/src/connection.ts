import { assertClient, existingWrapper, interceptMethods, isThenable } from '@hoptrace/core/adapter';
import { wrapChannel } from './channel.ts';
import { type AmqpTracingOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import type { AnyFunction, TraceableChannel, TraceableConnection } from './types.ts';

function isChannel(value: unknown): value is TraceableChannel {
  return (
    value !== null && typeof value === 'object' && typeof (value as TraceableChannel).publish === 'function'
  );
}

/** A traced `createChannel` / `createConfirmChannel` for both APIs. */
function tracedCreate(raw: object, method: string, options: ResolvedOptions, args: unknown[]): unknown {
  let createArgs = args;
  const last = args.length - 1;
  const callback = args[last];
  if (typeof callback === 'function') {
    // Callback API: (options?, cb) with cb(err, channel).
    createArgs = args.slice();
    createArgs[last] = function created(this: unknown, error: unknown, channel: unknown, ...rest: unknown[]) {
      const traced = isChannel(channel) ? wrapChannel(channel, options) : channel;
      return (callback as AnyFunction).call(this, error, traced, ...rest);
    };
  }
  const result = (Reflect.get(raw, method, raw) as AnyFunction).apply(raw, createArgs);
  if (isThenable(result)) {
    return result.then((channel) => (isChannel(channel) ? wrapChannel(channel, options) : channel));
  }
  // The callback API also returns the (opening) channel synchronously.
  return isChannel(result) ? wrapChannel(result, options) : result;
}

/**
 * Traces an amqplib connection (the `ChannelModel` of `await amqplib.connect()`, or the callback
 * API's connection): `createChannel()` and `createConfirmChannel()` hand out channels already
 * traced with {@link traceChannel} and these options. Everything else is the connection's own;
 * listeners added to it get it as `this`.
 * Returns a Proxy with the connection's type; idempotent; never patches prototypes.
 *
 * @param connection - the connection model from `connect()`.
 * @param options - see {@link AmqpTracingOptions}; validated now (TypeError on a bad value).
 * @example
 * const connection = traceConnection(await amqplib.connect(url), { settleTimeoutMs: 60_000 });
 */
export function traceConnection<M extends TraceableConnection>(
  connection: M,
  options?: AmqpTracingOptions,
): M {
  assertClient('connection', connection, 'an amqplib connection', ['createChannel']);
  // Options are validated also when the connection was wrapped before (they are then ignored).
  const resolved = resolveOptions(options, 'traceConnection');
  const existing = existingWrapper(connection);
  if (existing) return existing;
  return interceptMethods(
    connection,
    {
      createChannel: (raw, args) => tracedCreate(raw, 'createChannel', resolved, args),
      createConfirmChannel: (raw, args) => tracedCreate(raw, 'createConfirmChannel', resolved, args),
    },
    // Listeners added to the traced connection (`close`, `error`, `blocked`...) get it as `this`, as
    // they get the connection itself without hoptrace.
    { listeners: {} },
  );
}
