import {
  isThenable,
  Operation,
  setSpanAttributes,
  startDeliverySpan,
  timeInQueueSeconds,
} from '@hoptrace/core/adapter';
import { type Attributes, context as contextApi, ROOT_CONTEXT } from '@opentelemetry/api';
import { ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG, ERROR_SETTLE_TIMEOUT } from './attributes.ts';
import type { ChannelState } from './channel-state.ts';
import { Delivery } from './deliveries.ts';
import { consumerDestination, destinationOverride } from './destination.ts';
import { deliveryAttributes } from './message-attributes.ts';
import type { AmqpMessage, AnyFunction } from './types.ts';

/**
 * A traced `consume(queue, onMessage, options?, cb?)`: amqplib gets a callback that starts a
 * `process` span per delivery (under the relation policy), runs the user's callback with it active,
 * and leaves it open until the message is settled on this channel (or, with `noAck`, ends it when
 * the callback returns or its promise settles). The `null` amqplib passes on a server-side cancel is
 * handed through untraced. Everything else is passed to amqplib unchanged.
 */
export function tracedConsume(state: ChannelState, args: unknown[]): unknown {
  const onMessage = args[1];
  if (typeof onMessage !== 'function') return state.call('consume', args);
  const consumer = new Consumer(
    state,
    typeof args[0] === 'string' ? args[0] : '',
    // amqplib reads `noAck` by its truthiness
    Boolean((args[2] as { noAck?: unknown } | undefined)?.noAck),
    onMessage as AnyFunction,
  );
  const consumeArgs = args.slice();
  consumeArgs[1] = (message: AmqpMessage | null): unknown =>
    message === null || typeof message !== 'object'
      ? (onMessage as AnyFunction)(message)
      : processDelivery(consumer, message);
  return state.call('consume', consumeArgs);
}

/**
 * One traced `consume` call. Its `invoke` (made once per consumer, not per message) calls the
 * user's callback with the delivery being processed, so the per-message path allocates no closure.
 */
class Consumer {
  readonly state: ChannelState;
  readonly queue: string;
  readonly noAck: boolean;
  readonly onMessage: AnyFunction;
  /** The delivery `invoke` hands over; set just before it runs (it reads it at once). */
  current: AmqpMessage | undefined = undefined;
  /** A thenable other than a native promise the callback returned, handed back to amqplib as it is. */
  returned: unknown = undefined;
  readonly invoke: () => unknown;

  constructor(state: ChannelState, queue: string, noAck: boolean, onMessage: AnyFunction) {
    this.state = state;
    this.queue = queue;
    this.noAck = noAck;
    this.onMessage = onMessage;
    this.invoke = () => {
      const message = this.current;
      this.current = undefined; // the consumer keeps no message alive
      const result = onMessage(message); // called as amqplib calls it: no `this`
      if (result instanceof Promise || !isThenable(result)) return result;
      // amqplib never calls `then` on what the callback returns, so neither does hoptrace: another
      // promise library reports its rejections its own way, and a lazy thenable (a query builder)
      // runs only when `then` is called. The callback counts as returned.
      this.returned = result;
      return undefined;
    };
  }
}

function processDelivery(consumer: Consumer, message: AmqpMessage): unknown {
  const { state, queue, noAck, onMessage } = consumer;
  const { opts } = state;
  const { instr } = opts;
  const { fields, properties } = message;
  // Delivered settled: an `allUpTo` settle naming it later settles nothing.
  if (noAck) state.settledAlone(fields.deliveryTag);
  const exchange = fields.exchange ?? '';
  const routingKey = fields.routingKey ?? '';
  const headers = properties?.headers;
  const nameDestination = state.nameFor('process', exchange, routingKey, queue);
  // Push delivery: the context where consume() was called must not leak into every message.
  const {
    span,
    context: handlerContext,
    attributes,
  } = startDeliverySpan(
    instr,
    state.template('process', nameDestination),
    headers,
    ROOT_CONTEXT,
    destinationOverride(
      consumerDestination(exchange, state.destinationRoutingKey(exchange, routingKey), queue),
      nameDestination,
    ),
  );
  if (span && attributes) {
    deliveryAttributes(opts, message, queue, attributes);
    if (opts.captureConsumerTag && typeof fields.consumerTag === 'string')
      attributes[ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG] = fields.consumerTag;
    setSpanAttributes(span, attributes, instr.legacyAttributes);
  }
  const recording = span?.isRecording() === true;
  const metric = state.metric('process', 'process', nameDestination);
  // Nothing to end (unsampled fast path or a span that does not record, and no metrics): run the
  // handler in its context and keep nothing.
  if (!recording && metric === undefined)
    return contextApi.with(handlerContext, onMessage, undefined, message);
  // A redelivery is not the start of the message's processing (BullMQ records a job's first start only).
  if (metric && fields.redelivered !== true)
    recordTimeInQueue(state, metric.attributes, properties?.timestamp);
  const operation = new Operation(instr, span, metric);
  // Tracked before the handler runs: it may ack synchronously. With acks, the span ends on settle;
  // a handler failure is recorded now and kept.
  if (!noAck) state.deliveries.track(new Delivery(operation, queue, fields.deliveryTag, fields));
  consumer.current = message;
  // noAck: the delivery is settled when the callback returns or its promise settles; one that never
  // does ends its span after settleTimeoutMs, as an unsettled acked delivery would.
  if (noAck && opts.settleTimeoutMs !== undefined)
    operation.expireAfter(
      opts.settleTimeoutMs,
      ERROR_SETTLE_TIMEOUT,
      `consume callback not settled within settleTimeoutMs (${opts.settleTimeoutMs} ms)`,
    );
  const result = contextApi.with(handlerContext, operation.run, operation, consumer.invoke, undefined, noAck);
  const returned = consumer.returned;
  if (returned === undefined) return result;
  consumer.returned = undefined;
  return returned;
}

/** 10^11 seconds is the year 5138: a larger `timestamp` is in milliseconds. */
const MAX_SECONDS = 1e11;

/**
 * Records `hoptrace.messaging.time_in_queue` from the AMQP `timestamp` property (seconds since the
 * epoch, as the publisher set it; milliseconds are recognized) of a first delivery, when present
 * and plausible (core's `timeInQueueSeconds`: a publisher clock up to a minute ahead records 0; a
 * time further ahead or more than 30 days old records nothing).
 */
function recordTimeInQueue(state: ChannelState, attributes: Attributes, timestamp: unknown): void {
  const metrics = state.opts.instr.metrics;
  if (!metrics || typeof timestamp !== 'number') return;
  // AMQP timestamps are seconds; a value past MAX_SECONDS was set in milliseconds (Date.now()).
  const waited = timeInQueueSeconds(timestamp > MAX_SECONDS ? timestamp : timestamp * 1000);
  if (waited !== undefined) metrics.timeInQueue.record(waited, attributes);
}
