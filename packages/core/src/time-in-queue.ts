/**
 * How long a message waited, from a creation time its publisher (or the broker) wrote on it, with a
 * rule for values no clock could have produced: `hoptrace.messaging.time_in_queue` records only a
 * plausible wait.
 *
 * @packageDocumentation
 */

/**
 * How far ahead of the consumer's clock a creation time may be and still count as a wait of 0:
 * clock skew between hosts, and AMQP's whole-second timestamps. Further ahead, the time is wrong.
 */
export const TIME_IN_QUEUE_MAX_SKEW_MS = 60_000;

/**
 * The longest wait recorded (30 days): an older creation time is taken for a wrong one (a zero or
 * tiny value, a wrong unit), not for a message that waited that long.
 */
export const TIME_IN_QUEUE_MAX_MS = 30 * 86_400_000;

/**
 * Seconds between `createdMs` (milliseconds since the epoch) and `nowMs`, for the time-in-queue
 * histogram; `undefined` when the creation time is implausible: not a finite positive number, more
 * than {@link TIME_IN_QUEUE_MAX_SKEW_MS} in the future, or more than {@link TIME_IN_QUEUE_MAX_MS}
 * in the past. A creation time at most that far ahead gives 0 (skew, never a negative wait).
 *
 * @param createdMs - when the message was created (or became due), in milliseconds since the epoch.
 * @param nowMs - the start of its processing (default: now).
 */
export function timeInQueueSeconds(createdMs: number, nowMs: number = Date.now()): number | undefined {
  if (!Number.isFinite(createdMs) || createdMs <= 0) return undefined;
  const waitedMs = nowMs - createdMs;
  if (waitedMs < -TIME_IN_QUEUE_MAX_SKEW_MS || waitedMs > TIME_IN_QUEUE_MAX_MS) return undefined;
  return Math.max(0, waitedMs) / 1000;
}
