import { ATTR_HOPTRACE_ATTEMPT_FINAL, ATTR_HOPTRACE_ERROR_RETRYABLE } from '@hoptrace/core';
import { type Instrumentation, Operation, type OperationMetric } from '@hoptrace/core/adapter';
import type { Span, TimeInput } from '@opentelemetry/api';
import { ERROR_LOCK_LOST } from './attributes.ts';
import { rememberFailedAttempt } from './dead-letter.ts';
import { type JobMarks, jobMarks, movedSince } from './job-moves.ts';
import { bullmqErrorName } from './scope.ts';

/** BullMQ's error that fails a job at once, whatever attempts remain. */
const UNRECOVERABLE: ReadonlySet<string> = new Set(['UnrecoverableError']);

/**
 * Whether BullMQ would give up on `job` after this attempt for a reason other than its attempt count
 * (read when the attempt fails): a job `discard()`ed by its processor (BullMQ 5.x), or one started as
 * many times as the worker's `maxStartedAttempts` allows (BullMQ 6). BullMQ reads that option from
 * the job's `queue` (the worker that fetched it, also for a job fetched with `getNextJob` and
 * processed by hand); the worker calling the processor is the fallback, then `configured` (the
 * processor's own `maxStartedAttempts` option, all a sandboxed processor has). Never throws.
 */
function givenUpByBullmq(job: object, worker: unknown, configured: number | undefined): boolean {
  try {
    if ((job as { discarded?: unknown }).discarded === true) return true;
    const max =
      maxStartedAttemptsOf((job as { queue?: unknown }).queue) ?? maxStartedAttemptsOf(worker) ?? configured;
    const started = (job as { attemptsStarted?: unknown }).attemptsStarted;
    return typeof max === 'number' && max > 0 && typeof started === 'number' && max <= started;
  } catch {
    return false;
  }
}

/** The `maxStartedAttempts` option of a BullMQ worker, when it has one. May throw (hostile getters). */
function maxStartedAttemptsOf(worker: unknown): unknown {
  if (worker === null || typeof worker !== 'object') return undefined;
  return (worker as { opts?: { maxStartedAttempts?: unknown } }).opts?.maxStartedAttempts;
}

/**
 * Whether BullMQ can read `error` as it does to fail a job (`message`, `name`, `stack`): it cannot
 * read `null` or `undefined`, nor a value whose getters throw. Never throws.
 */
function readableByBullmq(error: unknown): boolean {
  if (error === null || error === undefined) return false;
  try {
    const { message, name, stack } = error as { message?: unknown; name?: unknown; stack?: unknown };
    void message;
    void name;
    void stack;
    return true;
  } catch {
    return false;
  }
}

/** The job's `finishedOn` (set by BullMQ when it finishes the job), or `undefined`. Never throws. */
function finishedOnOf(job: object): unknown {
  try {
    return (job as { finishedOn?: unknown }).finishedOn;
  } catch {
    return undefined;
  }
}

/** Something an open attempt is registered with (a worker watch), told when the attempt ends. */
export interface AttemptOwner {
  release(attempt: Attempt): void;
}

/**
 * One processing attempt of a job: core's `Operation` plus what only BullMQ knows. A failure thrown
 * by the processor says whether it is the job's last attempt (`hoptrace.attempt.final`: attempts
 * exhausted, an `UnrecoverableError`, a discarded job or the worker's `maxStartedAttempts` reached) and, unless the classifier said, whether BullMQ will retry it
 * (`hoptrace.error.retryable`). An attempt BullMQ gives up on (lock lost, stalled, worker closed, or
 * `processTimeoutMs`) is ended by {@link abandon} even if the processor never returns; what the
 * processor does later is then ignored (and still reaches BullMQ unchanged). An attempt a worker runs
 * ends when BullMQ has recorded its outcome (see {@link awaitVerdict}).
 */
