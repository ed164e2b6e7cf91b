import type { Operation } from '@hoptrace/core/adapter';

/**
 * The open process operation of each delivery a traced channel handed to a consume callback, keyed
 * by the message object amqplib delivered (weakly: a message the application drops frees its entry).
 * Lets {@link noteDeliveryFailure} mark the attempt failed when the application dead-letters a
 * message itself instead of throwing.
 */
const operations = new WeakMap<object, Operation>();

/** Remembers the operation of a delivery whose span stays open until it is settled. */
export function rememberDelivery(message: object, operation: Operation): void {
  operations.set(message, operation);
}

/**
 * Records `error` (classified by the wrapper's `classifyError`) on the delivery's process span if it
 * is still open; it then ends ERROR when the message is settled. No-op for a message that did not
 * come from a traced channel, or whose span already ended. Never throws.
 */
export function noteDeliveryFailure(message: unknown, error: unknown): void {
  if (message === null || typeof message !== 'object') return;
  try {
    operations.get(message)?.noteFailure(error);
  } catch {
    // noteFailure guards the classifier; nothing else here may reach the host
  }
}
