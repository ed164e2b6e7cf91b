import {
  MetricAttributeCache,
  type MetricOperation,
  type OperationMetric,
  type SpanOperation,
  SpanTemplates,
} from '@hoptrace/core/adapter';
import { type Attributes, SpanKind } from '@opentelemetry/api';
import { ERROR_CHANNEL_CLOSED, ERROR_CONNECTION_CLOSED } from './attributes.ts';
import { DeliveryTracker } from './deliveries.ts';
import { defaultSpanDestination } from './destination.ts';
import type { ResolvedOptions } from './options.ts';
import { connectionClosing, serverAttributes } from './server.ts';
import type { AnyFunction, TraceableChannel } from './types.ts';

/** The raw channel's methods, called with the raw channel as `this`. */
export type RawChannel = TraceableChannel & Record<string, unknown>;

const OPERATIONS = {
  send: { type: 'send', name: 'send' },
  sendClient: { type: 'send', name: 'send', kind: SpanKind.CLIENT },
  process: { type: 'process', name: 'process' },
  receive: { type: 'receive', name: 'receive' },
  ack: { type: 'settle', name: 'ack' },
  nack: { type: 'settle', name: 'nack' },
  reject: { type: 'settle', name: 'reject' },
} as const satisfies Record<string, SpanOperation>;

/** Which operation a span template is for. */
export type AmqpOperation = keyof typeof OPERATIONS;

/**
 * Everything hoptrace keeps per traced channel: the raw channel, resolved options, span templates
 * and metric attributes (both bounded), and the open deliveries. Listens to the channel's `close`
 * event only (never `error`, whose absence of listeners amqplib's behaviour depends on).
 */
export class ChannelState {
  readonly raw: RawChannel;
  readonly opts: ResolvedOptions;
  /** A ConfirmChannel (both APIs have `waitForConfirms`; plain channels do not). */
  readonly confirm: boolean;
  readonly deliveries: DeliveryTracker;
  readonly metrics: MetricAttributeCache;
  readonly #templates = new Map<AmqpOperation, SpanTemplates>();
  readonly #server: Attributes;

  constructor(raw: RawChannel, opts: ResolvedOptions) {
    this.raw = raw;
    this.opts = opts;
    this.confirm = typeof raw.waitForConfirms === 'function';
    this.#server = serverAttributes(raw, opts.serverAddress, opts.serverPort);
    this.deliveries = new DeliveryTracker(opts.settleTimeoutMs, opts.maxOpenDeliveries);
    this.metrics = new MetricAttributeCache(opts.instr.system);
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

  /** The span templates of an operation (keyed by span-name destination; the destination attribute is per span). */
  templates(operation: AmqpOperation): SpanTemplates {
    let templates = this.#templates.get(operation);
    if (!templates) {
      templates = new SpanTemplates(
        this.opts.instr.system,
        OPERATIONS[operation],
        this.#server,
        this.opts.instr.legacyAttributes,
      );
      this.#templates.set(operation, templates);
    }
    return templates;
  }

  /** The low-cardinality destination for a span name and metrics (see {@link defaultSpanDestination}). */
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

  /** The metric of an operation on a low-cardinality destination, or undefined without metrics. */
  metric(
    operation: MetricOperation,
    operationName: string,
    nameDestination: string | undefined,
    count = 1,
  ): OperationMetric | undefined {
    if (!this.opts.instr.metrics) return undefined;
    return {
      operation,
      cache: this.metrics,
      attributes: this.metrics.get(operationName, nameDestination),
      count,
    };
  }
}
