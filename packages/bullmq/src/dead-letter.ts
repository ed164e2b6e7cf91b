import {
  type ErrorClassifier,
  FAILURE_HEADERS,
  failureHeaders,
  HEADER_FAILED_CONTEXT_PREFIX,
} from '@hoptrace/core';
import {
  checkFailureCopyOptions,
  FAILURE_COPY_OPTION_KEYS,
  type FailureCopyOptions,
  injectContextUnchecked,
  type OptionKeys,
} from '@hoptrace/core/adapter';
import {
  type Context,
  context as contextApi,
  ROOT_CONTEXT,
  type SpanContext,
  trace,
} from '@opentelemetry/api';
import { attemptCount } from './attempt-count.ts';
import { carrierContext, MAX_METADATA_LENGTH, parseCarrier, withCarrierMap } from './carrier.ts';
import type { JobOptionsShape } from './job-attributes.ts';
import { type RunJobLike, scheduledRun } from './scheduled-run.ts';

/** The members of a failed job {@link deadLetterJobOptions} reads (a BullMQ `Job`, any version). */
export interface FailedJobLike {
  readonly id?: string | undefined;
  readonly queueName?: string | undefined;
  /** Set on a run of a job scheduler (or a legacy repeatable job): its own trace is the copy's. */
  readonly repeatJobKey?: string | undefined;
  readonly queueQualifiedName?: string | undefined;
  readonly prefix?: string | undefined;
  readonly timestamp?: number | undefined;
  readonly attemptsMade?: number | undefined;
  readonly opts?: JobOptionsShape | undefined;
}

/** Options for {@link deadLetterJobOptions}. */
export interface DeadLetterOptions<O extends object> extends FailureCopyOptions {
  /**
   * Job options of the dead-letter job (`attempts`, `removeOnComplete`...); copied, never mutated.
   * Default: none.
   * @example { opts: { removeOnComplete: true } }
   */
  opts?: O | undefined;
  /**
   * The classifier the processor's wrapper uses, so the lineage names the same `error.type`.
   * Default: none (the error's code or class name).
   */
  classifyError?: ErrorClassifier | undefined;
  /**
   * Attempts made, for `hoptrace-attempts`. Default: `job.attemptsMade` (in a `failed` listener, the
   * failed attempt included; inside the processor, only the attempts before the current one).
   * @example { attempts: job.attemptsMade + 1 }
   */
  attempts?: number | undefined;
  /**
   * The failed attempt's context. Default: the attempt hoptrace traced for this job object (so a
   * `worker.on('failed')` listener finds it), else the active context (call it in the processor).
   */
  context?: Context | undefined;
}

/**
 * The option names {@link deadLetterJobOptions} takes (others throw). Only these: the keys of `opts`
 * are the copy's job options, BullMQ's to judge.
 */
const DEAD_LETTER_OPTION_KEYS = {
  ...FAILURE_COPY_OPTION_KEYS,
  opts: true,
} as const satisfies OptionKeys<DeadLetterOptions<object>>;

/** The last failed attempt's span context per job object (weak: gone with the job). */
const failedAttempts = new WeakMap<object, SpanContext>();

/** Remembers the span of `job`'s failed attempt, for {@link deadLetterJobOptions}. */
export function rememberFailedAttempt(job: object, spanContext: SpanContext): void {
  failedAttempts.set(job, spanContext);
}

/**
 * Job options for the dead-letter (or retry) copy of a job that failed for good: its creation
 * context is kept (so the dead-letter consumer continues the original trace; for a run of a job
 * scheduler, the run's own trace, as its attempts) and core's lineage
 * fields are added to the same carrier (`opts.telemetry.metadata`, a JSON map of plain strings):
 * `hoptrace-original-destination` (the failed job's queue), `hoptrace-error-type`,
 * `hoptrace-error-message` (capped), `hoptrace-error-retryable`, `hoptrace-attempts` and the failed
 * attempt's context as `hoptrace-failed-traceparent` (through the registered propagator). A wrapped
 * processor of the dead-letter queue links to that attempt with `hoptrace.failure.*` attributes.
 * The job never makes it throw; an option it does not take does (a TypeError naming
 * `deadLetterJobOptions`, the option and the one it most likely misspells; a job option such as
 * `removeOnComplete` given beside `opts` rather than inside it is one; an option set to `undefined`
 * is let through, and the keys of `opts` are not checked), and so do options that are not an object
 * (`null` included), an `attempts` that is not a non-negative integer, a `classifyError` that is not
 * a function and an `options.context` that is not an OpenTelemetry Context. Never mutates the job or
 * the options.
 *
 * @example
 * worker.on('failed', async (job, error) => {
 *   if (job && job.attemptsMade >= (job.opts.attempts ?? 1))
 *     await deadLetters.add(job.name, job.data, deadLetterJobOptions(job, error));
 * });
 */
