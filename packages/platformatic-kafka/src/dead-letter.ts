import {
  checkFailureCopyOptions,
  FAILURE_COPY_OPTION_KEYS,
  type FailureCopyOptions,
  isLineageHeader,
  nextFailureHeaders,
} from '@hoptrace/core/adapter';
import type { Context } from '@opentelemetry/api';
import { headerView } from './headers.ts';
import { messageContextOf } from './message-spans.ts';

/** Options of {@link deadLetterMessage}: `attempts`, `classifyError`, `context`. */
export interface DeadLetterOptions extends FailureCopyOptions {
  /**
   * The failed attempt's context. Default: the message's process span when a traced stream handed
   * it out (so it works from a `for await` body), else the active context.
   */
  context?: Context | undefined;
}

/** A message that failed processing, as @platformatic/kafka handed it out. */
export interface FailedMessage<Key, Value, HeaderKey, HeaderValue> {
  readonly topic: string;
  readonly partition?: number;
  readonly offset?: bigint;
  readonly key?: Key;
  readonly value?: Value;
  readonly headers?: ReadonlyMap<HeaderKey, HeaderValue>;
}

/** The dead-letter (or retry) copy: add the topic and send it, `{ ...copy, topic: 'orders.DLT' }`. */
export interface DeadLetterMessage<Key, Value, HeaderKey, HeaderValue> {
  key?: Key;
  value?: Value;
  /** The original headers and the lineage ones, written in the original's form (Buffer or string). */
  headers: Map<HeaderKey, HeaderValue>;
}

/**
 * Turns a failed message into its dead-letter (or retry-topic) message, like @hoptrace/kafka's
 * `deadLetterMessage` (same arguments and header names), ready for
 * `producer.send({ messages: [{ ...deadLetterMessage(message, error), topic: 'orders.DLT' }] })`.
 *
 * The result has the original key and value and a new header map: the original headers (so the
 * message keeps its creation context and baggage), then plain-string lineage headers any Kafka client
 * can read: `hoptrace-original-destination`, `hoptrace-original-partition`,
 * `hoptrace-original-offset`, `hoptrace-error-type`, `hoptrace-error-message` (capped),
 * `hoptrace-error-retryable`, `hoptrace-attempts` and the failed attempt's trace context
 * (`hoptrace-failed-traceparent`, ...). Lineage headers of an earlier failure are replaced. Names
 * and values are written in the form the message's own header keys use (Buffers, or strings for
 * `stringDeserializers`; without headers, the form of its value). The failed message is never
 * modified. The message never makes it throw; an option it does not take does (a TypeError naming
 * `deadLetterMessage`, the option and the one it most likely misspells: ``Unknown option `attempt`
 * for deadLetterMessage (did you mean `attempts`?)``; one set to `undefined` is let through), and so
 * does an `options.context` that is not an OpenTelemetry Context.
 *
 * @param failed - the message the stream handed out.
 * @param error - what the processing threw (any value; classified, never rethrown or changed).
 * @param options - see {@link DeadLetterOptions}; options that are not an object (`null` included) or
 *   hold a value of the wrong type throw a TypeError.
 */
export function deadLetterMessage<Key, Value, HeaderKey, HeaderValue>(
  failed: FailedMessage<Key, Value, HeaderKey, HeaderValue>,
  error: unknown,
  options?: DeadLetterOptions,
): DeadLetterMessage<Key, Value, HeaderKey, HeaderValue> {
  const o = checkFailureCopyOptions('deadLetterMessage', options, FAILURE_COPY_OPTION_KEYS);
  const headers = new Map<unknown, unknown>();
  let buffers = typeof failed?.value !== 'string';
  try {
    if (failed?.headers instanceof Map) {
      let first = true;
      for (const [key, value] of failed.headers) {
        if (first) buffers = key instanceof Uint8Array;
        first = false;
        const name =
          typeof key === 'string' ? key : key instanceof Uint8Array ? Buffer.from(key).toString() : '';
        if (!isLineageHeader(name)) headers.set(key, value);
      }
    }
  } catch {
    // an unreadable header map: the lineage headers still travel
  }
  const lineage = nextFailureHeaders(headerView(failed?.headers), {
    error,
    destination: typeof failed?.topic === 'string' ? failed.topic : '',
    partition: failed?.partition,
    offset: typeof failed?.offset === 'bigint' ? failed.offset.toString() : undefined,
    attempts: o.attempts,
    classifyError: o.classifyError,
    context: o.context ?? messageContextOf(failed),
  });
  for (const name in lineage) {
    const value = lineage[name] as string;
    headers.set(buffers ? Buffer.from(name) : name, buffers ? Buffer.from(value) : value);
  }
  const copy: DeadLetterMessage<Key, Value, HeaderKey, HeaderValue> = {
    headers: headers as Map<HeaderKey, HeaderValue>,
  };
  if (failed?.key !== undefined) copy.key = failed.key;
  if (failed?.value !== undefined) copy.value = failed.value;
  return copy;
}
