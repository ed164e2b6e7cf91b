import { ATTR_MESSAGING_MESSAGE_ID } from '@hoptrace/core';
import type { Attributes } from '@opentelemetry/api';
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
  if (typeof name === 'string') into[ATTR_BULLMQ_JOB_NAME] = name;
  if (!opts || typeof opts !== 'object') return into;
  if (typeof opts.jobId === 'string' && opts.jobId !== '') into[ATTR_MESSAGING_MESSAGE_ID] = opts.jobId;
  if (typeof opts.delay === 'number' && opts.delay > 0) into[ATTR_BULLMQ_JOB_DELAY] = opts.delay;
  if (typeof opts.priority === 'number' && opts.priority > 0) into[ATTR_BULLMQ_JOB_PRIORITY] = opts.priority;
  if (typeof opts.attempts === 'number') into[ATTR_BULLMQ_JOB_ATTEMPTS] = opts.attempts;
  if (opts.repeat && typeof opts.repeat === 'object') {
    const key = (opts.repeat as { key?: unknown }).key;
    if (typeof key === 'string') into[ATTR_BULLMQ_SCHEDULER_ID] = key;
  }
  return into;
}

/** The id of a job BullMQ returned, when it has one. */
export function jobIdOf(job: unknown): string | undefined {
  if (!job || typeof job !== 'object') return undefined;
  const id = (job as { id?: unknown }).id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}
