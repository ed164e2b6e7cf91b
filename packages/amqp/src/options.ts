import {
  assertOptionalBoolean,
  assertOptionalFunction,
  assertOptionalInteger,
  type ConsumerTracingOptions,
  createInstrumentation,
  type Instrumentation,
} from '@hoptrace/core';
import type { SpanNameParts } from './destination.ts';
import { SCOPE_NAME, SCOPE_VERSION } from './version.ts';

/** Options of {@link traceChannel} and {@link traceConnection}. */
export interface AmqpTracingOptions extends ConsumerTracingOptions {
  /**
   * Force-end a `process` span whose message is neither acked, nacked nor rejected within this many
   * milliseconds: the span ends with ERROR and `error.type` `settle_timeout` (the message itself is
   * left alone; settling it later is still passed to amqplib). Default: no timeout (the span ends on
   * settle or when the channel or connection closes).
   * @example { settleTimeoutMs: 60_000 }
   */
  settleTimeoutMs?: number;
  /**
   * Also emit a `settle` span (kind CLIENT, named `ack {destination}`, `nack {destination}`,
   * `reject {destination}`) for each `ack`/`nack`/`reject`/`ackAll`/`nackAll` call. Default `false`.
   * @example { settleSpans: true }
   */
  settleSpans?: boolean;
  /**
   * `server.address`. Default: the remote address of the connection's socket (an IP address). Set
   * it to the host name you connect to when dashboards should show that.
   * @example { serverAddress: 'rabbit-1.internal' }
   */
  serverAddress?: string;
  /**
   * `server.port`. Default: the remote port of the connection's socket.
   * @example { serverPort: 5672 }
   */
  serverPort?: number;
  /**
   * Chooses the low-cardinality destination used in span names (never the `messaging.destination.name`
   * attribute, which always follows the conventions). Return `undefined` to leave the destination
   * out of the name. Default: see {@link defaultSpanDestination} (exchange for publishes to a named
   * exchange, else queue; server-named `amq.gen-*` queues left out).
   * @example { spanDestination: (p) => p.exchange || p.queue }
   */
  spanDestination?: (parts: SpanNameParts) => string | undefined;
}

/** Resolved options: the core instrumentation plus the amqp-specific fields. */
export interface ResolvedOptions {
  readonly instr: Instrumentation;
  readonly settleTimeoutMs: number | undefined;
  readonly settleSpans: boolean;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  readonly spanDestination: ((parts: SpanNameParts) => string | undefined) | undefined;
}

/**
 * Validates the options once, at wrap time. Throws a TypeError naming the option and the value
 * received.
 */
export function resolveOptions(options: AmqpTracingOptions | undefined): ResolvedOptions {
  const o = options ?? {};
  const instr = createInstrumentation(SCOPE_NAME, SCOPE_VERSION, o);
  assertOptionalInteger('settleTimeoutMs', o.settleTimeoutMs, 1);
  assertOptionalBoolean('settleSpans', o.settleSpans);
  if (o.serverAddress !== undefined && (typeof o.serverAddress !== 'string' || o.serverAddress === '')) {
    throw new TypeError(
      `Expected \`serverAddress\` to be a non-empty string, got ${JSON.stringify(o.serverAddress)}`,
    );
  }
  assertOptionalInteger('serverPort', o.serverPort, 1);
  assertOptionalFunction('spanDestination', o.spanDestination);
  return {
    instr,
    settleTimeoutMs: o.settleTimeoutMs,
    settleSpans: o.settleSpans ?? false,
    serverAddress: o.serverAddress,
    serverPort: o.serverPort,
    spanDestination: o.spanDestination,
  };
}
