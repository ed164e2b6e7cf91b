import { ATTR_MESSAGING_MESSAGE_ID, capValue } from '@hoptrace/core/adapter';
import type { Attributes, Span } from '@opentelemetry/api';
import { attemptCount } from './attempt-count.ts';
import {
  ATTR_BULLMQ_JOB_ATTEMPTS,
  ATTR_BULLMQ_JOB_DELAY,
  ATTR_BULLMQ_JOB_NAME,
  ATTR_BULLMQ_JOB_PRIORITY,
  ATTR_BULLMQ_SCHEDULER_ID,
} from './attributes.ts';
import type { TelemetryCarrierOptions } from './carrier.ts';

/** The job options hoptrace reads (a subset of BullMQ's `JobsOptions`, any version). */
export interface JobOptionsShape extends TelemetryCarrierOptions {
  jobId?: string | undefined;
  delay?: number | undefined;
  priority?: number | undefined;
  attempts?: number | undefined;
  repeat?: unknown;
}

/**
 * The producer-side attributes of one job: name, id (when the caller chose it), delay, priority and
 * attempts configured. Values of the wrong type (from untyped callers) are left out.
 */
export function jobAttributes(
  name: unknown,
  opts: JobOptionsShape | undefined,
  into: Attributes,
): Attributes {
  try {
    if (typeof name === 'string') into[ATTR_BULLMQ_JOB_NAME] = capValue(name);
    if (!opts || typeof opts !== 'object') return into;
    if (typeof opts.jobId === 'string' && opts.jobId !== '')
      into[ATTR_MESSAGING_MESSAGE_ID] = capValue(opts.jobId);
    if (typeof opts.delay === 'number' && opts.delay > 0) into[ATTR_BULLMQ_JOB_DELAY] = opts.delay;
    if (typeof opts.priority === 'number' && opts.priority > 0)
      into[ATTR_BULLMQ_JOB_PRIORITY] = opts.priority;
    const attempts = attemptCount(opts.attempts);
    if (attempts !== undefined) into[ATTR_BULLMQ_JOB_ATTEMPTS] = attempts;
    if (opts.repeat && typeof opts.repeat === 'object') {
      const key = (opts.repeat as { key?: unknown }).key;
      if (typeof key === 'string') into[ATTR_BULLMQ_SCHEDULER_ID] = capValue(key);
    }
  } catch {
    // The caller's options have a getter that throws: the attributes read so far, nothing thrown
    // (the span has started and must still end; BullMQ reports the options itself).
  }
  return into;
}

/** {@link jobAttributes} of a job-like `{ name, opts }` (a bulk job, a scheduler template), read guarded. */
export function jobAttributesOf(job: unknown, into: Attributes): Attributes {
  if (!job || typeof job !== 'object') return into;
  let name: unknown;
  let opts: unknown;
  try {
    ({ name, opts } = job as { name?: unknown; opts?: unknown });
  } catch {
    return into;
  }
  return jobAttributes(name, opts as JobOptionsShape | undefined, into);
}

/** The id of a job BullMQ returned, when it has one. */
export function jobIdOf(job: unknown): string | undefined {
  if (!job || typeof job !== 'object') return undefined;
  const id = (job as { id?: unknown }).id;
  return typeof id === 'string' && id !== '' ? capValue(id) : undefined;
}

/**
 * Puts the ids of the jobs BullMQ returned onto the spans about them (`spans[i]` for `jobs[i]`;
 * spans that do not record are skipped).
 */
export function setJobIds(spans: ReadonlyArray<Span | undefined>, result: unknown): void {
  const jobs = Array.isArray(result) ? result : [result];
  for (let i = 0; i < spans.length; i++) {
    const span = spans[i];
    if (!span?.isRecording()) continue;
    const id = jobIdOf(jobs[i]);
    if (id !== undefined) span.setAttribute(ATTR_MESSAGING_MESSAGE_ID, id);
  }
}
