/**
 * What hoptrace reads from amqplib's own objects (not part of its typed API, present in amqplib
 * 0.10 to 2.x): the connection's socket, whether the connection is closing, and which RPC of a
 * channel still awaits the broker's answer. Never throws.
 *
 * @packageDocumentation
 */

import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';

/** The internals amqplib keeps on a channel or connection model (`.connection.stream` is the socket). */
interface WithSocket {
  connection?: { stream?: { remoteAddress?: unknown; remotePort?: unknown }; expectSocketClose?: unknown };
}

/**
 * `server.address` and `server.port` for a channel or connection model: the options when given,
 * else the remote address and port of amqplib's socket (`channel.connection.stream`, present in
 * amqplib 0.10 to 2.x). Never throws; unknown parts are left out.
 */
export function serverAttributes(
  owner: object,
  address: string | undefined,
  port: number | undefined,
): Attributes {
  const stream = (owner as WithSocket).connection?.stream;
  const out: Attributes = {};
  const a = address ?? stream?.remoteAddress;
  const p = port ?? stream?.remotePort;
  if (typeof a === 'string' && a !== '') out[ATTR_SERVER_ADDRESS] = a;
  if (typeof p === 'number') out[ATTR_SERVER_PORT] = p;
  return out;
}

/**
 * Whether the channel's connection is closing or closed (amqplib sets `expectSocketClose` on its
 * connection when it closes, after closing the channels). Read just after a channel's `close`
 * event, it tells a connection loss from a channel close.
 */
export function connectionClosing(channel: object): boolean {
  return (channel as WithSocket).connection?.expectSocketClose === true;
}

/**
 * amqplib's RPC bookkeeping on a channel (0.10 to 2.x): `reply` answers the RPC awaiting the
 * broker's reply (null when none does), and `pending` holds the RPCs queued behind it, each with the
 * `reply` it will get.
 */
interface WithRpc {
  reply?: unknown;
  pending?: unknown;
}

/** How many RPCs wait to be sent on the channel; undefined when amqplib keeps no such queue there. */
export function queuedRpcs(channel: object): number | undefined {
  try {
    const { pending } = channel as WithRpc;
    return Array.isArray(pending) ? pending.length : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Called right after a call that made one RPC on `channel` (amqplib sends it at once, or queues it
 * behind the RPC awaiting its reply), with {@link queuedRpcs} read just before the call: a test of
 * whether that RPC still awaits the broker's answer, true until amqplib has read the answer (or the
 * channel closed). Undefined when the channel does not hold amqplib's bookkeeping as expected.
 * The test costs a look at the RPCs queued on the channel, and never throws.
 */
export function rpcAwaiting(channel: object, queuedBefore: number | undefined): (() => boolean) | undefined {
  try {
    const rpc = channel as WithRpc;
    const { pending } = rpc;
    if (queuedBefore === undefined || !Array.isArray(pending)) return undefined;
    const queued = pending.length === queuedBefore + 1;
    const reply: unknown = queued ? (pending[queuedBefore] as WithRpc | undefined)?.reply : rpc.reply;
    if (typeof reply !== 'function') return undefined;
    return () => {
      try {
        if (rpc.reply === reply) return true;
        const now = rpc.pending;
        return Array.isArray(now) && now.some((entry) => (entry as WithRpc | undefined)?.reply === reply);
      } catch {
        return true; // unreadable: still waiting, as far as hoptrace can tell
      }
    };
  } catch {
    return undefined;
  }
}
