import { errorMonitor } from 'node:events';
import type { Attempt, AttemptOwner } from './attempt.ts';
import { ERROR_LOCK_LOST, ERROR_STALLED, ERROR_WORKER_CLOSED } from './attributes.ts';

/** The reason BullMQ gives a job its stall check fails (the `failed` event's error message). */
const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

/**
 * How BullMQ (5.x and 6.x) words the `error` event for a job whose lock it could not renew, followed
 * by the job id. 5.x has no other signal naming the job: its `failed` event for a job failed past
 * `maxStalledCount` with `removeOnFail` carries no job (removed before BullMQ reads it back).
 */
const LOCK_NOT_RENEWED = 'could not renew lock for job ';

/**
 * How BullMQ (5.x and 6.x) words the error of a move it could not make because the job's lock is
 * gone or another worker's (followed by the job id, `. ` and the command): emitted as the worker's
 * `error`, with no `completed` or `failed` after it, when it cannot record an attempt's outcome.
 */
const LOCK_GONE = ['Missing lock for job ', 'Lock mismatch for job '];

/**
 * How BullMQ words the error of a move it could not make because the job no longer exists (removed
 * while its processor ran, e.g. by `obliterate`): the attempt is over as its processor left it.
 */
const JOB_GONE = 'Missing key for job ';
/** BullMQ's default `lockDuration` (5.x and 6.x), in milliseconds. */
const DEFAULT_LOCK_DURATION_MS = 30_000;

/**
 * The reason BullMQ 6 fails a job started more often than the worker's `maxStartedAttempts` allows:
 * it fails it with an `UnrecoverableError` of this message without calling the processor.
 */
const STARTED_TOO_OFTEN = 'job started more than allowable limit';

/**
 * What a traced processor does with a job BullMQ failed without calling it (see
 * {@link WorkerWatch.onUnprocessedFailure}).
 */
export type UnprocessedFailure = (worker: object, job: object, error: unknown) => void;

