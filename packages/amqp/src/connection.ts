import { wrapChannel } from './channel.ts';
import { type AmqpTracingOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import type { AnyFunction, TraceableChannel, TraceableConnection } from './types.ts';

const tracedConnections = new WeakSet<object>();
const byRawConnection = new WeakMap<object, object>();

function isChannel(value: unknown): value is TraceableChannel {
  return (
    value !== null && typeof value === 'object' && typeof (value as TraceableChannel).publish === 'function'
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/** A traced `createChannel` / `createConfirmChannel` for both APIs. */
function tracedCreate(target: object, method: string, options: ResolvedOptions, args: unknown[]): unknown {
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
  const result = (Reflect.get(target, method, target) as AnyFunction).apply(target, createArgs);
  if (isThenable(result)) {
    return result.then((channel) => (isChannel(channel) ? wrapChannel(channel, options) : channel));
  }
  // The callback API also returns the (opening) channel synchronously.
  return isChannel(result) ? wrapChannel(result, options) : result;
}

/**
 * Traces an amqplib connection (the `ChannelModel` of `await amqplib.connect()`, or the callback
 * API's connection): `createChannel()` and `createConfirmChannel()` hand out channels already
 * traced with {@link traceChannel} and these options. Everything else is the connection's own.
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
  if (
    connection === null ||
    typeof connection !== 'object' ||
    typeof connection.createChannel !== 'function'
  ) {
    throw new TypeError(`Expected \`connection\` to be an amqplib connection, got ${String(connection)}`);
  }
  if (tracedConnections.has(connection)) return connection;
  const existing = byRawConnection.get(connection);
  if (existing) return existing as M;
  const resolved = resolveOptions(options);
  const methods = new Map<PropertyKey, AnyFunction>();
  const proxy = new Proxy(connection, {
    get(target, property) {
      const cached = methods.get(property);
      if (cached) return cached;
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method =
        property === 'createChannel' || property === 'createConfirmChannel'
          ? (...args: unknown[]): unknown => tracedCreate(target, property, resolved, args)
          : (value as AnyFunction).bind(target);
      methods.set(property, method);
      return method;
    },
  });
  tracedConnections.add(proxy);
  byRawConnection.set(connection, proxy);
  return proxy;
}
