import {
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  callerSpanContext,
  Operation,
  sendHeaders,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import { type Attributes, context as contextApi, type Span, trace } from '@opentelemetry/api';
import { ERROR_NACKED } from './attributes.ts';
import type { ChannelState } from './channel-state.ts';
import { destinationOverride, producerDestination } from './destination.ts';
import { messageAttributes } from './message-attributes.ts';
import { encodedHeaders, withHeaders } from './publish-options.ts';
import type { PublishOptions } from './types.ts';

/** `error.type` for a confirm callback's error: amqplib reports a nack as a plain Error. */
function confirmErrorType(error: unknown): string | undefined {
  return error instanceof Error && error.message === 'message nacked' ? ERROR_NACKED : undefined;
}

/** The error amqplib calls back the confirm callbacks still waiting when their channel closes with. */
function isCloseError(error: unknown): boolean {
  return error instanceof Error && error.message === 'channel closed';
}

/**
 * A traced `publish` or `sendToQueue`: starts a `send` span, hands amqplib a copy of the options
 * whose headers carry the span's context (a context the caller injected is kept, and the span then
 * becomes a CLIENT span linked to it), and ends the span when `publish` returns (plain channel) or
 * when the broker confirms (confirm channel; ERROR when it nacks). amqplib's return value is passed
 * through untouched; the caller's options and headers objects are never mutated.
 *
 * @param method - `publish` (args: exchange, routing key, content, options, cb?) or `sendToQueue`
 * (args: queue, content, options, cb?).
 */
export function tracedPublish(
  state: ChannelState,
  method: 'publish' | 'sendToQueue',
  args: unknown[],
): unknown {
  const toQueue = method === 'sendToQueue';
  // amqplib checks its arguments itself; hoptrace only names the span, so non-strings count as empty.
  const exchange = toQueue ? '' : textArg(args[0]);
  const routingKey = textArg(toQueue ? args[0] : args[1]);
  const optionsIndex = toQueue ? 2 : 3;
  const content = args[optionsIndex - 1];
  const bodySize = content instanceof Uint8Array ? content.byteLength : undefined;
  // The caller's options are read before any span starts: a getter that throws here reaches the
  // caller unchanged, with nothing to end.
  const options = args[optionsIndex] as PublishOptions | undefined;
  const headers = options?.headers;
  const messageId = options?.messageId;
  const correlationId = options?.correlationId;
  const { opts } = state;
  const { instr } = opts;

  // A context the caller injected itself stays the message's creation context (conventions: send
  // is then a CLIENT span linked to it).
  const caller = callerSpanContext(headers);
  const nameDestination = state.nameFor('send', exchange, routingKey, undefined);
  const destination = destinationOverride(
    producerDestination(exchange, state.destinationRoutingKey(exchange, routingKey)),
    nameDestination,
  );
  const parent = contextApi.active();
  const span = startClientSpan(
    instr,
    state.template(caller ? 'sendClient' : 'send', nameDestination),
    parent,
    caller
      ? { destination, links: [{ context: caller }] }
      : destination === undefined
        ? undefined
        : { destination },
  );
  const recording = span?.isRecording() === true;
  if (recording) {
    const attributes: Attributes = {};
    messageAttributes(
      attributes,
      opts,
      routingKey,
      messageId,
      correlationId,
      exchange === '' ? routingKey : undefined,
    );
    if (instr.captureBodySize && bodySize !== undefined)
      attributes[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = bodySize;
    setSpanAttributes(span as Span, attributes, instr.legacyAttributes);
  }
  const metric = state.metric('send', 'send', nameDestination);
  // With nothing to end (no recording span, no metrics), only the headers are copied: no operation,
  // and a confirm callback is handed to amqplib as it is.
  const operation = recording || metric ? new Operation(instr, span, metric) : undefined;
  let result: unknown;
  try {
    // Inside the operation: copying a hostile headers object may throw, and the span must still end.
    const sendArgs = args.slice();
    sendArgs[optionsIndex] = withHeaders(
      options,
      sendHeaders(encodedHeaders(headers), span ? trace.setSpan(parent, span) : parent, caller),
    );
    // A confirm channel's span ends on the broker's confirm (through the caller's callback, wrapped,
    // or for a publish without one, on the channel's ack/nack event for its delivery tag), or when
    // the channel closes without it. A publish without a callback stays without one: amqplib's close
    // handling and waitForConfirms walk its callbacks, and must find what the caller gave.
    const { confirms } = state;
    const callback = args[optionsIndex + 1];
    const byTag = confirms !== undefined && operation !== undefined && !callback && confirms.readsTags;
    if (confirms && operation && !byTag) {
      const settled = operation.callback(callback, confirmErrorType);
      confirms.add(operation);
      sendArgs[optionsIndex + 1] = function confirmed(this: unknown, ...cbArgs: unknown[]): unknown {
        confirms.delete(operation);
        if (!isCloseError(cbArgs[0])) return settled.apply(this, cbArgs);
        // The channel is closing (amqplib 2.x calls back before its connection tells whether it
        // closed too): the span ends as the close ends the callback-less sends.
        state.endClosed(operation, 'before the broker confirmed the message');
        return typeof callback === 'function'
          ? (callback as (...a: unknown[]) => unknown).apply(this, cbArgs)
          : undefined;
      };
    }
    result = state.call(method, sendArgs);
    if (byTag) confirms.addByTag(operation);
    // amqplib reads `mandatory` by its truthiness. A caller's own context in the headers may be
    // shared by other sends: only a send whose headers name its own span can be told by its return.
    if (confirms && operation && !caller && options?.mandatory) confirms.addReturnable(operation);
  } catch (error) {
    if (operation) state.confirms?.delete(operation);
    operation?.fail(error);
    throw error;
  }
  // A plain channel's publish is synchronous (it returns the back-pressure boolean).
  if (!state.confirm) operation?.end();
  return result;
}

/** A string argument as it is; anything else (amqplib will complain itself) as `''`. */
function textArg(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
