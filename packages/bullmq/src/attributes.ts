/**
 * Attribute and metric names hoptrace emits for BullMQ. No OpenTelemetry convention exists for
 * BullMQ; generic keys come from `@hoptrace/core`, BullMQ-specific ones live under `bullmq.*`
 * (the namespace BullMQ's own telemetry also uses, with the same meaning where names coincide).
 *
 * @packageDocumentation
 */

/** `bullmq.job.name`: the job's name (the first argument of `queue.add`). */
export const ATTR_BULLMQ_JOB_NAME = 'bullmq.job.name';
/** `bullmq.job.attempt`: the attempt being processed, 1 for the first (`attemptsMade + 1`). */
export const ATTR_BULLMQ_JOB_ATTEMPT = 'bullmq.job.attempt';
/** `bullmq.job.attempts`: attempts configured for the job (`opts.attempts`), when set. */
export const ATTR_BULLMQ_JOB_ATTEMPTS = 'bullmq.job.attempts';
/** `bullmq.job.delay`: the job's delay in milliseconds (`opts.delay`), when > 0. */
export const ATTR_BULLMQ_JOB_DELAY = 'bullmq.job.delay';
/** `bullmq.job.priority`: the job's priority (`opts.priority`), when set. */
export const ATTR_BULLMQ_JOB_PRIORITY = 'bullmq.job.priority';
/** `bullmq.scheduler.id`: the job scheduler (or legacy repeatable job key) that produced the job. */
export const ATTR_BULLMQ_SCHEDULER_ID = 'bullmq.scheduler.id';
/** `bullmq.flow.parent`: the parent job's key (`bull:{queue}:{id}`) of a job in a flow. */
export const ATTR_BULLMQ_FLOW_PARENT = 'bullmq.flow.parent';
/**
 * `bullmq.job.time_in_queue`: milliseconds from the job becoming due to this attempt's start (first
 * attempt). The same wait is recorded in seconds by core's `hoptrace.messaging.time_in_queue` metric.
 */
export const ATTR_BULLMQ_TIME_IN_QUEUE = 'bullmq.job.time_in_queue';

/** `error.type` of an attempt ended by `processTimeoutMs` while its processor had not returned. */
export const ERROR_PROCESS_TIMEOUT = 'process_timeout';
/** `error.type` of an attempt whose job lock could not be renewed (`lockRenewalFailed`, or the worker's "could not renew lock" error). */
export const ERROR_LOCK_LOST = 'lock_lost';
/** `error.type` of an attempt whose job BullMQ found stalled and moved back to wait (or ran again). */
export const ERROR_STALLED = 'stalled';
/** `error.type` of an attempt still running when its worker closed (`close(true)`). */
export const ERROR_WORKER_CLOSED = 'worker_closed';
