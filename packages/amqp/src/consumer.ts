import {
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG,
  errorTypeOf,
  extractContext,
  MESSAGING_SYSTEM,
  runInSpan,
  SpanHandle,
  startConsumerSpan,
} from '@hoptrace/core';
import { type Attributes, ROOT_CONTEXT } from '@opentelemetry/api';
import {
  ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG,
  ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT,
  ATTR_HOPTRACE_RABBITMQ_REDELIVERED,
  deathCount,
} from './attributes.ts';
import type { ChannelState } from './channel-state.ts';
import { Delivery } from './deliveries.ts';
import { consumerDestination } from './destination.ts';
import { messageAttributes } from './producer.ts';
import type { AmqpMessage, AnyFunction } from './types.ts';

/**
 * Attributes of one delivered message (consume or get): routing key, message and correlation ids,
 * delivery tag, redelivered flag, dead-letter count, body size (opt-in), server.
 */
export function deliveryAttributes(state: ChannelState, message: AmqpMessage): Attributes {
  const { fields, properties } = message;
  const attributes: Attributes = {
    ...state.server,
    [ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG]: fields.deliveryTag,
  };
  messageAttributes(attributes, fields.routingKey ?? '', properties.messageId, properties.correlationId);
  if (fields.redelivered === true) attributes[ATTR_HOPTRACE_RABBITMQ_REDELIVERED] = true;
  const headers = properties.headers;
  if (headers) {
    const deaths = deathCount(headers['x-death']);
    if (deaths !== undefined) attributes[ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT] = deaths;
  }
  if (state.opts.instr.captureBodySize && typeof message.content?.length === 'number') {
    attributes[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = message.content.length;
  }
  return attributes;
}

/**
 * A traced `consume(queue, onMessage, options?, cb?)`: amqplib gets a callback that starts a
 * `process` span per delivery (under the relation policy), runs the user's callback with it active,
 * and leaves it open until the message is settled on this channel (or, with `noAck`, ends it when
 * the callback returns or its promise settles). The `null` amqplib passes on a server-side cancel is
 * handed through untraced. Everything else is passed to amqplib unchanged.
 */
export function tracedConsume(state: ChannelState, args: unknown[]): unknown {
  const queue = String(args[0] ?? '');
  const onMessage = args[1];
  if (typeof onMessage !== 'function') return state.call('consume', args);
  const noAck = (args[2] as { noAck?: unknown } | undefined)?.noAck === true;
  const consumeArgs = args.slice();
  consumeArgs[1] = (message: AmqpMessage | null): unknown =>
    message === null || typeof message !== 'object'
      ? (onMessage as AnyFunction)(message)
      : processDelivery(state, queue, noAck, message, onMessage as AnyFunction);
  return state.call('consume', consumeArgs);
}

function processDelivery(
  state: ChannelState,
  queue: string,
  noAck: boolean,
  message: AmqpMessage,
  onMessage: AnyFunction,
): unknown {
  const { instr } = state.opts;
  const { fields } = message;
  const exchange = fields.exchange ?? '';
  const routingKey = fields.routingKey ?? '';
  const attributes = deliveryAttributes(state, message);
  if (typeof fields.consumerTag === 'string')
    attributes[ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG] = fields.consumerTag;
  const nameDestination = state.nameFor('process', exchange, routingKey, queue);
  const creation = extractContext(message.properties?.headers, ROOT_CONTEXT);
  const started = startConsumerSpan(instr, creation, {
    system: MESSAGING_SYSTEM.rabbitmq,
    operationType: 'process',
    operationName: 'process',
    destination: consumerDestination(exchange, routingKey, queue),
    nameDestination,
    attributes,
  });
  const delivery = new Delivery(
    new SpanHandle(started.span),
    performance.now(),
    state.metricAttributes('process', nameDestination),
    queue,
  );
  // Tracked before the handler runs: it may ack synchronously.
  if (!noAck) state.deliveries.track(fields.deliveryTag, delivery);

  let result: unknown;
  try {
    result = runInSpan(delivery.handle, () => onMessage(message), { context: started.context, end: false });
  } catch (error) {
    delivery.errorType = errorTypeOf(error);
    if (noAck) state.deliveries.finish(delivery);
    throw error;
  }
  if (
    result !== null &&
    typeof result === 'object' &&
    typeof (result as PromiseLike<unknown>).then === 'function'
  ) {
    // The returned chain rejects with the same error, so an unhandled rejection stays one.
    return (result as PromiseLike<unknown>).then(
      (value) => {
        if (noAck) state.deliveries.finish(delivery);
        return value;
      },
      (error: unknown) => {
        delivery.errorType = errorTypeOf(error);
        if (noAck) state.deliveries.finish(delivery);
        throw error;
      },
    );
  }
  if (noAck) state.deliveries.finish(delivery);
  return result;
}
