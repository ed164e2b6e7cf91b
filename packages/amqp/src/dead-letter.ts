import { FAILURE_HEADERS, failureHeaders } from '@hoptrace/core';
import {
  assertOptionalString,
  checkFailureCopyOptions,
  FAILURE_COPY_OPTION_KEYS,
  type FailureCopyOptions,
  isLineageHeader,
  limitedText,
  type OptionKeys,
} from '@hoptrace/core/adapter';
import { noteDeliveryFailure } from './delivery-failures.ts';
import { deathCount } from './x-death.ts';

/** The parts of a consumed amqplib message {@link deadLetterOptions} reads. */
export interface DeadLetterSource {
  fields: { exchange?: string; routingKey?: string };
  properties: { headers?: Record<string, unknown> | undefined };
}

/** Options of {@link deadLetterOptions}. */
export interface DeadLetterOptions extends FailureCopyOptions {
  /**
   * The queue the failed message was consumed from (amqplib's message does not name it). Default:
   * the routing key for a message published to the default exchange, else `{exchange}:{routing key}`.
   * @example { queue: 'orders' }
   */
  queue?: string | undefined;
  /**
   * Attempts made so far. Default: one more than the message's own `hoptrace-attempts` header (a
   * message dead-lettered before), else one more than its `x-death` count, else 1.
   * @example { attempts: 3 }
   */
  attempts?: number | undefined;
}

/** The option names {@link deadLetterOptions} takes (others throw). */
const DEAD_LETTER_OPTION_KEYS = {
  ...FAILURE_COPY_OPTION_KEYS,
  queue: true,
} as const satisfies OptionKeys<DeadLetterOptions>;

/** Publish options for a dead-letter copy: the original message properties plus lineage headers. */
export interface DeadLetterPublishOptions {
  headers: Record<string, unknown>;
  [property: string]: unknown;
}

/**
 * Message properties amqplib accepts back as publish options, under the same names. Not
 * `expiration` (RabbitMQ drops it from dead letters) nor `userId`: RabbitMQ refuses a publish whose
 * user-id is not the publishing connection's user (channel closed, 406), and the copy is published
 * by the consumer, often under other credentials than the original publisher's.
 */
const COPIED_PROPERTIES = [
  'contentType',
  'contentEncoding',
  'deliveryMode',
  'priority',
  'correlationId',
  'replyTo',
  'messageId',
  'timestamp',
  'type',
  'appId',
] as const;

/**
 * Headers the copy leaves out, as RabbitMQ's own dead-lettering does:
 * - `CC`, `BCC`: routing headers RabbitMQ reads on publish (sender-selected distribution); a copy
 *   carrying them would also be routed to the original's CC routing keys. RabbitMQ 3.x drops `CC`
 *   from a message it dead-letters to a given routing key (4.x keeps it but does not route the dead
 *   letter by it), and never delivers `BCC`; the copy goes to the caller's key.
 * - `x-delivery-count`, `x-acquired-count` (quorum queues; the second from RabbitMQ 4.3),
 *   `x-stream-offset` (streams): what the broker wrote on the original's delivery, not on the message. A quorum queue writes the count only on a redelivery,
 *   so a stale one would show the copy's first delivery as redelivered.
 * The dead-letter history (`x-death`, `x-first-death-*`, `x-last-death-*`) stays, as it does on a
 * message the broker dead-letters.
 */
const DROPPED_HEADERS: ReadonlySet<string> = new Set([
  'CC',
  'BCC',
  'x-delivery-count',
  'x-acquired-count',
  'x-stream-offset',
]);

/**
 * Longest `hoptrace-attempts` value read: a count is a few digits, so a longer value (characters, or
 * bytes of a byte-array header) is not one hoptrace wrote and is refused before it is decoded.
 */
const MAX_ATTEMPTS_HEADER_LENGTH = 32;

/** The attempts an earlier copy recorded (`hoptrace-attempts`), else the broker's `x-death` count. */
function previousAttempts(headers: Record<string, unknown> | undefined): number | undefined {
  const own = limitedText(headers?.[FAILURE_HEADERS.attempts], MAX_ATTEMPTS_HEADER_LENGTH);
  if (own !== undefined && /^\d{1,9}$/.test(own)) return Number(own);
  return deathCount(headers?.['x-death']);
}

