import {
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_SYSTEM_NAME,
  MESSAGING_SYSTEM,
} from '@hoptrace/core';
import type { Attributes } from '@opentelemetry/api';
import { ERROR_CHANNEL_CLOSED, ERROR_CONNECTION_CLOSED } from './attributes.ts';
import { DeliveryTracker } from './deliveries.ts';
import { defaultSpanDestination } from './destination.ts';
import type { ResolvedOptions } from './options.ts';
import { connectionClosing, serverAttributes } from './server.ts';
import type { AnyFunction, TraceableChannel } from './types.ts';

/** Most distinct metric attribute sets cached per channel. */
const MAX_CACHED_METRIC_ATTRIBUTES = 256;

/** The raw channel's methods, called with the raw channel as `this`. */
export type RawChannel = TraceableChannel & Record<string, unknown>;

/**
 * Everything hoptrace keeps per traced channel: the raw channel, resolved options, server
 * attributes and the open deliveries. Listens to the channel's `close` event only (never `error`,
 * whose absence of listeners amqplib's behaviour depends on).
 */
export class ChannelState {
  readonly raw: RawChannel;
  readonly opts: ResolvedOptions;
  /** A ConfirmChannel (both APIs have `waitForConfirms`; plain channels do not). */
  readonly confirm: boolean;
  /** `server.address` / `server.port`, read once. */
  readonly server: Attributes;
  readonly deliveries: DeliveryTracker;
  /** operation name -> span-name destination (`undefined` for none) -> attributes. */
  readonly #metricAttributes = new Map<string, Map<string | undefined, Attributes>>();
  #cachedMetricAttributes = 0;

  constructor(raw: RawChannel, opts: ResolvedOptions) {
    this.raw = raw;
    this.opts = opts;
    this.confirm = typeof raw.waitForConfirms === 'function';
    this.server = serverAttributes(raw, opts.serverAddress, opts.serverPort);
    this.deliveries = new DeliveryTracker(opts.instr.metrics, opts.settleTimeoutMs);
    raw.on('close', () => {
      // amqplib closes the channels of a dropping connection first and marks the connection
      // right after, in the same tick: look once the current task is done.
      queueMicrotask(() => {
        if (connectionClosing(raw)) {
          this.deliveries.abortAll(
            ERROR_CONNECTION_CLOSED,
            'connection closed before the message was settled',
          );
        } else {
          this.deliveries.abortAll(ERROR_CHANNEL_CLOSED, 'channel closed before the message was settled');
        }
      });
    });
  }

  /** Calls a raw method with the raw channel as `this`. */
  call(method: string, args: unknown[]): unknown {
    return (this.raw[method] as AnyFunction).apply(this.raw, args);
  }

  /** The low-cardinality destination for a span name (see {@link defaultSpanDestination}). */
  nameFor(
    operation: string,
    exchange: string,
    routingKey: string,
    queue: string | undefined,
  ): string | undefined {
    const parts = { operation, exchange, routingKey, queue };
    const custom = this.opts.spanDestination;
    if (!custom) return defaultSpanDestination(parts);
    try {
      const name = custom(parts);
      return typeof name === 'string' && name !== '' ? name : undefined;
    } catch {
      return defaultSpanDestination(parts);
    }
  }

  /**
   * Metric attributes for an operation: system, operation name, destination when low-cardinality.
   * Cached per (operation, destination) and shared: callers copy before adding `error.type`.
   */
  metricAttributes(operationName: string, nameDestination: string | undefined): Readonly<Attributes> {
    // Two lookups, no key string built per message.
    let byDestination = this.#metricAttributes.get(operationName);
    const cached = byDestination?.get(nameDestination);
    if (cached) return cached;
    const attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM_NAME]: MESSAGING_SYSTEM.rabbitmq,
      [ATTR_MESSAGING_OPERATION_NAME]: operationName,
    };
    if (nameDestination !== undefined) attributes[ATTR_MESSAGING_DESTINATION_NAME] = nameDestination;
    // Span-name destinations are low-cardinality by design; the cap guards a custom rule that is not.
    if (this.#cachedMetricAttributes < MAX_CACHED_METRIC_ATTRIBUTES) {
      if (!byDestination) {
        byDestination = new Map();
        this.#metricAttributes.set(operationName, byDestination);
      }
      byDestination.set(nameDestination, attributes);
      this.#cachedMetricAttributes++;
    }
    return attributes;
  }
}
