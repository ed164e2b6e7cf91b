import { findOpenDelivery } from './deliveries.ts';

/**
 * Records `error` (classified by the wrapper's `classifyError`) on the process span of `message` (a
 * delivery a traced channel handed to a consume callback) if it is still open; it then ends ERROR
 * when the message is settled. Lets an application that dead-letters a message itself instead of
 * throwing mark the attempt failed. No-op for a message that did not come from a traced channel, or
 * whose span already ended. Never throws.
 */
export function noteDeliveryFailure(message: unknown, error: unknown): void {
  if (message === null || typeof message !== 'object') return;
  try {
    findOpenDelivery(message)?.operation.noteFailure(error);
  } catch {
    // A hostile message (a throwing `fields` getter) or classifier changes nothing here.
  }
}
