import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG,
  isThenable,
  messageLink,
  Operation,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import { type Attributes, context as contextApi, type Link, type Span } from '@opentelemetry/api';
import { ATTR_HOPTRACE_RABBITMQ_REQUEUE } from './attributes.ts';
import type { ChannelState } from './channel-state.ts';
import { type Delivery, DeliveryTracker, type Settlement } from './deliveries.ts';
import { consumerDestination, destinationOverride } from './destination.ts';
import { queuedRpcs, rpcAwaiting } from './internals.ts';
import type { AmqpMessage } from './types.ts';

/** What a settle method was called with, decoded from amqplib's positional arguments. */
interface SettleCall {
  how: Settlement;
  /** The delivery tag, or `undefined` for `ackAll` / `nackAll`. */
  tag: number | undefined;
  multiple: boolean;
  requeue: boolean;
  /** hoptrace cannot tell yet that the broker settles anything (see {@link decode}). */
  settlesNone?: boolean;
  /** `settlesNone` until the channel shows the tag was one of its own (see `UnprovenSettles`). */
  unproven?: boolean;
}

/** amqplib's reading of `requeue`: absent means true, anything else by its truthiness (a bit on the wire). */
function requeueOf(value: unknown): boolean {
  return value === undefined ? true : Boolean(value);
}

/**
 * The delivery tag amqplib sends for a message, and what it settles: amqplib encodes a missing tag
 * as 0 (a non-number makes it throw before anything is sent), and the broker reads tag 0 with
 * `multiple` as every unacked delivery (`undefined` here, as for `ackAll`) and alone as no delivery
 * at all (it closes the channel: unknown delivery tag 0).
 */
function tagOf(message: AmqpMessage | undefined, multiple: boolean): number | undefined {
  const tag = message?.fields?.deliveryTag ?? 0;
  return tag === 0 && multiple ? undefined : tag;
}

/**
 * Decodes a settle call exactly as amqplib reads it (`allUpTo` and `requeue` by truthiness). An
 * `allUpTo` settle of a tag the traced channel already settled alone settles nothing: the broker
 * refuses it (unknown delivery tag) and closes the channel, whose close then ends the open spans.
 * One of a tag greater than any delivered on the channel is unproven: a message of another channel
 * (refused the same way), or one got through the raw channel object, which the broker settles with
 * every delivery below it; the channel's next deliveries tell (see `UnprovenSettles`).
 */
function decode(state: ChannelState, method: string, args: unknown[]): SettleCall {
  const call = decodeArgs(method, args);
  if (!call.multiple || call.tag === undefined) return call;
  if (state.wasSettledAlone(call.tag)) call.settlesNone = true;
  else if (call.tag > state.lastDeliveryTag) {
    call.settlesNone = true;
    call.unproven = true;
  }
  return call;
}

function decodeArgs(method: string, args: unknown[]): SettleCall {
  const message = args[0] as AmqpMessage | undefined;
  const multiple = method !== 'reject' && Boolean(args[1]);
  switch (method) {
    case 'ack':
      return { how: 'ack', tag: tagOf(message, multiple), multiple, requeue: false };
    case 'nack':
      // amqplib's defaults: allUpTo false, requeue true.
      return { how: 'nack', tag: tagOf(message, multiple), multiple, requeue: requeueOf(args[2]) };
    case 'reject':
      return { how: 'reject', tag: tagOf(message, false), multiple: false, requeue: requeueOf(args[1]) };
    case 'ackAll':
      return { how: 'ack', tag: undefined, multiple: true, requeue: false };
    default:
      return { how: 'nack', tag: undefined, multiple: true, requeue: requeueOf(args[0]) };
  }
}

/**
 * A traced `ack`, `nack`, `reject`, `ackAll` or `nackAll`: amqplib settles first (if it throws,
 * no process span is ended and the error propagates unchanged), then the settled deliveries'
 * `process` spans end. With `settleSpans`, one `settle` span (CLIENT) per call, started before
 * amqplib's call so it and the duration metric time the real call, linked to the settled process
 * spans. Cost is proportional to the deliveries settled, not to the deliveries open.
 */
export function tracedSettle(state: ChannelState, method: string, args: unknown[]): unknown {
  // Nothing open (unsampled, noAck, no metrics) and no settle spans: amqplib's call alone.
  if (!state.opts.settleSpans && state.deliveries.size === 0) return state.call(method, args);
  const call = decode(state, method, args);
  if (!state.opts.settleSpans) {
    const result = state.call(method, args);
    afterSettle(state, call);
    return result;
  }
  const settled = call.settlesNone ? [] : state.deliveries.peek(call.tag, call.multiple);
  const message = args[0] as AmqpMessage | undefined;
  const fields = message?.fields;
  // A got message has no open delivery: its queue is the one its get named.
  const gotQueue = call.settlesNone ? undefined : state.takeGotQueue(call.tag, call.multiple);
  const queue = settled[0]?.queue ?? gotQueue;
  const nameDestination =
    queue === undefined
      ? undefined
      : state.nameFor(call.how, fields?.exchange ?? '', fields?.routingKey ?? '', queue);
  const links: Link[] = [];
  const { legacyAttributes } = state.opts.instr;
  for (const delivery of settled) {
    const context = delivery.operation.spanContext();
    if (!context) continue;
    // A settle of several deliveries is about none alone: each one's tag goes on its link.
    links.push(
      call.multiple
        ? messageLink(context, { [ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG]: delivery.tag }, legacyAttributes)
        : { context },
    );
  }
  const span: Span | undefined = startClientSpan(
    state.opts.instr,
    state.template(call.how, nameDestination),
    contextApi.active(),
    {
      links,
      destination:
        queue === undefined || call.multiple
          ? undefined
          : destinationOverride(
              consumerDestination(
                fields?.exchange ?? '',
                state.destinationRoutingKey(fields?.exchange ?? '', fields?.routingKey ?? ''),
                queue,
              ),
              nameDestination,
            ),
    },
  );
  if (span?.isRecording()) {
    const attributes: Attributes = {};
    if (call.tag !== undefined && !call.multiple) attributes[ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG] = call.tag;
    // The process spans it ends, one link each: a delivery without a recording span (unsampled,
    // tracked only for its metric) is not counted, so the count does not depend on metrics.
    else attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = links.length;
    if (call.how !== 'ack') attributes[ATTR_HOPTRACE_RABBITMQ_REQUEUE] = call.requeue;
    setSpanAttributes(span, attributes, legacyAttributes);
  }
  const operation = new Operation(state.opts.instr, span, state.metric('settle', call.how, nameDestination));
  return operation.run(
    () => state.call(method, args),
    () => afterSettle(state, call),
  );
}

