/**
 * The structural shapes hoptrace needs from amqplib objects, wide enough for the promise and callback
 * APIs of amqplib 0.10 to 2.x (and their `@types/amqplib` / bundled typings).
 *
 * @packageDocumentation
 */

/** Any amqplib `Channel` or `ConfirmChannel`, promise or callback API. */
export interface TraceableChannel {
  publish(...args: never[]): unknown;
  sendToQueue(...args: never[]): unknown;
  consume(...args: never[]): unknown;
  ack(...args: never[]): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/** Any amqplib connection model (`ChannelModel` from `connect()`, or the callback API's `Connection`). */
export interface TraceableConnection {
  createChannel(...args: never[]): unknown;
  createConfirmChannel(...args: never[]): unknown;
}

/** The parts of an amqplib message hoptrace reads (consume and get). */
export interface AmqpMessage {
  content: { length: number };
  fields: {
    deliveryTag: number;
    redelivered?: boolean;
    exchange: string;
    routingKey: string;
    consumerTag?: string;
  };
  properties: {
    headers?: Record<string, unknown> | undefined;
    messageId?: unknown;
    correlationId?: unknown;
    /** Seconds since the epoch, when the publisher set it. */
    timestamp?: unknown;
  };
}

/** The publish options hoptrace reads and copies. */
export interface PublishOptions {
  headers?: Record<string, unknown> | undefined;
  messageId?: unknown;
  correlationId?: unknown;
  [key: string]: unknown;
}

/** A function with any arguments, as amqplib's methods are called through the wrapper. */
export type AnyFunction = (...args: unknown[]) => unknown;
