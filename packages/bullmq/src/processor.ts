import { type FailureLineage, readFailureLineage } from '@hoptrace/core';
import {
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_SERVER_ADDRESS,
  asAwaited,
  capValue,
  createInstrumentation,
  existingWrapper,
  type Instrumentation,
  lineageAttributes,
  lineageLinks,
  type MessageContext,
  type MetricServer,
  metricServerOf,
  OperationTemplates,
  operationMetric,
  registerWrapper,
  runHook,
  setSpanAttributes,
  startConsumerSpan,
  TIME_IN_QUEUE_MAX_SKEW_MS,
  timeInQueueSeconds,
  withFailureLineage,
} from '@hoptrace/core/adapter';
import { type Attributes, context as contextApi, type Link, ROOT_CONTEXT } from '@opentelemetry/api';
import { Attempt } from './attempt.ts';
import { attemptCount } from './attempt-count.ts';
import {
  ATTR_BULLMQ_FLOW_PARENT,
  ATTR_BULLMQ_JOB_ATTEMPT,
  ATTR_BULLMQ_JOB_ATTEMPTS,
  ATTR_BULLMQ_JOB_NAME,
  ATTR_BULLMQ_SCHEDULER_ID,
  ATTR_BULLMQ_TIME_IN_QUEUE,
  ERROR_PROCESS_TIMEOUT,
} from './attributes.ts';
import { CHILDREN_CARRIER_KEY, carrierContext, childLinks, parseCarrier } from './carrier.ts';
import { childExitWatch } from './child-exit.ts';
import type { JobOptionsShape } from './job-attributes.ts';
import { jobPrefix } from './job-prefix.ts';
import { BULLMQ_OPERATIONS, type BullmqOperation } from './operations.ts';
import { assertProcessorOptions, type ProcessorTracingOptions } from './options.ts';
import { scheduledRun } from './scheduled-run.ts';
import { BULLMQ_SCOPE } from './scope.ts';
import { serverAttributes } from './server.ts';
import { type UnprocessedFailure, workerWatch } from './worker-watch.ts';

/**
 * The members of a job hoptrace reads: a BullMQ `Job` in a worker, or the serialized job a sandboxed
 * processor receives. All are optional because the job comes from Redis: missing or odd values are
 * skipped, never thrown on.
 */
export interface JobLike {
  id?: string | undefined;
  name?: string | undefined;
  queueName?: string | undefined;
  /** `{prefix}:{queue}`: on a `Job` in a worker, and on the job BullMQ 6 hands a sandboxed processor. */
  queueQualifiedName?: string | undefined;
  /** The key prefix: on the job BullMQ 5 hands a sandboxed processor (a getter on BullMQ's `Job`). */
  prefix?: string | undefined;
  opts?: JobOptionsShape | undefined;
  attemptsMade?: number | undefined;
  attemptsStarted?: number | undefined;
  timestamp?: number | undefined;
  delay?: number | undefined;
  repeatJobKey?: string | undefined;
  parentKey?: string | undefined;
  stacktrace?: unknown;
}

/** Any processor function: `(job, token?, signal?) => result` (sync or async). */
// biome-ignore lint/suspicious/noExplicitAny: the wrapper keeps the processor's exact signature
export type ProcessorLike = (job: any, ...rest: any[]) => unknown;