/**
 * Publish options for republishing a failed message to a dead-letter (or retry) exchange yourself,
 * the way RabbitMQ's own dead-lettering would keep it, plus what broker dead-lettering cannot say:
 * - the message's properties (content type, message id, correlation id, timestamp...) except
 *   `expiration`, which RabbitMQ also drops from dead letters, and `userId`, which RabbitMQ checks
 *   against the user of the connection that republishes;
 * - a copy of its headers, so the creation context (`traceparent`) travels on and the consumer of
 *   the copy continues the original trace (per its relation policy), and the dead-letter history
 *   (`x-death`, `x-first-death-*`, `x-last-death-*`) with it; but not `CC` and `BCC` (which would
 *   route the copy to the original's other routing keys too; RabbitMQ drops them as well), nor
 *   what the broker wrote on the original's delivery, `x-delivery-count` and `x-acquired-count` (a quorum
 *   queue's, which its dead-lettering drops too) and `x-stream-offset`;
 * - the lineage headers of `@hoptrace/core` (`failureHeaders`): `hoptrace-original-destination`,
 *   `hoptrace-error-type`, `hoptrace-error-message` (capped), `hoptrace-error-retryable`,
 *   `hoptrace-attempts`, and the failed attempt's context as `hoptrace-failed-traceparent`
 *   (`hoptrace-failed-<field>` for other propagators). All plain strings, readable by any client.
 *   Lineage from an earlier failure is replaced.
 *
 * A traced consumer of the copy links its span to the failed attempt, with `hoptrace.failure.*`
 * attributes. When `message` came from a traced channel and its process span is still open, that
 * span records `error` (classified by the wrapper's `classifyError`), so the attempt the copy links
 * to ends ERROR with the same code even though the handler did not throw. Never mutates `message`;
 * the returned object and its headers are new.
 *
 * @param message - the consumed message that failed.
 * @param error - whatever the handler threw (classified, never rethrown or changed).
 * @param options - see {@link DeadLetterOptions}; a bad value throws a TypeError, and so does an option
 * it does not take, naming the one it most likely misspells (``Unknown option `queu` for
 * deadLetterOptions (did you mean `queue`?)``; one set to `undefined` is let through).
 * @example
 * channel.publish('orders.dlx', 'orders', msg.content, deadLetterOptions(msg, error, { queue: 'orders' }));
 * channel.ack(msg);
 */
export function deadLetterOptions(
  message: DeadLetterSource,
  error: unknown,
  options?: DeadLetterOptions,
): DeadLetterPublishOptions {
  if (message === null || typeof message !== 'object' || typeof message.properties !== 'object') {
    throw new TypeError('Expected `message` to be a consumed amqplib message');
  }
  const o = checkFailureCopyOptions('deadLetterOptions', options, DEAD_LETTER_OPTION_KEYS);
  assertOptionalString('queue', o.queue);
  const properties = message.properties as Record<string, unknown>;
  const source = message.properties.headers;
  const out: DeadLetterPublishOptions = { headers: {} };
  for (const name of COPIED_PROPERTIES) {
    const value = properties[name];
    if (value !== undefined && value !== null) out[name] = value;
  }
  if (source && typeof source === 'object') {
    for (const name of Object.keys(source)) {
      if (!isLineageHeader(name) && !DROPPED_HEADERS.has(name)) out.headers[name] = source[name];
    }
  }
  const exchange = message.fields?.exchange ?? '';
  const routingKey = message.fields?.routingKey ?? '';
  const lineage = failureHeaders({
    error,
    destination: o.queue ?? (exchange === '' ? routingKey : `${exchange}:${routingKey}`),
    attempts: o.attempts ?? (previousAttempts(source) ?? 0) + 1,
    classifyError: o.classifyError,
    context: o.context,
  });
  Object.assign(out.headers, lineage);
  noteDeliveryFailure(message, error);
  return out;
}