export class Attempt extends Operation {
  /** The job id (as BullMQ gave it), for the worker watch. */
  readonly jobId: string | undefined;
  readonly #job: object;
  readonly #span: Span | undefined;
  readonly #lastByCount: boolean;
  readonly #worker: unknown;
  readonly #maxStartedAttempts: number | undefined;
  /** The job's marks at the start, read only for an attempt a worker runs (see `movedByProcessor`). */
  readonly #marks: JobMarks | undefined;
  #unrecoverable = false;
  #abandoned = false;
  #owner: AttemptOwner | undefined;
  /** How long the attempt waits for BullMQ's verdict once its processor returned (see {@link awaitVerdict}). */
  #verdictWaitMs: number | undefined;
  /** The job's `finishedOn` at the start, when the attempt waits for BullMQ's verdict. */
  #finishedOnAtStart: unknown;
  /** Set once the processor returned and the attempt waits for BullMQ to record the job's outcome. */
  #verdictTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the failure noted is a value BullMQ cannot read (it then reports only an `error`). */
  #unreadable = false;
  /** Whether BullMQ gave the job up with this failure (read from the job once BullMQ failed it). */
  #finalByBullmq: boolean | undefined;

  /**
   * @param last - whether this attempt is the last one BullMQ makes if it fails (attempt number >=
   * `opts.attempts`).
   * @param worker - the BullMQ `Worker` running the attempt, when known (its `maxStartedAttempts`).
   * @param maxStartedAttempts - the processor's `maxStartedAttempts` option, used when neither the
   * job's queue nor the worker has one (a sandboxed processor).
   */
  constructor(
    instr: Instrumentation,
    span: Span | undefined,
    metric: OperationMetric | undefined,
    job: object,
    jobId: string | undefined,
    last: boolean,
    worker?: unknown,
    maxStartedAttempts?: number,
  ) {
    super(instr, span, metric);
    this.#job = job;
    this.#span = span;
    this.jobId = jobId;
    this.#lastByCount = last;
    this.#worker = worker;
    this.#maxStartedAttempts = maxStartedAttempts;
    this.#marks = worker === undefined ? undefined : jobMarks(job);
  }

  /**
   * Whether the processor moved its job itself (`moveToCompleted`, `moveToFailed`, `moveToDelayed`)
   * since the attempt started: BullMQ then fails to renew the job's lock and may hand the job out
   * again while the processor still runs, without giving up on this attempt. Always `false` for an
   * attempt no worker runs.
   */
  movedByProcessor(): boolean {
    return this.#marks !== undefined && movedSince(this.#job, this.#marks);
  }

  /**
   * Holds the end, once the processor returned, until BullMQ has recorded the job's outcome: the
   * worker's `completed` or `failed` event for this job (see {@link completedByBullmq},
   * {@link failedByBullmq}), or BullMQ giving the attempt up (lock lost, stalled, worker closed). A
   * processor's success may still fail the job (BullMQ cannot complete it: "has pending
   * dependencies"), a failure may be final though attempts remain (a backoff strategy returning -1).
   * Not held for a control-flow signal or a job the processor moved itself (BullMQ reports neither),
   * nor for a thrown value BullMQ cannot read (`null`, a throwing `message` getter: it fails to fail
   * the job and reports only an `error`),
   * nor past `maxWaitMs` (the worker's `lockDuration`: the job's lock, no longer renewed once the
   * processor returned, is gone by then and BullMQ cannot record this attempt any more): then the
   * attempt ends as `lock_lost`.
   */
  awaitVerdict(maxWaitMs: number): void {
    this.#verdictWaitMs = maxWaitMs;
    this.#finishedOnAtStart = finishedOnOf(this.#job);
  }

  /** Whether the processor returned and the attempt waits for BullMQ's verdict. */
  awaitsVerdict(): boolean {
    return this.#verdictTimer !== undefined && !this.ended;
  }

  /** Whether the attempt waits for BullMQ's verdict on `job` (this very job object). */
  awaits(job: object): boolean {
    return job === this.#job && this.awaitsVerdict();
  }

  /** BullMQ completed the job: the attempt ends as the processor left it. */
  completedByBullmq(): void {
    this.end();
  }