/**
 * Wraps a BullMQ processor so each attempt runs in a `process {queue}` CONSUMER span, active while
 * the processor runs. Use it as `new Worker(name, traceProcessor(fn))` or as the default export of a
 * sandboxed processor file (the serialized job carries the same options).
 *
 * - The job's creation context (from `opts.telemetry.metadata`) is the parent under the default
 *   `relation: 'parent'`, so attempts are siblings under it; `bullmq.job.attempt` numbers them.
 * - Jobs made by a job scheduler (or a repeatable job) start a new trace per run, linked to the
 *   scheduling context, with `bullmq.scheduler.id`. Every attempt of one run lands in that run's
 *   trace, as siblings: the run's trace id and root span id are derived from the job (its id, key
 *   prefix and creation time) and the scheduling context, so a retry in another worker process
 *   finds the same trace, and the same job id in another deployment does not (the root itself is
 *   virtual: no span is exported for it).
 * - BullMQ's control-flow signals (`DelayedError`, `WaitingError`, `WaitingChildrenError`,
 *   `RateLimitError`) are not failures: the attempt's span ends with status unset and a
 *   `hoptrace.control_flow` event naming the signal.
 * - The worker's own context where it was created never leaks into processing.
 * - Whatever the processor throws sets ERROR and `error.type` (your `classifyError` may name it) and
 *   is rethrown unchanged, so BullMQ's retry, backoff and failure handling (and the job's
 *   `failedReason`) are exactly as without hoptrace. A failed attempt also says whether it was the
 *   last (`hoptrace.attempt.final`) and whether BullMQ retries it (`hoptrace.error.retryable`, unless
 *   the classifier said).
 * - In a worker, the span ends once BullMQ recorded the job's outcome (its `completed` or `failed`
 *   event), so a job BullMQ fails after the processor returned (pending dependencies) has status
 *   ERROR, and BullMQ's own retry verdict (a backoff strategy's -1) sets `hoptrace.attempt.final`;
 *   a job whose lock is gone by then ends `lock_lost`, at the latest after the worker's `lockDuration`.
 * - An attempt BullMQ gives up on (lock lost, stalled, worker force-closed, or `processTimeoutMs`)
 *   ends with status ERROR even if the processor never returns.
 * - A dead-letter copy made with `deadLetterJobOptions` continues the original trace and links
 *   to the failed attempt, with `hoptrace.failure.*` attributes.
 * - The processor's arity is kept, so BullMQ still passes an `AbortSignal` to `(job, token, signal)`.
 * - Missing, malformed, oversized or foreign metadata never throws: the job is processed in a new
 *   trace (a foreign but valid context is continued).
 *
 * Idempotent: wrapping a wrapped processor returns it. Bad options throw a TypeError here.
 */
