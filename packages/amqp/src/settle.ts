import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG,
  MESSAGING_SYSTEM,
  startMessagingSpan,
} from '@hoptrace/core';
import type { Attributes, Link } from '@opentelemetry/api';
import { ATTR_HOPTRACE_RABBITMQ_REQUEUE } from './attributes.ts';
import type { ChannelState } from './channel-state.ts';
import type { Delivery, Settlement } from './deliveries.ts';
import { consumerDestination } from './destination.ts';
import type { AmqpMessage } from './types.ts';

/** What a settle method was called with, decoded from amqplib's positional arguments. */
interface SettleCall {
  how: Settlement;
  /** The delivery tag, or `undefined` for `ackAll` / `nackAll`. */
  tag: number | undefined;
  multiple: boolean;
  requeue: boolean;
}

function decode(method: string, args: unknown[]): SettleCall {
  const message = args[0] as AmqpMessage | undefined;
  const tag = message?.fields?.deliveryTag;
  switch (method) {
    case 'ack':
      return { how: 'ack', tag, multiple: args[1] === true, requeue: false };
    case 'nack':
      // amqplib's defaults: allUpTo false, requeue true.
      return { how: 'nack', tag, multiple: args[1] === true, requeue: args[2] !== false };
    case 'reject':
      return { how: 'reject', tag, multiple: false, requeue: args[1] !== false };
    case 'ackAll':
      return { how: 'ack', tag: undefined, multiple: true, requeue: false };
    default:
      return { how: 'nack', tag: undefined, multiple: true, requeue: args[0] !== false };
  }
}

/**
 * A traced `ack`, `nack`, `reject`, `ackAll` or `nackAll`: amqplib settles first (if it throws,
 * nothing is ended and the error propagates), then the settled deliveries' `process` spans end.
 * With `settleSpans`, one `settle` span (CLIENT) per call, linked to the settled process spans.
 */
export function tracedSettle(state: ChannelState, method: string, args: unknown[]): unknown {
  const result = state.call(method, args);
  const call = decode(method, args);
  const collect: Delivery[] | undefined = state.opts.settleSpans ? [] : undefined;
  const startMs = state.opts.settleSpans ? performance.now() : 0;
  if (call.tag === undefined) state.deliveries.settleAll(call.how, call.requeue, collect);
  else state.deliveries.settle(call.tag, call.multiple, call.how, call.requeue, collect);
  if (collect) settleSpan(state, call, collect, startMs, args[0] as AmqpMessage | undefined);
  return result;
}

function settleSpan(
  state: ChannelState,
  call: SettleCall,
  settled: Delivery[],
  startMs: number,
  message: AmqpMessage | undefined,
): void {
  const { instr } = state.opts;
  const fields = message?.fields;
  const queue = settled[0]?.queue;
  const nameDestination =
    queue === undefined
      ? undefined
      : state.nameFor(call.how, fields?.exchange ?? '', fields?.routingKey ?? '', queue);
  const attributes: Attributes = { ...state.server };
  if (call.tag !== undefined && !call.multiple) attributes[ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG] = call.tag;
  else attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = settled.length;
  if (call.how !== 'ack') attributes[ATTR_HOPTRACE_RABBITMQ_REQUEUE] = call.requeue;
  const links: Link[] = settled.map((d) => ({ context: d.handle.span.spanContext() }));
  const span = startMessagingSpan(instr.tracer, {
    system: MESSAGING_SYSTEM.rabbitmq,
    operationType: 'settle',
    operationName: call.how,
    destination:
      queue === undefined || call.multiple
        ? undefined
        : consumerDestination(fields?.exchange ?? '', fields?.routingKey ?? '', queue),
    nameDestination,
    attributes,
    links,
    legacyAttributes: instr.legacyAttributes,
  });
  span.end();
  instr.metrics.operationDuration.record(
    (performance.now() - startMs) / 1000,
    state.metricAttributes(call.how, nameDestination),
  );
}
