import { createHash } from 'node:crypto';
import {
  ATTR_MESSAGING_MESSAGE_ID,
  capValue,
  createInstrumentation,
  existingWrapper,
  type Instrumentation,
  type MessageContext,
  MetricAttributeCache,
  Operation,
  registerWrapper,
  runHook,
  setSpanAttributes,
  startConsumerSpan,
} from '@hoptrace/core/adapter';
import {
  type Attributes,
  context as contextApi,
  ROOT_CONTEXT,
  type SpanContext,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import {
  ATTR_BULLMQ_FLOW_PARENT,
  ATTR_BULLMQ_JOB_ATTEMPT,
  ATTR_BULLMQ_JOB_NAME,
  ATTR_BULLMQ_SCHEDULER_ID,
  ATTR_BULLMQ_TIME_IN_QUEUE,
} from './attributes.ts';
import { carrierContext, childLinks, parseCarrier } from './carrier.ts';
import type { JobOptionsShape } from './job-attributes.ts';
import { assertProcessorOptions, type ProcessorTracingOptions } from './options.ts';
import { BULLMQ_SCOPE } from './scope.ts';
import { BullmqTemplates } from './templates.ts';

/**
 * The members of a job hoptrace reads: a BullMQ `Job` in a worker, or the serialized job a sandboxed
 * processor receives. All are optional because the job comes from Redis: missing or odd values are
 * skipped, never thrown on.
 */
export interface JobLike {
  id?: string | undefined;
  name?: string | undefined;
  queueName?: string | undefined;
  opts?: JobOptionsShape | undefined;
  attemptsMade?: number | undefined;
  timestamp?: number | undefined;
  delay?: number | undefined;
  repeatJobKey?: string | undefined;
  parentKey?: string | undefined;
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
 *   trace, as siblings: the run's trace id and root span id are derived from the job's id, so a
 *   retry in another worker process finds the same trace (the root itself is virtual: no span is
 *   exported for it).
 * - BullMQ's control-flow signals (`DelayedError`, `WaitingError`, `WaitingChildrenError`,
 *   `RateLimitError`) are not failures: the attempt's span ends with status unset and a
 *   `hoptrace.control_flow` event naming the signal.
 * - The worker's own context where it was created never leaks into processing.
 * - Whatever the processor throws sets ERROR and `error.type` (your `classifyError` may name it) and
 *   is rethrown unchanged, so BullMQ's retry, backoff and failure handling (and the job's
 *   `failedReason`) are exactly as without hoptrace.
 * - Missing, malformed or foreign metadata never throws: the job is processed in a new trace (a
 *   foreign but valid W3C context is continued).
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
  const existing = existingWrapper(processor);
  if (existing) return existing;
  const instr = createInstrumentation(BULLMQ_SCOPE, options);
  assertProcessorOptions(options);
  const scheduled: Instrumentation = { ...instr, relation: 'root' };
  const templates = new BullmqTemplates(instr, {});
  const metrics = new MetricAttributeCache(instr.system);
  const fixedQueue = options.queueName;
  const onProcess = options.onProcess;

  const wrapped = function (this: unknown, job: JobLike, ...rest: unknown[]): unknown {
    if (!job || typeof job !== 'object') return processor.call(this, job, ...rest);
    const queue = fixedQueue ?? (typeof job.queueName === 'string' ? job.queueName : undefined);
    const attemptsMade = typeof job.attemptsMade === 'number' ? job.attemptsMade : 0;
    const schedulerId = typeof job.repeatJobKey === 'string' ? job.repeatJobKey : undefined;
    const carrier = parseCarrier(job.opts);
    const creation = carrierContext(carrier);
    const metric = instr.metrics ? metrics.get('process', queue) : undefined;
    let waitedMs: number | undefined;
    if (attemptsMade === 0 && typeof job.timestamp === 'number') {
      // opts.delay is what the producer asked for; BullMQ resets job.delay once the job is promoted.
      const optsDelay = job.opts?.delay;
      const delay = typeof optsDelay === 'number' ? optsDelay : typeof job.delay === 'number' ? job.delay : 0;
      waitedMs = Math.max(0, Date.now() - (job.timestamp + delay));
      if (metric) instr.metrics?.timeInQueue.record(waitedMs / 1000, metric);
    }
    const { span, context } =
      schedulerId === undefined
        ? startConsumerSpan(
            instr,
            templates.of('process').get(queue),
            creation,
            ROOT_CONTEXT,
            childLinks(carrier),
          )
        : startScheduledRun(scheduled, templates, queue, job, creation);
    if (span?.isRecording()) {
      const attributes: Attributes = { [ATTR_BULLMQ_JOB_ATTEMPT]: attemptsMade + 1 };
      if (typeof job.id === 'string') attributes[ATTR_MESSAGING_MESSAGE_ID] = capValue(job.id);
      if (typeof job.name === 'string') attributes[ATTR_BULLMQ_JOB_NAME] = capValue(job.name);
      if (schedulerId !== undefined) attributes[ATTR_BULLMQ_SCHEDULER_ID] = capValue(schedulerId);
      if (typeof job.parentKey === 'string') attributes[ATTR_BULLMQ_FLOW_PARENT] = capValue(job.parentKey);
      if (waitedMs !== undefined) attributes[ATTR_BULLMQ_TIME_IN_QUEUE] = waitedMs;
      setSpanAttributes(span, attributes, instr.legacyAttributes);
      if (onProcess) runHook('onProcess', onProcess, span, job);
    }
    const operation = new Operation(
      instr,
      span,
      metric ? { operation: 'process', cache: metrics, attributes: metric, count: 1 } : undefined,
    );
    return contextApi.with(context, () => operation.run(() => processor.call(this, job, ...rest)));
  };
  return registerWrapper(wrapped as unknown as F, processor);
}

/**
 * The span of one attempt of a scheduled run: a new trace per run, linked to the scheduling context.
 * The run's trace id and root span id are derived from the queue and job id, so every attempt of
 * the run (in any worker process) is a sibling in the same trace under one virtual root.
 */
function startScheduledRun(
  instr: Instrumentation,
  templates: BullmqTemplates,
  queue: string | undefined,
  job: JobLike,
  creation: MessageContext,
): {
  span: ReturnType<typeof startConsumerSpan>['span'];
  context: ReturnType<typeof startConsumerSpan>['context'];
} {
  const id = typeof job.id === 'string' ? job.id : undefined;
  if (id === undefined)
    return startConsumerSpan(instr, templates.of('process').get(queue), creation, ROOT_CONTEXT);
  const digest = createHash('sha256')
    .update(`hoptrace-run\u0000${queue ?? ''}\u0000${id}`)
    .digest('hex');
  const run: SpanContext = {
    traceId: digest.slice(0, 32),
    spanId: digest.slice(32, 48),
    // The scheduler's sampling decision carries over to its runs (sampled when it is unknown).
    traceFlags: creation.spanContext
      ? creation.spanContext.traceFlags & TraceFlags.SAMPLED
      : TraceFlags.SAMPLED,
    isRemote: true,
  };
  // The run root is the parent; the scheduling context is a link; the scheduler's baggage is kept.
  const parent = trace.setSpanContext(trace.deleteSpan(creation.context), run);
  const links = creation.spanContext ? [{ context: creation.spanContext }] : undefined;
  return startConsumerSpan(
    { ...instr, relation: 'parent', traceBudget: undefined },
    templates.of('process').get(queue),
    { context: parent, spanContext: run },
    ROOT_CONTEXT,
    links,
  );
}