export function traceProcessor<F extends ProcessorLike>(
  processor: F,
  options: ProcessorTracingOptions = {},
): F {
  if (typeof processor !== 'function') {
    throw new TypeError(`Expected \`processor\` to be a function, got ${String(processor)}`);
  }
  // Options are validated also when the processor was wrapped before (they are then ignored).
  const instr = createInstrumentation(BULLMQ_SCOPE, options);
  assertProcessorOptions(options);
  const existing = existingWrapper(processor);
  if (existing) return existing;
  // A scheduled run's parent is its virtual run root (never exported): no budget, no link to it.
  const scheduled: Instrumentation = {
    ...instr,
    relation: 'parent',
    traceBudget: undefined,
    parentLink: false,
  };
  const templates = new OperationTemplates(
    instr.system,
    BULLMQ_OPERATIONS,
    noAttributes,
    instr.legacyAttributes,
  );
  // Per worker calling the processor: its Redis connection gives `server.address` / `server.port`
  // (on its spans and its metrics).
  const unknownWorker: WorkerScope = { templates, server: undefined };
  const workerScopes = new WeakMap<object, WorkerScope>();
  const scopeOf = (self: unknown): WorkerScope => {
    if (self === null || typeof self !== 'object') return unknownWorker;
    let found = workerScopes.get(self);
    if (!found) {
      const server = workerServer(self);
      found = server
        ? {
            templates: new OperationTemplates(
              instr.system,
              BULLMQ_OPERATIONS,
              () => server,
              instr.legacyAttributes,
            ),
            server: metricServerOf(server),
          }
        : unknownWorker;
      workerScopes.set(self, found);
    }
    return found;
  };
  const metrics = instr.metricAttributes;
  const metricsOn = instr.metrics !== undefined;
  const fixedQueue = options.queueName;
  const onProcess = options.onProcess;
  const timeoutMs = options.processTimeoutMs;
  const maxStarted = options.maxStartedAttempts;

  // The traced call of `fn`: the processor, or (for a job BullMQ failed without calling the
  // processor) a stand-in throwing BullMQ's failure.
  const traced = (fn: ProcessorLike, unprocessed = false) =>
    function (this: unknown, job: JobLike, ...rest: unknown[]): unknown {
      if (!job || typeof job !== 'object') return fn.call(this, job, ...rest);
      const queue = fixedQueue ?? (typeof job.queueName === 'string' ? job.queueName : undefined);
      // BullMQ's parseInt of the job hash's `atm`: NaN, negative or past 2^53 when written by hand.
      // A job BullMQ failed without the processor is read after its failure counted one more attempt.
      const attemptsMade = attemptCount(unprocessed ? (job.attemptsMade ?? 1) - 1 : (job.attemptsMade ?? 0));
      const schedulerId = typeof job.repeatJobKey === 'string' ? job.repeatJobKey : undefined;
      const jobId = typeof job.id === 'string' ? job.id : undefined;
      const carrier = parseCarrier(job.opts);
      const creation = carrierContext(carrier);
      const lineage = carrier ? readFailureLineage(carrier) : undefined;
      const worker = scopeOf(this);
      const template = worker.templates.of('process').get(queue);
      const { span, context } =
        schedulerId === undefined || jobId === undefined
          ? startConsumerSpan(
              instr,
              template,
              creation,
              ROOT_CONTEXT,
              extraLinks(carrier, lineage, job, jobId),
            )
          : startConsumerSpan(
              scheduled,
              template,
              // The job's own queue name where it has one (as `deadLetterJobOptions` reads it),
              // whatever the `queueName` option calls it in spans.
              scheduledRun(job, typeof job.queueName === 'string' ? job.queueName : queue, jobId, creation),
              ROOT_CONTEXT,
              creationLink(creation),
            );
      const metric = operationMetric(
        metricsOn,
        metrics,
        'process',
        'process',
        queue,
        1,
        undefined,
        worker.server,
      );
      const recording = span?.isRecording() === true;
      if (firstStart(job, attemptsMade) && (metric || recording)) {
        const waitedMs = timeInQueueMs(job);
        if (waitedMs !== undefined) {
          if (metric) instr.metrics?.timeInQueue.record(waitedMs / 1000, metric.attributes);
          if (recording) span?.setAttribute(ATTR_BULLMQ_TIME_IN_QUEUE, waitedMs);
        }
      }
      const configured = job.opts?.attempts;
      const maxAttempts = typeof configured === 'number' && configured > 0 ? configured : 1;
      if (recording && span) {
        const attributes: Attributes = {};
        if (attemptsMade !== undefined) attributes[ATTR_BULLMQ_JOB_ATTEMPT] = attemptsMade + 1;
        if (jobId !== undefined) attributes[ATTR_MESSAGING_MESSAGE_ID] = capValue(jobId);
        if (typeof job.name === 'string') attributes[ATTR_BULLMQ_JOB_NAME] = capValue(job.name);
        // BullMQ stores `attempts: 0` for a job added without attempts: only a configured count is one.
        const attempts = attemptCount(configured);
        if (attempts !== undefined && attempts > 0) attributes[ATTR_BULLMQ_JOB_ATTEMPTS] = attempts;
        if (schedulerId !== undefined) attributes[ATTR_BULLMQ_SCHEDULER_ID] = capValue(schedulerId);
        if (typeof job.parentKey === 'string') attributes[ATTR_BULLMQ_FLOW_PARENT] = capValue(job.parentKey);
        if (lineage) Object.assign(attributes, lineageAttributes(lineage));
        setSpanAttributes(span, attributes, instr.legacyAttributes);
        if (onProcess) runHook('onProcess', onProcess, span, job);
      }
      const runIn = withFailureLineage(context, lineage);
      // Nothing to end or record (unsampled fast path, or a span that does not record, and no
      // metrics): the processor runs straight in the job's context, the trace id still flowing to what
      // it sends. A non-recording span is ended at once (a no-op for the SDK's).
      // The worker's watch exists from its first job on, sampled or not: a sampled job BullMQ fails
      // later without calling the processor gets its span even if every job before it was unsampled.
      const watch = workerWatch(this);
      watch?.onUnprocessedFailure(failUnprocessed);
      if (!recording && !metric) {
        span?.end();
        return contextApi.with(runIn, fn, this, job, ...rest);
      }
      const attempt = new Attempt(
        instr,
        span,
        metric,
        job,
        jobId,
        attemptsMade !== undefined && attemptsMade + 1 >= maxAttempts,
        watch ? this : undefined,
        maxStarted,
      );
      // A sandboxed child (no worker here) that exits mid-attempt still ends the attempt's span.
      // The attempt of a job BullMQ failed without the processor ends at once (BullMQ's verdict is in).
      if (watch) watch.track(attempt, !unprocessed);
      else childExitWatch()?.track(attempt);
      if (timeoutMs !== undefined)
        attempt.expireAfter(
          timeoutMs,
          ERROR_PROCESS_TIMEOUT,
          `job not processed within processTimeoutMs (${timeoutMs} ms)`,
        );
      // The processor is called straight through the context API, with no frame of hoptrace's but
      // this function's between them: the stack trace of what it throws before its first `await`
      // (which BullMQ stores in the job) keeps as many of BullMQ's own frames as it can.
      let result: unknown;
      try {
        result = contextApi.with(runIn, fn, this, job, ...rest);
      } catch (error) {
        contextApi.with(runIn, () => attempt.threw(error));
        throw error;
      }
      return contextApi.with(runIn, () => attempt.run(() => asAwaited(result)));
    };
  const wrapped = traced(processor);
  // A job BullMQ 6 moved to active and failed without calling the processor (a flow parent whose
  // `failParentOnFailure` child failed, a job started past `maxStartedAttempts`) gets its attempt's
  // span too, failed with BullMQ's error, as if the processor had thrown it.
  const failUnprocessed: UnprocessedFailure = (worker, job, error) => {
    try {
      traced(() => {
        throw error;
      }, true).call(worker, job as JobLike);
    } catch {
      // BullMQ's own failure, already handled by BullMQ
    }
  };
  // BullMQ passes an AbortSignal only to processors that declare a third parameter: keep the arity.
  Object.defineProperty(wrapped, 'length', { value: processor.length });
  return registerWrapper(wrapped as unknown as F, processor);
}

