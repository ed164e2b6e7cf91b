import {
  checkFailureCopyOptions,
  FAILURE_COPY_OPTION_KEYS,
  type FailureCopyOptions,
  isLineageHeader,
  nextFailureHeaders,
} from '@hoptrace/core/adapter';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

/** A message that failed processing, as kafkajs delivered it (an `eachMessage` payload fits). */
export interface FailedKafkaMessage {
  /** The topic it was consumed from. */
  readonly topic: string;
  /** Its partition. */
  readonly partition: number;
  /** The message itself. */
  readonly message: KafkaMessage;
}

/** Options of {@link deadLetterMessage}: `attempts`, `classifyError`, `context`. */
export interface DeadLetterOptions extends FailureCopyOptions {}

/**
 * Turns a failed kafkajs message into its dead-letter (or retry-topic) message, ready for
 * `producer.send({ topic: 'orders.DLT', messages: [deadLetterMessage(payload, error)] })`.
 *
 * The result has the original key and value, and a new header map: the original headers (so the
 * message keeps its creation context and baggage), then plain-string lineage headers any Kafka client
 * can read: `hoptrace-original-destination`, `hoptrace-original-partition`,
 * `hoptrace-original-offset`, `hoptrace-error-type`, `hoptrace-error-message` (capped),
 * `hoptrace-error-retryable`, `hoptrace-attempts` and the failed attempt's trace context
 * (`hoptrace-failed-traceparent`, `hoptrace-failed-tracestate` with W3C). Lineage headers of an
 * earlier failure are replaced. A traced consumer of the copy continues the original trace (per its
 * relation policy) and links to the failed attempt. The failed message is never modified. Its
 * headers never make it throw (a header that cannot be read is left out); an option it does not take
 * does (a TypeError naming `deadLetterMessage`, the option and the one it most likely misspells:
 * ``Unknown option `attempt` for deadLetterMessage (did you mean `attempts`?)``; one set to
 * `undefined` is let through), and so does an `options.context` that is not an OpenTelemetry Context.
 *
 * @param failed - where the message came from and the message (an `eachMessage` payload).
 * @param error - what the handler threw (any value; classified, never rethrown or changed).
 * @param options - see {@link DeadLetterOptions}; options that are not an object (`null` included) or
 *   hold a value of the wrong type throw a TypeError.
 * @example
 * eachMessage: async (payload) => {
 *   try { await handle(payload.message); }
 *   catch (error) { await producer.send({ topic: 'orders.DLT', messages: [deadLetterMessage(payload, error)] }); }
 * }
 */
export function deadLetterMessage(
  failed: FailedKafkaMessage,
  error: unknown,
  options?: DeadLetterOptions,
): Message {
  const o = checkFailureCopyOptions('deadLetterMessage', options, FAILURE_COPY_OPTION_KEYS);
  const message = failed.message;
  const original = readHeaders(message.headers);
  const headers: IHeaders = {};
  for (const key of Object.keys(original)) if (!isLineageHeader(key)) setHeader(headers, key, original[key]);
  const lineage = nextFailureHeaders(original, {
    error,
    destination: failed.topic,
    partition: failed.partition,
    offset: message.offset,
    attempts: o.attempts,
    classifyError: o.classifyError,
    context: o.context,
  });
  for (const key in lineage) setHeader(headers, key, lineage[key]);
  const out: Message = { key: message.key, value: message.value, headers };
  return out;
}

/**
 * Writes `value` as `headers`' own field `key`, also when the key is `__proto__` (an assignment would
 * replace the object's prototype instead, losing the header and sending the prototype's fields).
 */
function setHeader(headers: IHeaders, key: string, value: IHeaders[string]): void {
  Object.defineProperty(headers, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * What kafkajs can write of a received header value: an array (a repeated header) keeps its string
 * and Buffer entries only. kafkajs decodes a header named like an `Object.prototype` field
 * (`__proto__`, `constructor`, `hasOwnProperty`) as an array led by that inherited value (say
 * `[Object.prototype, <Buffer>]`), which it could not send back. A header whose value is null on the
 * wire (other clients write them; kafkajs hands it out as `null`) cannot be sent by kafkajs at all
 * (its encoder throws a TypeError), so it is left out. `undefined` when nothing is left.
 */
function writable(value: unknown): IHeaders[string] {
  if (value === null) return undefined;
  if (!Array.isArray(value)) return value as IHeaders[string];
  const kept = value.filter((entry) => typeof entry === 'string' || Buffer.isBuffer(entry));
  if (kept.length === value.length) return value as IHeaders[string];
  return kept.length === 0 ? undefined : (kept as IHeaders[string]);
}

/** A plain copy of a received header map; entries whose read throws are left out. */
function readHeaders(headers: KafkaMessage['headers']): IHeaders {
  const out: IHeaders = {};
  if (!headers || typeof headers !== 'object') return out;
  let keys: string[];
  try {
    keys = Object.keys(headers);
  } catch {
    return out;
  }
  for (const key of keys) {
    try {
      const value = writable(headers[key]);
      if (value !== undefined) setHeader(out, key, value);
    } catch {
      // An unreadable header is left out; the rest still travel.
    }
  }
  return out;
}
