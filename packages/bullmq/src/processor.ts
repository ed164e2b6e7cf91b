import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_SYSTEM_NAME,
  createInstrumentation,
  errorTypeOf,
  extractContext,
  type Instrumentation,
  MESSAGING_DURATION_BUCKETS,
  MESSAGING_SYSTEM,
  runHook,
  runInSpan,
  startConsumerSpan,
} from '@hoptrace/core';
import { type Attributes, ROOT_CONTEXT } from '@opentelemetry/api';
import {
  ATTR_BULLMQ_FLOW_PARENT,
  ATTR_BULLMQ_JOB_ATTEMPT,
  ATTR_BULLMQ_JOB_NAME,
  ATTR_BULLMQ_SCHEDULER_ID,
  ATTR_BULLMQ_TIME_IN_QUEUE,
  METRIC_BULLMQ_TIME_IN_QUEUE,
} from './attributes.ts';
import { childLinks, parseCarrier } from './carrier.ts';
import type { JobOptionsShape } from './job-attributes.ts';
import { assertProcessorOptions, type ProcessorTracingOptions } from './options.ts';
import { isWrapper, markWrapper } from './proxy.ts';
import { SCOPE_NAME, VERSION } from './version.ts';

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
 *   scheduling context, with `bullmq.scheduler.id`.
 * - A thrown error or rejection sets ERROR and `error.type` and is rethrown unchanged, so BullMQ's
 *   retry, backoff and failure handling are exactly as without hoptrace.
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
  if (isWrapper(processor)) return processor;
  const instr = createInstrumentation(SCOPE_NAME, VERSION, options);
  assertProcessorOptions(options);
  const scheduled: Instrumentation = { ...instr, relation: 'root' };
  const timeInQueue = instr.meter.createHistogram(METRIC_BULLMQ_TIME_IN_QUEUE, {
    unit: 's',
    description: 'Time a BullMQ job waited from becoming due to the start of its first processing attempt.',
    advice: { explicitBucketBoundaries: [...MESSAGING_DURATION_BUCKETS] },
  });
  const fixedQueue = options.queueName;
  const onProcess = options.onProcess;
  const metricCache = new Map<string, Attributes>();
  const metricAttributes = (queue: string | undefined): Attributes => {
    const key = queue ?? '';
    let attrs = metricCache.get(key);
    if (attrs === undefined) {
      attrs = {
        [ATTR_MESSAGING_SYSTEM_NAME]: MESSAGING_SYSTEM.bullmq,
        [ATTR_MESSAGING_OPERATION_NAME]: 'process',
      };
      if (queue !== undefined) attrs[ATTR_MESSAGING_DESTINATION_NAME] = queue;
      metricCache.set(key, attrs);
    }
    return attrs;
  };

  const wrapped = function (this: unknown, job: JobLike, ...rest: unknown[]): unknown {
    if (!job || typeof job !== 'object') return processor.call(this, job, ...rest);
    const queue = fixedQueue ?? (typeof job.queueName === 'string' ? job.queueName : undefined);
    const attemptsMade = typeof job.attemptsMade === 'number' ? job.attemptsMade : 0;
    const attributes: Attributes = { [ATTR_BULLMQ_JOB_ATTEMPT]: attemptsMade + 1 };
    if (typeof job.id === 'string') attributes[ATTR_MESSAGING_MESSAGE_ID] = job.id;
    if (typeof job.name === 'string') attributes[ATTR_BULLMQ_JOB_NAME] = job.name;
    const schedulerId = typeof job.repeatJobKey === 'string' ? job.repeatJobKey : undefined;
    if (schedulerId !== undefined) attributes[ATTR_BULLMQ_SCHEDULER_ID] = schedulerId;
    if (typeof job.parentKey === 'string') attributes[ATTR_BULLMQ_FLOW_PARENT] = job.parentKey;
    const metrics = metricAttributes(queue);
    if (attemptsMade === 0 && typeof job.timestamp === 'number') {
      // opts.delay is what the producer asked for; BullMQ resets job.delay once the job is promoted.
      const optsDelay = job.opts?.delay;
      const delay = typeof optsDelay === 'number' ? optsDelay : typeof job.delay === 'number' ? job.delay : 0;
      const waitedMs = Math.max(0, Date.now() - (job.timestamp + delay));
      attributes[ATTR_BULLMQ_TIME_IN_QUEUE] = waitedMs;
      timeInQueue.record(waitedMs / 1000, metrics);
    }
    const carrier = parseCarrier(job.opts);
    const { span, context } = startConsumerSpan(
      schedulerId !== undefined ? scheduled : instr,
      carrier ? extractContext(carrier, ROOT_CONTEXT) : ROOT_CONTEXT,
      {
        system: MESSAGING_SYSTEM.bullmq,
        operationType: 'process',
        operationName: 'process',
        destination: queue,
        attributes,
      },
      childLinks(carrier),
    );
    if (onProcess) runHook('onProcess', onProcess, span, job);
    const start = performance.now();
    let result: unknown;
    try {
      result = runInSpan(span, () => processor.call(this, job, ...rest), { context });
    } catch (error) {
      instr.metrics.recordProcess(start, 1, { ...metrics, [ATTR_ERROR_TYPE]: errorTypeOf(error) });
      throw error;
    }
    if (result instanceof Promise) {
      return result.then(
        (value) => {
          instr.metrics.recordProcess(start, 1, metrics);
          return value;
        },
        (error: unknown) => {
          instr.metrics.recordProcess(start, 1, { ...metrics, [ATTR_ERROR_TYPE]: errorTypeOf(error) });
          throw error;
        },
      );
    }
    instr.metrics.recordProcess(start, 1, metrics);
    return result;
  };
  return markWrapper(wrapped as unknown as F);
}
