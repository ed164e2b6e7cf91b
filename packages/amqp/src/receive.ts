import {
  ATTR_MESSAGING_DESTINATION_NAME,
  capValue,
  isThenable,
  MAX_ERROR_MESSAGE_LENGTH,
  Operation,
  readMessageContext,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import { type Attributes, context as contextApi, type Span } from '@opentelemetry/api';
import type { ChannelState } from './channel-state.ts';
import { anonymousAttributes, consumerDestination, isAnonymous } from './destination.ts';
import { deliveryAttributes } from './message-attributes.ts';
import type { AmqpMessage } from './types.ts';

/** `addLink` exists on spans from API 1.9; older SDKs simply get no link. */
type LinkableSpan = Span & { addLink?: (link: { context: ReturnType<Span['spanContext']> }) => unknown };

/**
 * A traced `get(queue, options?)` (promise API) or `get(queue, options, cb)` (callback API): a
 * `receive` span (CLIENT), a child of the caller's context (a pull happens where the caller is),
 * from the call until amqplib answers. With a message, the span gets its attributes and a link to
 * its creation context; on an empty queue (`false`) it ends without them (a server-named queue is
 * marked anonymous either way). Settling a got message
 * later does not touch this span. The answer is passed through unchanged.
 */
export function tracedGet(state: ChannelState, args: unknown[]): unknown {
  const queue = typeof args[0] === 'string' ? args[0] : '';
  const { instr } = state.opts;
  const nameDestination = state.nameFor('receive', '', '', queue);
  const span = startClientSpan(
    instr,
    state.template('receive', nameDestination),
    contextApi.active(),
    queue === '' || queue === nameDestination ? undefined : { destination: queue }, // the template names it
  );
  // A property of the queue, not of a message: an empty get has it too.
  if (isAnonymous(queue) && span?.isRecording()) {
    const anonymous: Attributes = {};
    anonymousAttributes(anonymous, queue);
    span.setAttributes(anonymous);
  }
  const operation = new Operation(instr, span, state.metric('receive', 'receive', nameDestination, 0));
  // amqplib reads `noAck` by its truthiness
  const noAck = Boolean((args[1] as { noAck?: unknown } | null | undefined)?.noAck);
  const received = (message: unknown): void => {
    if (!message || typeof message !== 'object') return;
    const tag = (message as AmqpMessage).fields?.deliveryTag;
    state.delivered(tag);
    // Got settled: an `allUpTo` settle naming it later settles nothing.
    if (noAck && typeof tag === 'number') state.settledAlone(tag);
    else if (typeof tag === 'number') state.gotFrom(tag, queue);
    operation.setCount(1);
    if (span?.isRecording()) describeMessage(state, span, queue, message as AmqpMessage);
  };
  // The callback API's callback is the third argument, as amqplib reads it: a function anywhere else
  // (`get(queue, cb)`) is taken as options by amqplib and never called, so it is left alone.
  const callbackIndex = 2;
  const callback = args[callbackIndex];
  if (typeof callback === 'function') {
    const getArgs = args.slice();
    const settled = operation.callback(callback);
    getArgs[callbackIndex] = function answered(this: unknown, ...cbArgs: unknown[]): unknown {
      state.receives.delete(operation);
      const closed = closeAnswer(cbArgs[0]);
      if (closed === undefined) {
        if (cbArgs[0] === null || cbArgs[0] === undefined) received(cbArgs[1]);
        return settled.apply(this, cbArgs);
      }
      // amqplib 2.x calls back while closing the channel, before its connection says whether it
      // closed too: the span ends as the close ends what is left open.
      state.endClosed(operation, closed);
      return (callback as (...a: unknown[]) => unknown).apply(this, cbArgs);
    };
    // Until amqplib answers, or the channel closes (amqplib 0.10 never answers a get it closed on).
    state.receives.add(operation);
    let result: unknown;
    try {
      result = state.call('get', getArgs);
    } catch (error) {
      state.receives.delete(operation);
      operation.fail(error);
      throw error;
    }
    if (!isThenable(result)) return result;
    // The promise API takes no callback (a third argument is ignored): its promise answers.
    state.receives.delete(operation);
    return operation.run(() => noteCloseOf(state, operation, result), received);
  }
  return operation.run(
    () => noteCloseOf(state, operation, state.call('get', args)),
    (message) => received(message),
  );
}

/**
 * A promise get's `result`, as it is: when it rejects because its channel closed, the operation is
 * marked as the close marks what it leaves open, before `run`'s own reaction (registered after this
 * one) sees the rejection and passes it on unchanged. A reaction runs once amqplib is done closing.
 */
function noteCloseOf<T>(state: ChannelState, operation: Operation, result: T): T {
  if (result instanceof Promise)
    result.then(undefined, (error: unknown) => {
      // closeAnswer never throws: nothing here may become an unhandled rejection.
      const closed = closeAnswer(error);
      if (closed !== undefined) state.noteClosed(operation, closed);
    });
  return result;
}

/** What a get's span says of a close that answered it while it waited. */
const ANSWERED = 'before the broker answered the get';

/** The broker's reply to a request that closed the channel (AMQP channel.close). */
interface CloseReply {
  code?: unknown;
  classId?: unknown;
  methodId?: unknown;
  fields?: { replyCode?: unknown; replyText?: unknown };
}

/**
 * What a get's span says of the channel close that answered it (after "channel closed"), or
 * `undefined` when the get failed otherwise. Three answers are a close: amqplib's own error for a get
 * still waiting when its channel ended (the promise API rejects with it; 2.x's callback API calls
 * back with it; 0.10's never calls back); and the broker closing the channel on the get itself (404,
 * no such queue) or on the request before it, which amqplib 2.x hands over as an Error carrying the
 * close's `code`, `classId` and `methodId` (both APIs) and 0.10's promise API as the close frame
 * itself (its callback API never calls back). Either way the channel is gone, as for any close.
 */
function closeAnswer(error: unknown): string | undefined {
  try {
    return closeAnswerOf(error);
  } catch {
    return undefined; // a value whose reads throw (a layer wrapping amqplib) is no close hoptrace knows
  }
}

function closeAnswerOf(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const reply = error as CloseReply;
  if (error instanceof Error) {
    if (typeof error.message !== 'string') return undefined;
    if (error.message === 'Channel ended, no reply will be forthcoming') return ANSWERED;
    if (
      typeof reply.code === 'number' &&
      typeof reply.classId === 'number' &&
      typeof reply.methodId === 'number'
    )
      return `by the broker: ${capValue(error.message, MAX_ERROR_MESSAGE_LENGTH)}`;
    return undefined;
  }
  const fields = reply.fields;
  if (typeof fields?.replyCode !== 'number' || typeof fields.replyText !== 'string') return undefined;
  return `by the broker: ${fields.replyCode} ${capValue(fields.replyText, MAX_ERROR_MESSAGE_LENGTH)}`;
}

function describeMessage(state: ChannelState, span: LinkableSpan, queue: string, message: AmqpMessage): void {
  const fields = message.fields;
  const attributes = deliveryAttributes(state.opts, message, queue);
  const exchange = fields?.exchange ?? '';
  attributes[ATTR_MESSAGING_DESTINATION_NAME] = consumerDestination(
    exchange,
    state.destinationRoutingKey(exchange, fields?.routingKey ?? ''),
    queue,
  );
  setSpanAttributes(span, attributes, state.opts.instr.legacyAttributes);
  const creation = readMessageContext(message.properties?.headers).spanContext;
  if (creation && typeof span.addLink === 'function') span.addLink({ context: creation });
}