/** The part of a BullMQ `Worker` the watch uses: its event emitter. */
interface WorkerEvents {
  on(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
  prependListener?(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
  rawListeners?(event: string | symbol): unknown;
}

/** One listener the watch adds to the worker. */
interface WatchListener {
  readonly event: string | symbol;
  readonly listener: (...args: unknown[]) => void;
  /** Added before the application's listeners (where the emitter can), else after them. */
  readonly first: boolean;
}

/** Adds `entry`'s listener, before the others where asked and the emitter can (a Node `EventEmitter`). */
function addListener(worker: WorkerEvents, entry: WatchListener): void {
  if (entry.first && typeof worker.prependListener === 'function')
    worker.prependListener(entry.event, entry.listener);
  else worker.on(entry.event, entry.listener);
}

/**
 * Adds the watch's `listeners` to `worker`, and adds back, after the call that removed them, those
 * the application's `removeAllListeners()` (or `removeAllListeners(event)`) takes away: without them
 * an attempt whose job BullMQ completed would end `lock_lost` and one running at a forced close would
 * not end. Node tells of each removal through `removeListener` (the watch's own listener of it goes
 * last in a `removeAllListeners()`, and the emitter's map is reset after it, hence a microtask).
 * Node tells nothing when that `removeListener` listener itself goes (`removeAllListeners('removeListener')`):
 * the returned check, run as each attempt starts, adds everything missing back then. Never throws.
 */
function listen(worker: WorkerEvents, listeners: readonly WatchListener[]): () => void {
  const ours = new Set<unknown>(listeners.map((l) => l.listener));
  let pending = false;
  const restore = (): void => {
    pending = false;
    try {
      for (const entry of all) {
        const present = worker.rawListeners?.(entry.event);
        if (Array.isArray(present) && !present.includes(entry.listener)) addListener(worker, entry);
      }
    } catch {
      // an emitter without Node's listener API: nothing to restore
    }
  };
  const removed: WatchListener = {
    event: 'removeListener',
    listener: (_event: unknown, listener: unknown) => {
      if (pending || !ours.has(listener)) return;
      pending = true;
      queueMicrotask(restore);
    },
    first: false,
  };
  ours.add(removed.listener);
  const all = [...listeners, removed];
  for (const entry of all) addListener(worker, entry);
  return () => {
    if (pending) return;
    try {
      const present = worker.rawListeners?.('removeListener');
      if (Array.isArray(present) && !present.includes(removed.listener)) restore();
    } catch {
      // an emitter without Node's listener API
    }
  };
}

/**
 * The open attempts of one in-process BullMQ `Worker`, ended when BullMQ gives up on them even if
 * their processor never returns: `lockRenewalFailed` (BullMQ >= 6) or the `error` BullMQ emits for a
 * lock it could not renew (read through `errorMonitor`, both versions), `stalled` (the job was moved back
 * to wait), `failed` by the stall check (BullMQ 5.x, a job stalled past `maxStalledCount`),
 * `closed` (a forced close leaves processors running), or the same job handed to this worker again.
 * An attempt whose processor moved its job itself (completed, failed or delayed it) and still runs
 * is not given up on: only `closed` ends it (else its processor's outcome does).
 * Only listens; never adds an `error` listener (that would change how the worker's errors surface),
 * only an `errorMonitor` one.
 * Holds only open attempts (at most the worker's concurrency, plus those whose processor moved
 * their job and still runs).
 */
class WorkerWatch implements AttemptOwner {
  /** The latest open attempt of each job. */
  readonly #open = new Map<string, Attempt>();
  /** Open attempts whose job, moved by their processor, was handed to this worker again. */
  readonly #displaced = new Set<Attempt>();
  #unprocessed: UnprocessedFailure | undefined;
  /** How long an attempt whose processor returned waits for BullMQ's verdict: the worker's lock duration. */
  readonly #verdictWaitMs: number;
  /** Adds back the watch's listeners if the application removed them unnoticed (see {@link listen}). */
  readonly #relisten: () => void;

  constructor(worker: WorkerEvents) {
    this.#verdictWaitMs = lockDurationOf(worker);
    const listeners: WatchListener[] = [];
    const on = (event: string | symbol, listener: (...args: never[]) => void, first = false): void => {
      listeners.push({ event, listener: listener as (...args: unknown[]) => void, first });
    };
    // BullMQ's verdict on a job whose processor returned (ahead of the application's listeners, so
    // the attempt's span has ended, with that outcome, when they run).
    on(
      'completed',
      (job: unknown) => {
        if (job !== null && typeof job === 'object') this.#awaiting(job)?.completedByBullmq();
      },
      true,
    );
    on('lockRenewalFailed', (ids: unknown) => {
      if (Array.isArray(ids)) for (const id of ids) this.#abandon(id, ERROR_LOCK_LOST, 'job lock lost');
    });
    // `errorMonitor` sees every `error` event before (and without changing) the application's own
    // `error` listeners: a worker with none still throws as without hoptrace.
    on(errorMonitor, (error: unknown) => this.#lockNotRenewed(error));
    on('stalled', (id: unknown) => this.#abandon(id, ERROR_STALLED, 'job stalled'));
    // BullMQ 5.x's stall check fails a job stalled more than `maxStalledCount` allows and tells only
    // `failed` (with this message), not `stalled`. Other failures are the processor's own: their
    // attempt has ended already, and a re-run of the job must not be touched.
    // BullMQ 6 also fails a job it moved to active without calling the processor: a flow parent
    // whose `failParentOnFailure` child failed, a job started past `maxStartedAttempts`. Without
    // hoptrace's help that attempt would have no span, and the job's failure no trace.
    // Ahead of the application's listeners, so the attempt span of a job BullMQ failed without the
    // processor exists when they run (a `deadLetterJobOptions` there links to it).
    on(
      'failed',
      (job: unknown, error: unknown) => {
        if (job === null || typeof job !== 'object') return;
        const awaiting = this.#awaiting(job);
        if (awaiting) {
          awaiting.failedByBullmq(error);
          return;
        }
        if (error === null || typeof error !== 'object') return;
        try {
          if ((error as { message?: unknown }).message === STALLED_TOO_OFTEN)
            this.#abandon((job as { id?: unknown }).id, ERROR_STALLED, STALLED_TOO_OFTEN);
          else if (this.#unprocessed && failedUnprocessed(worker, job, error))
            this.#unprocessed(worker, job, error);
        } catch {
          // the processor's own error with a throwing getter: not BullMQ's stall failure
        }
      },
      true,
    );
    on('closed', () => {
      for (const attempt of [...this.#open.values(), ...this.#displaced])
        attempt.abandon(ERROR_WORKER_CLOSED, 'worker closed while the job was processed');
    });
    this.#relisten = listen(worker, listeners);
  }

  /**
   * Has `handler` (the first one given) told of every job BullMQ fails without calling the
   * processor, from now on.
   */
  onUnprocessedFailure(handler: UnprocessedFailure): void {
    this.#unprocessed ??= handler;
  }

  /**
   * Tracks `attempt` until it ends. An older open attempt of the same job was given up by BullMQ,
   * unless its processor moved the job itself: that one stays open until its processor returns.
   */
  track(attempt: Attempt, awaitVerdict = false): void {
    this.#relisten();
    const id = attempt.jobId;
    if (id === undefined) return;
    if (awaitVerdict) attempt.awaitVerdict(this.#verdictWaitMs);
    const older = this.#open.get(id);
    if (older?.movedByProcessor()) this.#displaced.add(older);
    else older?.abandon(ERROR_STALLED, 'job handed to the worker again');
    this.#open.set(id, attempt);
    attempt.ownedBy(this);
  }

  release(attempt: Attempt): void {
    const id = attempt.jobId;
    if (id !== undefined && this.#open.get(id) === attempt) this.#open.delete(id);
    this.#displaced.delete(attempt);
  }

  /** The open attempt waiting for BullMQ's verdict on `job` (that very job object), if any. */
  #awaiting(job: object): Attempt | undefined {
    let id: unknown;
    try {
      id = (job as { id?: unknown }).id;
    } catch {
      return undefined;
    }
    if (typeof id !== 'string') return undefined;
    const attempt = this.#open.get(id);
    return attempt?.awaits(job) ? attempt : undefined;
  }

  /**
   * Ends the open attempt of the job whose lock BullMQ could not renew (the `error` event it emits
   * for it, on 5.x the only one naming the job): BullMQ gives up on it, as on 6.x's
   * `lockRenewalFailed`. Any other error is not about an attempt.
   */
  #lockNotRenewed(error: unknown): void {
    if (!(error instanceof Error)) return;
    try {
      const message = error.message;
      if (typeof message !== 'string') return;
      if (message.startsWith(LOCK_NOT_RENEWED))
        this.#abandon(message.slice(LOCK_NOT_RENEWED.length), ERROR_LOCK_LOST, 'job lock lost');
      else this.#lockGone(message);
    } catch {
      // an error with a throwing message getter: not BullMQ's
    }
  }

  /**
   * Ends the attempt waiting for BullMQ's verdict on the job BullMQ could not move: as `lock_lost`
   * for want of its lock (BullMQ records no outcome of it; the job stalls and runs again), as its
   * processor left it when the job no longer exists.
   */
  #lockGone(message: string): void {
    const gone = message.startsWith(JOB_GONE);
    const prefix = gone ? JOB_GONE : LOCK_GONE.find((p) => message.startsWith(p));
    if (prefix === undefined) return;
    const rest = message.slice(prefix.length);
    const attempt = this.#open.get(rest.slice(0, rest.lastIndexOf('. ')));
    if (!attempt?.awaitsVerdict()) return;
    if (gone) attempt.end();
    else
      attempt.abandon(ERROR_LOCK_LOST, 'BullMQ could not record the outcome of the job: its lock was gone');
  }

  /** Ends the open attempt of job `id`, unless its processor moved the job itself. */
  #abandon(id: unknown, type: string, message: string): void {
    if (typeof id !== 'string') return;
    const attempt = this.#open.get(id);
    if (attempt && !attempt.movedByProcessor()) attempt.abandon(type, message);
  }
}

/**
 * Whether BullMQ failed `job` without calling the processor, as BullMQ 6 decides it before the
 * call: the job carries a deferred failure (`failParentOnFailure`), or it was started more times than
 * the worker's `maxStartedAttempts` allows; either way with an `UnrecoverableError` of that reason.
 * May throw (hostile getters; the caller guards).
 */
function failedUnprocessed(worker: object, job: object, error: object): boolean {
  if ((error as { name?: unknown }).name !== 'UnrecoverableError') return false;
  const message = (error as { message?: unknown }).message;
  if (typeof message !== 'string') return false;
  const deferred = (job as { deferredFailure?: unknown }).deferredFailure;
  if (typeof deferred === 'string' && deferred !== '') return message === deferred;
  if (message !== STARTED_TOO_OFTEN) return false;
  const max = (worker as { opts?: { maxStartedAttempts?: unknown } }).opts?.maxStartedAttempts;
  const started = (job as { attemptsStarted?: unknown }).attemptsStarted;
  return typeof max === 'number' && max > 0 && typeof started === 'number' && max < started;
}

/** The worker's `lockDuration` (a positive number of milliseconds), else BullMQ's default. May throw. */
function lockDurationOf(worker: object): number {
  const value = (worker as { opts?: { lockDuration?: unknown } }).opts?.lockDuration;
  return typeof value === 'number' && value > 0 && Number.isFinite(value) ? value : DEFAULT_LOCK_DURATION_MS;
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
