// Chunked sending with a bound on calls in flight (Kafka `send` and BullMQ `addBulk` of 100).
import type { Counter } from './types.ts';

/**
 * Sends `counter.n` messages in calls of `chunk` messages, asking `counter.room` before each call and
 * keeping at most `inFlight` calls unsettled; resolves when every call has settled.
 *
 * @param sendChunk - sends messages `start` to `start + count - 1` in one call.
 */
export async function sendInChunks(
  counter: Counter,
  chunk: number,
  inFlight: number,
  sendChunk: (start: number, count: number) => Promise<unknown>,
): Promise<void> {
  const pending = new Set<Promise<unknown>>();
  for (let i = 0; i < counter.n; i += chunk) {
    const count = Math.min(chunk, counter.n - i);
    const wait = counter.room(count);
    if (wait) await wait;
    const call: Promise<unknown> = sendChunk(i, count).finally(() => {
      pending.delete(call);
    });
    pending.add(call);
    if (pending.size >= inFlight) await Promise.race(pending);
  }
  await Promise.all(pending);
}
