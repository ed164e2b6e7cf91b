import { type ErrorClassifier, failureHeaders } from '@hoptrace/core';
import type { Context } from '@opentelemetry/api';
import { messageContextOf } from './message-spans.ts';

/** What {@link deadLetterMessage} needs beside the failed message. */
export interface DeadLetterOptions {
  /** The dead-letter or retry topic the copy goes to. */
  topic: string;
  /** Whatever the processing threw (classified, never rethrown or changed). */
  error: unknown;
  /** Attempts made so far. */
  attempts?: number;
  /** The classifier your consumer wrapper uses, so the header and the span agree. */
  classifyError?: ErrorClassifier;
  /**
   * The failed attempt's context. Default: the message's process span (when a traced stream
   * handed it out), else the active context.
   */
  context?: Context;
  /**
   * How the added headers are written when the message has none to copy the form from: Buffers
   * (for the default serializers) or strings (for `stringSerializers`). Default `'buffer'`.
   */
  headerType?: 'buffer' | 'string';
}

/** The fields of a received message the copy is made from. */
export interface FailedMessage<Key, Value, HeaderKey, HeaderValue> {
  readonly topic: string;
  readonly partition?: number;
  readonly offset?: bigint;
  readonly key?: Key;
  readonly value?: Value;
  readonly headers?: ReadonlyMap<HeaderKey, HeaderValue>;
}

/** The dead-letter (or retry) copy: ready for `producer.send({ messages: [copy] })`. */
export interface DeadLetterMessage<Key, Value, HeaderKey, HeaderValue> {
  topic: string;
  key?: Key;
  value?: Value;
  /** The original headers and the lineage ones (written in the original's form: Buffer or string). */
  headers: Map<HeaderKey, HeaderValue>;
}

/**
 * Turns a message whose processing failed into its dead-letter (or retry-topic) message: same key
 * and value, every original header (so its creation context travels on), plus core's plain-string
 * lineage headers naming the original topic, partition and offset, the error type, a capped error
 * message, retryable, the attempt count, and the failed process span's context
 * (`hoptrace-failed-traceparent`). Header names and values are written in the form the message's
 * own header keys use (Buffer or string). The message itself is never changed. Never throws.
 */
export function deadLetterMessage<Key, Value, HeaderKey, HeaderValue>(
  message: FailedMessage<Key, Value, HeaderKey, HeaderValue>,
  options: DeadLetterOptions,
): DeadLetterMessage<Key, Value, HeaderKey, HeaderValue> {
  const headers = new Map<unknown, unknown>();
  let buffers = options.headerType !== 'string';
  if (message.headers instanceof Map) {
    let first = true;
    for (const [key, value] of message.headers) {
      if (first) buffers = key instanceof Uint8Array;
      first = false;
      headers.set(key, value);
    }
  }
  const lineage = failureHeaders({
    error: options.error,
    destination: typeof message.topic === 'string' ? message.topic : '',
    partition: message.partition,
    offset: typeof message.offset === 'bigint' ? message.offset.toString() : undefined,
    attempts: options.attempts,
    classifyError: options.classifyError,
    context: options.context ?? messageContextOf(message),
  });
  for (const name in lineage) {
    const value = lineage[name] as string;
    headers.set(buffers ? Buffer.from(name) : name, buffers ? Buffer.from(value) : value);
  }
  const copy: DeadLetterMessage<Key, Value, HeaderKey, HeaderValue> = {
    topic: options.topic,
    headers: headers as Map<HeaderKey, HeaderValue>,
  };
  if (message.key !== undefined) copy.key = message.key;
  if (message.value !== undefined) copy.value = message.value;
  return copy;
}