  /**
   * BullMQ failed the job with `error` (the processor's, or its own when it could not complete the
   * job): the attempt ends failed, final when BullMQ finished the job (rather than retrying it).
   */
  failedByBullmq(error: unknown): void {
    if (this.ended) return;
    this.noteFailure(error);
    const finishedOn = finishedOnOf(this.#job);
    this.#finalByBullmq = typeof finishedOn === 'number' && finishedOn !== this.#finishedOnAtStart;
    this.end();
  }

  protected override outcome(end: boolean): void {
    const waitMs = this.#verdictWaitMs;
    if (
      !end ||
      waitMs === undefined ||
      this.ended ||
      this.#verdictTimer !== undefined ||
      !this.#bullmqTells()
    ) {
      super.outcome(end);
      return;
    }
    const timer = setTimeout(
      () => this.abandon(ERROR_LOCK_LOST, 'BullMQ recorded no outcome of the job before its lock expired'),
      waitMs,
    );
    timer.unref?.();
    this.#verdictTimer = timer;
  }

  /**
   * Whether BullMQ reports what it did with the job once the processor returned: not for a
   * control-flow signal (BullMQ moves the job silently), nor for a job the processor moved itself.
   */
  #bullmqTells(): boolean {
    if (this.failure === undefined && this.controlFlow !== undefined) return false;
    if (this.failure !== undefined && this.#unreadable) return false;
    return !this.movedByProcessor();
  }

  /**
   * The processor threw `error` synchronously: noted, then the attempt ends, or waits for BullMQ's
   * verdict as for any outcome of the processor.
   */
  threw(error: unknown): void {
    this.noteFailure(error);
    this.outcome(true);
  }

  /** A timed-out attempt is abandoned: BullMQ decides its fate (see {@link abandon}). */
  protected override expire(errorType: string, message: string): void {
    this.abandon(errorType, message);
  }

  /** Registers the attempt with `owner` until it ends. */
  ownedBy(owner: AttemptOwner): void {
    this.#owner = owner;
  }

  /** Ends an attempt BullMQ gave up on, with status ERROR and `error.type` = `type`. No-op once ended. */
  abandon(type: string, message: string): void {
    if (this.ended) return;
    this.#abandoned = true;
    this.noteFailureType(type, message);
    this.end();
  }

  /**
   * The process shuts down with the processor still running (`endOpenSpans`): like an abandoned
   * attempt, its fate is BullMQ's (the job stalls and runs again), so no final or retryable verdict.
   */
  override endAtShutdown(): void {
    if (this.ended) return;
    this.#abandoned = true;
    super.endAtShutdown();
  }

  /**
   * `WaitingError` came with `Job.moveToWait` (BullMQ 5.41): a BullMQ whose jobs lack that method
   * fails a job that throws an error of that name, so it is a failure here too.
   */
  protected override controlFlowOf(error: unknown): string | undefined {
    const signal = super.controlFlowOf(error);
    if (signal !== 'WaitingError') return signal;
    try {
      return typeof (this.#job as { moveToWait?: unknown }).moveToWait === 'function' ? signal : undefined;
    } catch {
      return undefined;
    }
  }

  override noteFailure(error: unknown, fallbackType?: string): void {
    if (!this.ended && this.failure === undefined) {
      // BullMQ never retries an UnrecoverableError, nor an error of a class extending it.
      this.#unrecoverable = bullmqErrorName(error, UNRECOVERABLE) !== undefined;
      this.#unreadable = !readableByBullmq(error);
    }
    super.noteFailure(error, fallbackType);
    if (this.failure !== undefined && this.#span?.isRecording())
      rememberFailedAttempt(this.#job, this.#span.spanContext());
  }

  override end(endTime?: TimeInput): boolean {
    if (this.ended) return false;
    const failure = this.failure;
    // Only a thrown failure is judged here; an abandoned attempt's fate is BullMQ's (its stall count).
    if (failure !== undefined && !this.#abandoned) {
      const final =
        this.#finalByBullmq ??
        (this.#lastByCount ||
          this.#unrecoverable ||
          givenUpByBullmq(this.#job, this.#worker, this.#maxStartedAttempts));
      this.setAttribute(ATTR_HOPTRACE_ATTEMPT_FINAL, final);
      if (failure.retryable === undefined) this.setAttribute(ATTR_HOPTRACE_ERROR_RETRYABLE, !final);
    }
    if (this.#verdictTimer !== undefined) clearTimeout(this.#verdictTimer);
    this.#owner?.release(this);
    return super.end(endTime);
  }
}
