import type { ConsumerTracingOptions } from '@hoptrace/core';
import {
  assertKnownOptions,
  assertOptionalBoolean,
  assertOptionalFunction,
  assertOptionalHost,
  assertOptionalInteger,
  assertOptionalNumber,
  CONSUMER_TRACING_OPTION_KEYS,
  createInstrumentation,
  type Instrumentation,
  MAX_TIMEOUT_MS,
  type OptionKeys,
} from '@hoptrace/core/adapter';
import type { SpanNameParts } from './destination.ts';
import { AMQP_SCOPE } from './scope.ts';

/** Default for {@link AmqpTracingOptions.maxOpenDeliveries}. */
export const DEFAULT_MAX_OPEN_DELIVERIES = 1000;

/** Options of {@link traceChannel} and {@link traceConnection}. */
export interface AmqpTracingOptions extends ConsumerTracingOptions {
  /**
   * Force-end a `process` span whose message is neither acked, nacked nor rejected within this many
   * milliseconds: the span ends with ERROR and `error.type` `settle_timeout` (the message itself is
   * left alone; settling it later is still passed to amqplib). Default: no timeout (the span ends on
   * settle, when the channel or connection closes, or when `maxOpenDeliveries` pushes it out).
   * For `noAck` consumers, whose span ends when the callback returns or its promise settles: a
   * promise still pending after this long ends the span the same way. At most 2147483647 (about
   * 24.8 days, the longest Node.js timers wait).
   * @example { settleTimeoutMs: 60_000 }
   */
  settleTimeoutMs?: number | undefined;
  /**
   * The most un-settled deliveries per channel whose `process` spans stay open. When one more
   * arrives, the oldest span ends (status unset, `hoptrace.rabbitmq.settlement` = `untracked`, event
   * `hoptrace.untracked`); the message itself is untouched and its later settle still goes to
   * amqplib. Bounds memory for consumers that never ack or ack late. Default `1000`; `Infinity` for
   * no bound.
   * @example { maxOpenDeliveries: 10_000 }
   */
  maxOpenDeliveries?: number | undefined;
  /**
   * Also emit a `settle` span (kind CLIENT, named `ack {destination}`, `nack {destination}`,
   * `reject {destination}`) for each `ack`/`nack`/`reject`/`ackAll`/`nackAll` call. Default `false`.
   * @example { settleSpans: true }
   */
  settleSpans?: boolean | undefined;
  /**
   * Record `rabbitmq.destination.routing_key` (the conventions require it; cut to 256 characters,
   * never in span names) and show the routing key in `messaging.destination.name` of publishes and
   * deliveries through a named exchange. Set `false` when routing keys carry personal data: the
   * attribute is then left out and the destination name is `{exchange}` / `{exchange}:{queue}`.
   * Default `true`.
   * @example { captureRoutingKey: false }
   */
  captureRoutingKey?: boolean | undefined;
  /**
   * Record the delivery's consumer tag as `hoptrace.rabbitmq.consumer_tag` on process spans. Off by
   * default: the conventions neither require nor recommend it, and every attribute is paid for by
   * every exported span.
   * @example { captureConsumerTag: true }
   */
  captureConsumerTag?: boolean | undefined;
  /**
   * `server.address`. Default: the remote address of the connection's socket (an IP address). Set
   * it to the host name you connect to when dashboards should show that.
   * @example { serverAddress: 'rabbit-1.internal' }
   */
  serverAddress?: string | undefined;
  /**
   * `server.port`. Default: the remote port of the connection's socket.
   * @example { serverPort: 5672 }
   */
  serverPort?: number | undefined;
  /**
   * Chooses the low-cardinality destination used in span names and metrics (never the
   * `messaging.destination.name` attribute, which always follows the conventions). Return
   * `undefined` (or `''`, `null`) to leave the destination out; a hook that throws or returns
   * another non-string gets the default. Default: see `defaultSpanDestination` (exchange for
   * publishes to a named exchange, else queue; server-named and direct reply-to queues templated).
   * @example { spanDestination: (p) => p.exchange || p.queue }
   */
  spanDestination?: ((parts: SpanNameParts) => string | undefined) | undefined;
}

/** The option names {@link traceChannel} and {@link traceConnection} take (others throw at wrap time). */
export const AMQP_OPTION_KEYS = {
  ...CONSUMER_TRACING_OPTION_KEYS,
  settleTimeoutMs: true,
  maxOpenDeliveries: true,
  settleSpans: true,
  captureRoutingKey: true,
  captureConsumerTag: true,
  serverAddress: true,
  serverPort: true,
  spanDestination: true,
} as const satisfies OptionKeys<AmqpTracingOptions>;

/** Resolved options: the core instrumentation plus the amqp-specific fields. */
export interface ResolvedOptions {
  readonly instr: Instrumentation;
  readonly settleTimeoutMs: number | undefined;
  readonly maxOpenDeliveries: number;
  readonly settleSpans: boolean;
  readonly captureRoutingKey: boolean;
  readonly captureConsumerTag: boolean;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  readonly spanDestination: ((parts: SpanNameParts) => string | undefined) | undefined;
}

/**
 * Validates the options once, at wrap time. Throws a TypeError naming the option and the value
 * received.
 */
export function resolveOptions(
  options: AmqpTracingOptions | undefined,
  api: 'traceChannel' | 'traceConnection',
): ResolvedOptions {
  const instr = createInstrumentation(AMQP_SCOPE, options);
  assertKnownOptions(api, options, AMQP_OPTION_KEYS);
  const o = options ?? {};
  assertOptionalInteger('settleTimeoutMs', o.settleTimeoutMs, 1, MAX_TIMEOUT_MS);
  if (o.maxOpenDeliveries !== Number.POSITIVE_INFINITY)
    assertOptionalInteger('maxOpenDeliveries', o.maxOpenDeliveries, 1);
  assertOptionalNumber('maxOpenDeliveries', o.maxOpenDeliveries, 1);
  assertOptionalBoolean('settleSpans', o.settleSpans);
  assertOptionalBoolean('captureRoutingKey', o.captureRoutingKey);
  assertOptionalBoolean('captureConsumerTag', o.captureConsumerTag);
  assertOptionalHost('serverAddress', o.serverAddress);
  assertOptionalInteger('serverPort', o.serverPort, 1, 65_535);
  assertOptionalFunction('spanDestination', o.spanDestination);
  return {
    instr,
    settleTimeoutMs: o.settleTimeoutMs,
    maxOpenDeliveries: o.maxOpenDeliveries ?? DEFAULT_MAX_OPEN_DELIVERIES,
    settleSpans: o.settleSpans ?? false,
    captureRoutingKey: o.captureRoutingKey ?? true,
    captureConsumerTag: o.captureConsumerTag ?? false,
    serverAddress: o.serverAddress,
    serverPort: o.serverPort,
    spanDestination: o.spanDestination,
  };
}
