import {
  ATTR_MESSAGING_DESTINATION_ANONYMOUS,
  ATTR_MESSAGING_DESTINATION_TEMPLATE,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';

/** What a span-name rule sees: the operation and the AMQP addressing of one message. */
export interface SpanNameParts {
  /** `send`, `process`, `receive`, or a settle operation (`ack`, `nack`, `reject`). */
  readonly operation: string;
  /** The exchange (`''` for the default exchange). */
  readonly exchange: string;
  /** The routing key (`''` when none). */
  readonly routingKey: string;
  /** The queue consumed from or got from; `undefined` on publish. */
  readonly queue: string | undefined;
}

/** Prefix RabbitMQ gives server-named queues (`assertQueue('')`). */
const SERVER_NAMED_PREFIX = 'amq.gen-';
/** RabbitMQ's direct reply-to pseudo-queue; replies are routed to `amq.rabbitmq.reply-to.<requester>`. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/**
 * Whether RabbitMQ named this queue (or reply address) itself: one name per declaration or per
 * requester, so high cardinality. Covers server-named queues (`amq.gen-*`) and direct reply-to
 * addresses (`amq.rabbitmq.reply-to.*`).
 */
export function isServerNamed(queue: string): boolean {
  return queue.startsWith(SERVER_NAMED_PREFIX) || queue.startsWith(`${DIRECT_REPLY_TO}.`);
}

/**
 * Whether a queue has no name of its own (`messaging.destination.anonymous`): a server-named queue,
 * a direct reply-to address, or the direct reply-to pseudo-queue a requester consumes from.
 */
export function isAnonymous(queue: string): boolean {
  return queue === DIRECT_REPLY_TO || isServerNamed(queue);
}

/**
 * Sets `messaging.destination.anonymous` for a queue without a name of its own (see
 * {@link isAnonymous}) and, for direct reply-to (the pseudo-queue or a requester's address),
 * `messaging.destination.template` = `amq.rabbitmq.reply-to`: the low-cardinality form its span names
 * and metrics use, while `messaging.destination.name` keeps the full address.
 */
export function anonymousAttributes(target: Attributes, queue: string): void {
  if (!isAnonymous(queue)) return;
  target[ATTR_MESSAGING_DESTINATION_ANONYMOUS] = true;
  if (queue === DIRECT_REPLY_TO || queue.startsWith(`${DIRECT_REPLY_TO}.`))
    target[ATTR_MESSAGING_DESTINATION_TEMPLATE] = DIRECT_REPLY_TO;
}

/**
 * The low-cardinality form of a server-named destination: `amq.rabbitmq.reply-to` for every direct
 * reply-to address, `undefined` for a server-named queue (anonymous), the name itself otherwise.
 */
export function destinationTemplate(name: string): string | undefined {
  if (name.startsWith(`${DIRECT_REPLY_TO}.`)) return DIRECT_REPLY_TO;
  if (name.startsWith(SERVER_NAMED_PREFIX)) return undefined;
  return name;
}

/**
 * `messaging.destination.name` of a publish, per the RabbitMQ conventions: `{exchange}:{routing key}`
 * with whichever parts exist, `amq.default` when neither does.
 */
export function producerDestination(exchange: string, routingKey: string): string {
  if (exchange !== '' && routingKey !== '') return `${exchange}:${routingKey}`;
  if (exchange !== '') return exchange;
  if (routingKey !== '') return routingKey;
  return 'amq.default';
}

/**
 * `messaging.destination.name` of a delivery, per the RabbitMQ conventions:
 * `{exchange}:{routing key}:{queue}` with empty parts left out and a routing key equal to the queue
 * written once.
 */
export function consumerDestination(exchange: string, routingKey: string, queue: string): string {
  let out = exchange;
  if (routingKey !== '' && routingKey !== queue) out = out === '' ? routingKey : `${out}:${routingKey}`;
  if (queue !== '') out = out === '' ? queue : `${out}:${queue}`;
  return out === '' ? 'amq.default' : out;
}

/**
 * hoptrace's default low-cardinality destination for span names and metrics. Routing keys often
 * carry ids (`order.1234.created`), so they never appear in a span name:
 * - publish to a named exchange: the exchange (`send orders`);
 * - publish to the default exchange (`sendToQueue`): the queue, `amq.rabbitmq.reply-to` for a direct
 *   reply, nothing for a server-named queue (`send`), `amq.default` for an empty routing key;
 * - consume, get and settle: the queue unless it is server-named, then the exchange, else nothing.
 */
export function defaultSpanDestination(parts: SpanNameParts): string | undefined {
  if (parts.queue === undefined) {
    if (parts.exchange !== '') return parts.exchange;
    if (parts.routingKey === '') return 'amq.default';
    return destinationTemplate(parts.routingKey);
  }
  if (parts.queue !== '' && !isServerNamed(parts.queue)) return parts.queue;
  return parts.exchange !== '' ? parts.exchange : undefined;
}

/**
 * The `destination` start option for a span whose template (`ChannelState.template`)
 * already names `nameDestination`: `undefined` when the span's full destination is that same name
 * (no per-span attribute object), else the full destination.
 */
export function destinationOverride(
  destination: string,
  nameDestination: string | undefined,
): string | undefined {
  return destination === nameDestination ? undefined : destination;
}
