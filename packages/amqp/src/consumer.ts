import { readFailureLineage } from '@hoptrace/core';
import {
  lineageAttributes,
  lineageLinks,
  Operation,
  readMessageContext,
  setSpanAttributes,
  startConsumerSpan,
  withFailureLineage,
} from '@hoptrace/core/adapter';
import { context as contextApi, ROOT_CONTEXT } from '@opentelemetry/api';
import { ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG } from './attributes.ts';
import type { ChannelState } from './channel-state.ts';
import { Delivery } from './deliveries.ts';
import { consumerDestination } from './destination.ts';
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
  const { opts } = state;
  const { instr } = opts;
  const { fields, properties } = message;
  const exchange = fields.exchange ?? '';
  const routingKey = fields.routingKey ?? '';
  const headers = properties?.headers;
  const nameDestination = state.nameFor('process', exchange, routingKey, queue);
  const lineage = readFailureLineage(headers);
  // Push delivery: the context where consume() was called must not leak into every message.
  const { span, context } = startConsumerSpan(
    instr,
    state.templates('process').get(nameDestination, null),
    readMessageContext(headers),
    ROOT_CONTEXT,
    lineageLinks(lineage),
    consumerDestination(exchange, routingKey, queue),
  );
  if (span?.isRecording()) {
    const attributes = deliveryAttributes(opts, message);
    if (typeof fields.consumerTag === 'string')
      attributes[ATTR_HOPTRACE_RABBITMQ_CONSUMER_TAG] = fields.consumerTag;
    if (lineage) Object.assign(attributes, lineageAttributes(lineage));
    setSpanAttributes(span, attributes, instr.legacyAttributes);
  }
  recordTimeInQueue(state, nameDestination, properties?.timestamp);
  const operation = new Operation(instr, span, state.metric('process', 'process', nameDestination));
  const delivery = new Delivery(operation, queue);
  // Tracked before the handler runs: it may ack synchronously.
  if (!noAck) state.deliveries.track(fields.deliveryTag, delivery);
  // With acks, the span ends on settle; a handler failure is recorded now and kept.
  return contextApi.with(withFailureLineage(context, lineage), () =>
    operation.run(() => onMessage(message), undefined, noAck),
  );
}

/** Records the time since the AMQP `timestamp` property (seconds since the epoch), when present and metrics are on. */
function recordTimeInQueue(
  state: ChannelState,
  nameDestination: string | undefined,
  timestamp: unknown,
): void {
  const metrics = state.opts.instr.metrics;
  if (!metrics || typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp <= 0) return;
  const waited = Date.now() / 1000 - timestamp;
  metrics.timeInQueue.record(Math.max(0, waited), state.metrics.get('process', nameDestination));
}
