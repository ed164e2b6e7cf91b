import { isMainThread } from 'node:worker_threads';
import type { Attempt, AttemptOwner } from './attempt.ts';

/**
 * The open attempts of a sandboxed processor (a BullMQ child process or worker thread), ended when
 * the child exits with a processor still running (`process.exit()` in the processor, an uncaught
 * exception BullMQ turns into an exit): BullMQ fails the job ("Unexpected exit code"), and the
 * attempt's span ends with status ERROR and `error.type` `shutdown`, as core's `endOpenSpans()`
 * ends it. The `exit` listener is synchronous, so a span processor that exports synchronously still
 * gets the span; a batching one has no chance to flush. One listener per child, added with its first
 * attempt; holds only open attempts.
 */
class ChildExit implements AttemptOwner {
  readonly #open = new Set<Attempt>();

  constructor() {
    process.once('exit', () => {
      for (const attempt of [...this.#open]) attempt.endAtShutdown();
    });
  }

  track(attempt: Attempt): void {
    this.#open.add(attempt);
    attempt.ownedBy(this);
  }

  release(attempt: Attempt): void {
    this.#open.delete(attempt);
  }
}

let childExit: ChildExit | undefined;

/**
 * The exit watch of this process when it is a sandboxed child (forked with an IPC channel, or a
 * worker thread), else `undefined` (the main process owns its shutdown: `endOpenSpans`). Never throws.
 */
export function childExitWatch(): ChildExit | undefined {
  if (childExit) return childExit;
  try {
    if (isMainThread && typeof process.send !== 'function') return undefined;
    childExit = new ChildExit();
    return childExit;
  } catch {
    return undefined;
  }
}
