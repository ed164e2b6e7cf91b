import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_DESTINATION_NAME,
  errorTypeOf,
  extractContext,
  MESSAGING_SYSTEM,
  SpanHandle,
  setSpanAttributes,
  startMessagingSpan,
} from '@hoptrace/core';
import { isSpanContextValid, ROOT_CONTEXT, type Span, trace } from '@opentelemetry/api';
import type { ChannelState } from './channel-state.ts';
import { deliveryAttributes } from './consumer.ts';
import { consumerDestination } from './destination.ts';
import type { AmqpMessage, AnyFunction } from './types.ts';

/** `addLink` exists on spans from API 1.9; older SDKs simply get no link. */
type LinkableSpan = Span & { addLink?: (link: { context: ReturnType<Span['spanContext']> }) => unknown };

/**
 * A traced `get(queue, options?)` (promise API) or `get(queue, options, cb)` (callback API): a
 * `receive` span (CLIENT) from the call until amqplib answers. With a message, the span gets its
 * attributes and a link to its creation context; on an empty queue (`false`) it ends without them.
 * Settling a got message later does not touch this span. The answer is passed through unchanged.
 */
export function tracedGet(state: ChannelState, args: unknown[]): unknown {
  const queue = String(args[0] ?? '');
  const { instr } = state.opts;
  const nameDestination = state.nameFor('receive', '', '', queue);
  const handle = new SpanHandle(
    startMessagingSpan(instr.tracer, {
      system: MESSAGING_SYSTEM.rabbitmq,
      operationType: 'receive',
      operationName: 'receive',
      destination: queue === '' ? undefined : queue,
      nameDestination,
      attributes: state.server,
      legacyAttributes: instr.legacyAttributes,
    }),
  );
  const startMs = performance.now();
  const done = (error: unknown, message: unknown): void => {
    let metricAttributes = state.metricAttributes('receive', nameDestination);
    if (error !== null && error !== undefined) {
      const type = errorTypeOf(error);
      metricAttributes = { ...metricAttributes, [ATTR_ERROR_TYPE]: type };
      handle.fail(error, type);
    } else {
      if (message && typeof message === 'object')
        describeMessage(state, handle.span, queue, message as AmqpMessage);
      if (!handle.end()) return;
      if (message) instr.metrics.consumedMessages.add(1, metricAttributes);
    }
    instr.metrics.operationDuration.record((performance.now() - startMs) / 1000, metricAttributes);
  };

  const callbackIndex = args.length - 1;
  const callback = args[callbackIndex];
  let getArgs = args;
  if (typeof callback === 'function') {
    getArgs = args.slice();
    getArgs[callbackIndex] = function received(this: unknown, ...cbArgs: unknown[]): unknown {
      done(cbArgs[0], cbArgs[1]);
      return (callback as AnyFunction).apply(this, cbArgs);
    };
  }
  let result: unknown;
  try {
    result = state.call('get', getArgs);
  } catch (error) {
    done(error, undefined);
    throw error;
  }
  if (typeof callback !== 'function') {
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      return (result as PromiseLike<unknown>).then(
        (message) => {
          done(undefined, message);
          return message;
        },
        (error: unknown) => {
          done(error, undefined);
          throw error;
        },
      );
    }
    // A callback-API get without a callback: the answer is unobservable.
    done(undefined, undefined);
  }
  return result;
}

function describeMessage(state: ChannelState, span: LinkableSpan, queue: string, message: AmqpMessage): void {
  const fields = message.fields;
  setSpanAttributes(span, deliveryAttributes(state, message), state.opts.instr.legacyAttributes);
  span.setAttribute(
    ATTR_MESSAGING_DESTINATION_NAME,
    consumerDestination(fields?.exchange ?? '', fields?.routingKey ?? '', queue),
  );
  const creation = trace.getSpanContext(extractContext(message.properties?.headers, ROOT_CONTEXT));
  if (creation && isSpanContextValid(creation) && typeof span.addLink === 'function') {
    span.addLink({ context: creation });
  }
}
