/**
 * What hoptrace reads from amqplib's own objects (not part of its typed API, present in amqplib
 * 0.10 to 2.x): the connection's socket and whether the connection is closing. Never throws.
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
