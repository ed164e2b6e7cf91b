import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_MESSAGE_CONVERSATION_ID,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_RABBITMQ_DESTINATION_ROUTING_KEY,
  errorTypeOf,
  extractContext,
  hasPropagationHeaders,
  MESSAGING_SYSTEM,
  SpanHandle,
  startMessagingSpan,
  withContextHeaders,
} from '@hoptrace/core';
import { type Attributes, context as contextApi, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { ERROR_CHANNEL_CLOSED, ERROR_NACKED } from './attributes.ts';
import type { ChannelState } from './channel-state.ts';
import { producerDestination } from './destination.ts';
import type { AnyFunction, PublishOptions } from './types.ts';

/** Message-level attributes shared by send and consumer spans. */
export function messageAttributes(
  target: Attributes,
  routingKey: string,
  messageId: unknown,
  correlationId: unknown,
): void {
  if (routingKey !== '') target[ATTR_RABBITMQ_DESTINATION_ROUTING_KEY] = routingKey;
  if (typeof messageId === 'string' && messageId !== '') target[ATTR_MESSAGING_MESSAGE_ID] = messageId;
  if (typeof correlationId === 'string' && correlationId !== '') {
    target[ATTR_MESSAGING_MESSAGE_CONVERSATION_ID] = correlationId;
  }
}

/** `error.type` for a confirm callback's error: amqplib reports nacks and closes as plain Errors. */
function confirmErrorType(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  if (message === 'message nacked') return ERROR_NACKED;
  if (message === 'channel closed') return ERROR_CHANNEL_CLOSED;
  return errorTypeOf(error);
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
  const exchange = toQueue ? '' : String(args[0] ?? '');
  const routingKey = String((toQueue ? args[0] : args[1]) ?? '');
  const optionsIndex = toQueue ? 2 : 3;
  const content = args[optionsIndex - 1] as { length?: unknown } | undefined;
  const options = args[optionsIndex] as PublishOptions | undefined;
  const callback = args[optionsIndex + 1];
  const { instr } = state.opts;

  const attributes: Attributes = { ...state.server };
  messageAttributes(attributes, routingKey, options?.messageId, options?.correlationId);
  if (instr.captureBodySize && typeof content?.length === 'number') {
    attributes[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = content.length;
  }
  const userHeaders = options?.headers;
  const nameDestination = state.nameFor('send', exchange, routingKey, undefined);
  const parent = contextApi.active();
  // A context the caller injected itself stays the message's creation context (conventions: send
  // is then a CLIENT span linked to it).
  const userContext = hasPropagationHeaders(userHeaders)
    ? trace.getSpanContext(extractContext(userHeaders, ROOT_CONTEXT))
    : undefined;
  const span = startMessagingSpan(instr.tracer, {
    system: MESSAGING_SYSTEM.rabbitmq,
    operationType: 'send',
    operationName: 'send',
    destination: producerDestination(exchange, routingKey),
    nameDestination,
    attributes,
    parent,
    legacyAttributes: instr.legacyAttributes,
    ...(userContext ? { kind: SpanKind.CLIENT, links: [{ context: userContext }] } : {}),
  });
  const handle = new SpanHandle(span);
  const startMs = performance.now();

  const sendArgs = args.slice();
  sendArgs[optionsIndex] = {
    ...options,
    headers: withContextHeaders(userHeaders, trace.setSpan(parent, span)),
  };

  const done = (error: unknown, errorType?: string): void => {
    let metricAttributes = state.metricAttributes('send', nameDestination);
    if (error === undefined || error === null) {
      if (!handle.end()) return;
    } else {
      const type = errorType ?? errorTypeOf(error);
      if (!handle.fail(error, type)) return;
      metricAttributes = { ...metricAttributes, [ATTR_ERROR_TYPE]: type };
    }
    instr.metrics.recordSend(startMs, 1, metricAttributes);
  };

  if (state.confirm) {
    sendArgs[optionsIndex + 1] = function confirmed(this: unknown, ...cbArgs: unknown[]): unknown {
      const error = cbArgs[0];
      done(error, error ? confirmErrorType(error) : undefined);
      return typeof callback === 'function' ? (callback as AnyFunction).apply(this, cbArgs) : undefined;
    };
  }
  let result: unknown;
  try {
    result = state.call(method, sendArgs);
  } catch (error) {
    done(error);
    throw error;
  }
  if (!state.confirm) done(undefined);
  return result;
}