/** amqplib has made the settle call: the deliveries it settled end, and a tag settled alone is noted. */
function afterSettle(state: ChannelState, call: SettleCall): void {
  if (call.unproven) state.unproven.add(call.tag as number, call.how, call.requeue);
  else if (!call.settlesNone) state.deliveries.settle(call.tag, call.multiple, call.how, call.requeue);
  if (!call.multiple && call.tag !== undefined) state.settledAlone(call.tag);
}

/**
 * A traced `recover()`: amqplib asks the broker to redeliver every unacknowledged message. The open
 * deliveries leave the tracker when the call is made (a delivery that arrives after it is a
 * redelivery, with a span of its own) and their process spans end as `recovered` when the broker
 * answers (the promise fulfils, or the callback API's callback is called without an error); a
 * recover the channel's close answers instead (it was closing, or closed while the request waited
 * behind another) redelivered nothing, and they end as the close ends open deliveries. A callback
 * API callback's arrival also ends, as `recovered`, the deliveries that arrived since the call: the
 * broker sent them before it read the request (it answers before it redelivers), and requeued them.
 * The promise API's answer is read the same way: those deliveries end before the first delivery
 * amqplib reads after the answer, or when the promise fulfils if none came (its reaction runs after
 * amqplib handed over every delivery read with the answer, so it cannot tell them apart alone).
 * The callback API is given a callback of hoptrace's even when the caller passes none (amqplib calls
 * an empty one of its own then), so its answer is read the same way.
 * Deliveries an unproven `allUpTo` settle may have settled stay open: the broker read that settle
 * first, so they were settled (not redelivered) unless it closes the channel; the next delivery or
 * the close ends them (see `UnprovenSettles`).
 */
export function tracedRecover(state: ChannelState, args: unknown[]): unknown {
  const callback = typeof args[0] === 'function' ? (args[0] as (...a: unknown[]) => unknown) : undefined;
  let taken: Delivery[] | undefined;
  let answer: { error: unknown } | undefined;
  // A callback of hoptrace's own even when the caller gave none (amqplib reads any falsy value as
  // none and calls an empty one of its own: the outcome is dropped either way); the promise API
  // ignores it. A truthy value that is not a function is left for amqplib to fail on, as without
  // hoptrace: the answer is then not read, and the open deliveries end at the call.
  const hooked = callback !== undefined || !args[0];
  const recoverArgs = hooked ? args.slice() : args;
  if (hooked)
    recoverArgs[0] = function answered(this: unknown, ...cbArgs: unknown[]): unknown {
      const first = answer === undefined;
      answer ??= { error: cbArgs[0] };
      if (taken && first) {
        // amqplib calls back as it reads the broker's answer, after every delivery before it on the
        // wire: those still open arrived after the call, sent before the broker read the request,
        // which requeued them too (it redelivers only after answering).
        if (succeeded(answer.error))
          taken.push(...state.deliveries.takeRecovered(state.unproven.greatestTag));
        finishRecover(state, taken, answer.error);
      }
      return callback?.apply(this, cbArgs);
    };
  const queuedBefore = queuedRpcs(state.raw);
  const result = state.call('recover', recoverArgs);
  taken = state.deliveries.takeRecovered(state.unproven.greatestTag);
  if (isThenable(result)) {
    // The promise API (which ignores a callback): the caller gets a promise of the same outcome.
    const pending = result instanceof Promise ? result : Promise.resolve(result);
    const deliveries = taken;
    // Deliveries in flight at the call end with the answer (see ChannelState.awaitRecover).
    const waiting = rpcAwaiting(state.raw, queuedBefore);
    if (waiting) state.awaitRecover(waiting);
    return pending.then(
      (value: unknown) => {
        finishRecover(state, deliveries, undefined);
        if (waiting) state.recoversAnswered();
        return value;
      },
      (error: unknown) => {
        if (waiting) state.forgetRecover(waiting);
        finishRecover(state, deliveries, error ?? new Error('recover failed'));
        throw error;
      },
    );
  }
  if (!hooked) DeliveryTracker.endRecovered(taken);
  else if (answer) finishRecover(state, taken, answer.error);
  return result;
}

/** Whether a recover's answer is the broker's (no error), not the channel's close. */
function succeeded(error: unknown): boolean {
  return error === undefined || error === null;
}

/** The broker answered a recover (`error` undefined or null) or the channel's close did. */
function finishRecover(state: ChannelState, deliveries: Delivery[], error: unknown): void {
  if (deliveries.length === 0) return;
  const taken = deliveries.splice(0);
  if (succeeded(error)) {
    DeliveryTracker.endRecovered(taken);
    return;
  }
  for (const { operation } of taken) state.endClosed(operation, 'before the broker answered the recover');
}
