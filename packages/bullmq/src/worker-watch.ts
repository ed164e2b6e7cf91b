import type { Attempt, AttemptOwner } from './attempt.ts';
import { ERROR_LOCK_LOST, ERROR_STALLED, ERROR_WORKER_CLOSED } from './attributes.ts';

/** The part of a BullMQ `Worker` the watch uses: its event emitter. */
interface WorkerEvents {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * The open attempts of one in-process BullMQ `Worker`, ended when BullMQ gives up on them even if
 * their processor never returns: `lockRenewalFailed` (BullMQ >= 6), `stalled` (the job was moved back
 * to wait), `closed` (a forced close leaves processors running), or the same job handed to this
 * worker again. Only listens; never adds an `error` listener (that would change how the worker's
 * errors surface). Holds only open attempts (at most the worker's concurrency).
 */
class WorkerWatch implements AttemptOwner {
  readonly #open = new Map<string, Attempt>();

  constructor(worker: WorkerEvents) {
    worker.on('lockRenewalFailed', (ids: unknown) => {
      if (Array.isArray(ids)) for (const id of ids) this.#abandon(id, ERROR_LOCK_LOST, 'job lock lost');
    });
    worker.on('stalled', (id: unknown) => this.#abandon(id, ERROR_STALLED, 'job stalled'));
    worker.on('closed', () => {
      for (const attempt of [...this.#open.values()])
        attempt.abandon(ERROR_WORKER_CLOSED, 'worker closed while the job was processed');
    });
  }

  /** Tracks `attempt` until it ends; an older open attempt of the same job was given up by BullMQ. */
  track(attempt: Attempt): void {
    const id = attempt.jobId;
    if (id === undefined) return;
    this.#abandon(id, ERROR_STALLED, 'job handed to the worker again');
    this.#open.set(id, attempt);
    attempt.ownedBy(this);
  }

  release(attempt: Attempt): void {
    const id = attempt.jobId;
    if (id !== undefined && this.#open.get(id) === attempt) this.#open.delete(id);
  }

  #abandon(id: unknown, type: string, message: string): void {
    if (typeof id !== 'string') return;
    this.#open.get(id)?.abandon(type, message);
  }
}

const watches = new WeakMap<object, WorkerWatch>();

/**
 * The watch of the worker a processor was called by (BullMQ calls it as a method of the `Worker`),
 * or `undefined` when `self` is not a BullMQ worker (a sandboxed child, a direct call). Never throws.
 */
export function workerWatch(self: unknown): WorkerWatch | undefined {
  if (self === null || typeof self !== 'object') return undefined;
  const known = watches.get(self);
  if (known) return known;
  try {
    const worker = self as Partial<WorkerEvents> & { isRunning?: unknown; processFn?: unknown };
    if (typeof worker.on !== 'function' || typeof worker.isRunning !== 'function') return undefined;
    const watch = new WorkerWatch(worker as WorkerEvents);
    watches.set(self, watch);
    return watch;
  } catch {
    return undefined;
  }
}