const noAttributes = (): Attributes => ({});

/** What a processor keeps per BullMQ worker calling it: its span templates and its server. */
interface WorkerScope {
  readonly templates: OperationTemplates<BullmqOperation>;
  readonly server: MetricServer | undefined;
}

/**
 * `server.address` / `server.port` of the BullMQ `Worker` a processor is called by (its
 * `opts.connection`), or `undefined` when `self` is not one (a sandboxed child, a direct call).
 * Never throws.
 */
function workerServer(self: object): Attributes | undefined {
  try {
    const worker = self as { isRunning?: unknown; opts?: { connection?: unknown } };
    if (typeof worker.isRunning !== 'function' || !worker.opts || typeof worker.opts !== 'object')
      return undefined;
    const server = serverAttributes(worker.opts.connection);
    return ATTR_SERVER_ADDRESS in server ? server : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The links of a process span beyond its creation context: the failed attempt, and a flow's children
 * when the job (its key prefix, queue name and `jobId`) is their parent.
 */
function extraLinks(
  carrier: Record<string, unknown> | undefined,
  lineage: FailureLineage | undefined,
  job: JobLike,
  jobId: string | undefined,
): Link[] | undefined {
  const failed = lineageLinks(lineage);
  const queue = typeof job.queueName === 'string' ? job.queueName : undefined;
  // The job's prefix is read only for a job carrying a child list (a flow parent, or a copy of one).
  const children =
    carrier && Object.hasOwn(carrier, CHILDREN_CARRIER_KEY)
      ? childLinks(carrier, { prefix: jobPrefix(job), queue, id: jobId })
      : undefined;
  if (!failed) return children;
  return children ? [...failed, ...children] : failed;
}

/** The link from a scheduled run's attempt to the scheduling context, when there is one. */
function creationLink(creation: MessageContext): Link[] | undefined {
  return creation.spanContext ? [{ context: creation.spanContext }] : undefined;
}

/**
 * Whether this is the job's first start: no attempt failed yet, and BullMQ (which counts every move
 * to active in `attemptsStarted`) has not run it before, as it has a job re-run after a
 * `DelayedError`, a flow parent back from waiting for its children, or a stalled job. A failed job
 * retried with its counters reset (`retry('failed', { resetAttemptsMade, resetAttemptsStarted })`)
 * still carries the stack trace of its failure.
 */
function firstStart(job: JobLike, attemptsMade: number | undefined): boolean {
  if (attemptsMade !== 0) return false;
  const started = job.attemptsStarted;
  if (typeof started === 'number' && started > 1) return false;
  return !listsFailure(job.stacktrace);
}

/**
 * Whether a job's `stacktrace` lists a failure: an array in a worker, the JSON string of one in a
 * sandboxed processor.
 */
function listsFailure(stacktrace: unknown): boolean {
  if (Array.isArray(stacktrace)) return stacktrace.length > 0;
  return typeof stacktrace === 'string' && stacktrace.startsWith('[') && stacktrace !== '[]';
}

/**
 * Milliseconds from the job becoming due (`timestamp` + the delay the producer asked for) to now,
 * or `undefined` without a timestamp or with an implausible one (core's `timeInQueueSeconds`).
 * `opts.delay` is what the producer asked; BullMQ resets `job.delay` once the job is promoted. A
 * job started before that delay ran out, though created no later than now (give or take the skew
 * allowed), was made due early (`job.promote()`, `job.changeDelay()`, which leave `opts.delay`
 * as it was): BullMQ keeps no time of that, so its wait counts as 0 rather than as implausible.
 */
function timeInQueueMs(job: JobLike): number | undefined {
  if (typeof job.timestamp !== 'number') return undefined;
  const optsDelay = job.opts?.delay;
  const delay = typeof optsDelay === 'number' ? optsDelay : typeof job.delay === 'number' ? job.delay : 0;
  const now = Date.now();
  const due = job.timestamp + delay;
  const madeDueEarly = due > now && job.timestamp <= now + TIME_IN_QUEUE_MAX_SKEW_MS;
  const waited = timeInQueueSeconds(madeDueEarly ? now : due, now);
  return waited === undefined ? undefined : Math.round(waited * 1000);
}
