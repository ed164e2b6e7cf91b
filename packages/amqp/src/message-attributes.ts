import {
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_MESSAGE_CONVERSATION_ID,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_RABBITMQ_DESTINATION_ROUTING_KEY,
  ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG,
  capValue,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import { ATTR_HOPTRACE_RABBITMQ_REDELIVERED } from './attributes.ts';
import { anonymousAttributes } from './destination.ts';
import type { ResolvedOptions } from './options.ts';
import type { AmqpMessage } from './types.ts';
import { deathAttributes } from './x-death.ts';

/**
 * Message-level attributes shared by send, receive and process spans: whether the queue is
 * anonymous (server-named or direct reply-to) and its template (direct reply-to), routing key (unless
 * turned off; capped), message id and correlation id (capped).
 *
 * @param queue - the queue the message is addressed to or came from (`undefined`: a publish to a
 * named exchange, whose destination is never anonymous).
 */
export function messageAttributes(
  target: Attributes,
  opts: ResolvedOptions,
  routingKey: string,
  messageId: unknown,
  correlationId: unknown,
  queue: string | undefined,
): void {
  if (queue !== undefined) anonymousAttributes(target, queue);
  if (routingKey !== '' && opts.captureRoutingKey)
    target[ATTR_RABBITMQ_DESTINATION_ROUTING_KEY] = capValue(routingKey);
  if (typeof messageId === 'string' && messageId !== '')
    target[ATTR_MESSAGING_MESSAGE_ID] = capValue(messageId);
  if (typeof correlationId === 'string' && correlationId !== '') {
    target[ATTR_MESSAGING_MESSAGE_CONVERSATION_ID] = capValue(correlationId);
  }
}

/**
 * Attributes of one delivered message (consume or get): routing key, message and correlation ids,
 * delivery tag, redelivered flag, dead-letter details from `x-death`, body size (opt-in).
 *
 * @param attributes - the object to add them to and return (default: a new one), e.g. the span's
 * other attributes, so a delivery builds one attribute object, not two.
 */
export function deliveryAttributes(
  opts: ResolvedOptions,
  message: AmqpMessage,
  queue: string,
  attributes: Attributes = {},
): Attributes {
  const { fields, properties } = message;
  attributes[ATTR_RABBITMQ_MESSAGE_DELIVERY_TAG] = fields.deliveryTag;
  messageAttributes(
    attributes,
    opts,
    fields.routingKey ?? '',
    properties?.messageId,
    properties?.correlationId,
    queue,
  );
  if (fields.redelivered === true) attributes[ATTR_HOPTRACE_RABBITMQ_REDELIVERED] = true;
  const headers = properties?.headers;
  if (headers) deathAttributes(headers['x-death'], attributes);
  if (opts.instr.captureBodySize && typeof message.content?.length === 'number') {
    attributes[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = message.content.length;
  }
  return attributes;
}
