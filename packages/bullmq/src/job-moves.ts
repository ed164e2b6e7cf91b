/**
 * What a BullMQ `Job` object shows of the moves its processor makes itself, read at an attempt's
 * start: `moveToCompleted` and `moveToFailed` count the attempt (`attemptsMade`), `moveToDelayed`
 * sets `delay` (BullMQ 5 and 6 alike). `moveToWait` and `moveToWaitingChildren` leave no mark on the
 * object.
 */
export interface JobMarks {
  readonly attemptsMade: unknown;
  readonly delay: unknown;
}

/** The marks of `job` now, or `undefined` when they cannot be read. Never throws. */
export function jobMarks(job: object): JobMarks | undefined {
  try {
    const { attemptsMade, delay } = job as { attemptsMade?: unknown; delay?: unknown };
    return { attemptsMade, delay };
  } catch {
    return undefined;
  }
}

/**
 * Whether the processor moved `job` itself (completed, failed or delayed it) since `marks` were
 * read: BullMQ no longer holds the job for this attempt, by the processor's own doing. Never throws.
 */
export function movedSince(job: object, marks: JobMarks): boolean {
  const now = jobMarks(job);
  return now !== undefined && (now.attemptsMade !== marks.attemptsMade || now.delay !== marks.delay);
}