export function deadLetterJobOptions<O extends object = Record<string, unknown>>(
  job: FailedJobLike,
  error: unknown,
  options?: DeadLetterOptions<O>,
): O {
  const o = checkFailureCopyOptions('deadLetterJobOptions', options, DEAD_LETTER_OPTION_KEYS);
  const original = job && typeof job === 'object' ? parseCarrier(job.opts) : undefined;
  // A scheduled run's attempts ran in the run's own trace: its copy continues that one, not the
  // scheduler's (where the copies of every run would pile up).
  const run = job && typeof job === 'object' ? scheduledRunCarrier(job, original) : undefined;
  const carrier: Record<string, unknown> = run ?? {};
  // The creation context (and baggage) travel on; an earlier failure's lineage and flow keys do not.
  if (original && !run)
    for (const key in original) if (!key.startsWith('hoptrace-')) carrier[key] = original[key];
  const known = job && typeof job === 'object' ? failedAttempts.get(job) : undefined;
  const failedContext =
    o.context ?? (known ? trace.setSpanContext(ROOT_CONTEXT, known) : contextApi.active());
  const lineage = failureHeaders({
    error,
    destination: typeof job?.queueName === 'string' ? job.queueName : '',
    attempts: o.attempts ?? attemptCount(job?.attemptsMade),
    classifyError: o.classifyError,
    context: failedContext,
  });
  addLineage(carrier, lineage);
  const opts = { ...o.opts } as O & JobOptionsShape;
  // The copy carries this carrier, not a context the caller's options held.
  if (opts.telemetry) opts.telemetry = { ...opts.telemetry, metadata: undefined, omitContext: undefined };
  return withCarrierMap(opts, carrier);
}

/**
 * The carrier of the run `job` is, when it is a run of a job scheduler (or a legacy repeatable job):
 * the run's context (the parent of its attempts, derived as the processor derives it) with the
 * scheduler's baggage, injected through the registered propagator. `undefined` for any other job, or
 * one whose members cannot be read. Never throws.
 */
function scheduledRunCarrier(
  job: FailedJobLike,
  original: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  try {
    const { repeatJobKey, id, queueName } = job;
    if (typeof repeatJobKey !== 'string' || typeof id !== 'string') return undefined;
    const queue = typeof queueName === 'string' ? queueName : undefined;
    const run = scheduledRun(job as RunJobLike, queue, id, carrierContext(original));
    return injectContextUnchecked(run.context);
  } catch {
    return undefined;
  }
}

/** Lineage fields by what they are worth when not all fit: the failed attempt's context first. */
function lineageRank(key: string): number {
  if (key.startsWith(HEADER_FAILED_CONTEXT_PREFIX)) return 0;
  switch (key) {
    case FAILURE_HEADERS.errorType:
      return 1;
    case FAILURE_HEADERS.attempts:
      return 2;
    case FAILURE_HEADERS.retryable:
      return 3;
    case FAILURE_HEADERS.destination:
      return 4;
    default:
      return 5; // the error message, the longest
  }
}

/**
 * Adds `lineage` to `carrier`, all of it when the serialized carrier stays within
 * {@link MAX_METADATA_LENGTH} (metadata past it is never read, so the copy would lose its trace with
 * its lineage); else as many fields as fit, by {@link lineageRank}. The copied creation context and
 * the other keys the job carried come first: they fitted on the failed job.
 */
function addLineage(carrier: Record<string, unknown>, lineage: Record<string, string>): void {
  const base = JSON.stringify(carrier).length;
  let length = base;
  for (const key in lineage) {
    carrier[key] = lineage[key];
    length += JSON.stringify(key).length + JSON.stringify(lineage[key]).length + 2; // `,` and `:`
  }
  if (length <= MAX_METADATA_LENGTH) return;
  for (const key in lineage) delete carrier[key];
  length = base;
  for (const key of Object.keys(lineage).sort((a, b) => lineageRank(a) - lineageRank(b))) {
    const added = JSON.stringify(key).length + JSON.stringify(lineage[key]).length + 2;
    if (length + added > MAX_METADATA_LENGTH) continue;
    carrier[key] = lineage[key];
    length += added;
  }
}
