import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_SYSTEM_NAME,
  createInstrumentation,
  errorTypeOf,
  type Instrumentation,
  MESSAGING_SYSTEM,
  SpanHandle,
  startMessagingSpan,
} from '@hoptrace/core';
import { type Attributes, context as contextApi, type Link, SpanKind, trace } from '@opentelemetry/api';
import { ATTR_BULLMQ_SCHEDULER_ID } from './attributes.ts';
import { withCarrier } from './carrier.ts';
import { type JobOptionsShape, jobAttributes, jobIdOf } from './job-attributes.ts';
import type { QueueTracingOptions } from './options.ts';
import { delegatingProxy, isWrapper } from './proxy.ts';
import { serverAttributes } from './server.ts';
import { SCOPE_NAME, VERSION } from './version.ts';

/** The members of a BullMQ `Queue` that {@link traceQueue} relies on (any supported version). */
export interface QueueLike {
  readonly name: string;
  readonly opts?: object | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: BullMQ's generic method signatures differ by version
  add(...args: any[]): Promise<unknown>;
}

interface BulkJob {
  name?: unknown;
  data?: unknown;
  opts?: JobOptionsShape;
}

interface JobTemplate {
  name?: unknown;
  data?: unknown;
  opts?: JobOptionsShape;
}

type AsyncMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * Wraps a BullMQ `Queue` so that `add`, `addBulk` and `upsertJobScheduler` are traced and every job
 * carries its creation context in `opts.telemetry.metadata` (BullMQ's own carrier: a JSON W3C header
 * map). Returns a Proxy with the queue's own type; everything else is delegated untouched.
 *
 * - `add`: a `send {queue}` PRODUCER span; its context goes into a copy of the job's options.
 * - `addBulk`: a `create {queue}` PRODUCER span per job (each job carries its own) and a
 *   `send {queue}` CLIENT span linked to them.
 * - `upsertJobScheduler`: a `schedule {queue}` PRODUCER span whose context is stored with the
 *   scheduler's job template in Redis; every run later starts a new trace linked to it.
 *
 * Never mutates the caller's options or job data, never overwrites a context the caller or another
 * tool stored (nor one `telemetry.omitContext` forbids). Idempotent: wrapping a wrapped queue
 * returns it unchanged. Bad options throw a TypeError here, at wrap time.
 */
export function traceQueue<Q extends QueueLike>(queue: Q, options: QueueTracingOptions = {}): Q {
  if (!queue || typeof queue !== 'object' || typeof queue.add !== 'function') {
    throw new TypeError(`Expected \`queue\` to be a BullMQ Queue, got ${String(queue)}`);
  }
  if (isWrapper(queue)) return queue;
  const instr = createInstrumentation(SCOPE_NAME, VERSION, options);
  const destination = String(queue.name);
  const server = serverAttributes((queue.opts as { connection?: unknown } | undefined)?.connection);
  const metricAttributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM_NAME]: MESSAGING_SYSTEM.bullmq,
    [ATTR_MESSAGING_OPERATION_NAME]: 'send',
    [ATTR_MESSAGING_DESTINATION_NAME]: destination,
  };
  const target = queue as unknown as Record<string, AsyncMethod>;

  const overrides: Record<string, unknown> = {
    add(name: unknown, data: unknown, opts?: JobOptionsShape): Promise<unknown> {
      const span = startMessagingSpan(instr.tracer, {
        system: MESSAGING_SYSTEM.bullmq,
        operationType: 'send',
        operationName: 'send',
        destination,
        attributes: jobAttributes(name, opts, { ...server }),
        legacyAttributes: instr.legacyAttributes,
      });
      const ctx = trace.setSpan(contextApi.active(), span);
      return settleSend(instr, [new SpanHandle(span)], undefined, metricAttributes, 1, () =>
        contextApi.with(ctx, () =>
          (target.add as AsyncMethod).call(queue, name, data, withCarrier(opts, ctx)),
        ),
      );
    },
    addBulk(jobs: readonly BulkJob[]): Promise<unknown> {
      if (!Array.isArray(jobs)) return (target.addBulk as AsyncMethod).call(queue, jobs);
      const parent = contextApi.active();
      const creates: SpanHandle[] = new Array(jobs.length);
      const links: Link[] = new Array(jobs.length);
      const copies: BulkJob[] = new Array(jobs.length);
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i] as BulkJob;
        const span = startMessagingSpan(instr.tracer, {
          system: MESSAGING_SYSTEM.bullmq,
          operationType: 'create',
          operationName: 'create',
          destination,
          attributes: jobAttributes(job?.name, job?.opts, { ...server }),
          parent,
          legacyAttributes: instr.legacyAttributes,
        });
        creates[i] = new SpanHandle(span);
        links[i] = { context: span.spanContext() };
        copies[i] = { ...job, opts: withCarrier(job?.opts, trace.setSpan(parent, span)) };
      }
      const send = startMessagingSpan(instr.tracer, {
        system: MESSAGING_SYSTEM.bullmq,
        operationType: 'send',
        operationName: 'send',
        destination,
        kind: SpanKind.CLIENT,
        attributes: { ...server, [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: jobs.length },
        links,
        parent,
        legacyAttributes: instr.legacyAttributes,
      });
      const ctx = trace.setSpan(parent, send);
      return settleSend(instr, creates, new SpanHandle(send), metricAttributes, jobs.length, () =>
        contextApi.with(ctx, () => (target.addBulk as AsyncMethod).call(queue, copies)),
      );
    },
    upsertJobScheduler(schedulerId: unknown, repeatOpts: unknown, template?: JobTemplate): Promise<unknown> {
      const attributes = jobAttributes(template?.name, template?.opts, { ...server });
      if (typeof schedulerId === 'string') attributes[ATTR_BULLMQ_SCHEDULER_ID] = schedulerId;
      const span = startMessagingSpan(instr.tracer, {
        system: MESSAGING_SYSTEM.bullmq,
        operationType: 'create',
        operationName: 'schedule',
        destination,
        attributes,
        legacyAttributes: instr.legacyAttributes,
      });
      const ctx = trace.setSpan(contextApi.active(), span);
      // The template's options are stored with the scheduler in Redis: the context kept there is
      // the snapshot each run links to.
      const copy: JobTemplate = { ...template, opts: withCarrier(template?.opts, ctx) };
      return settleSend(instr, [new SpanHandle(span)], undefined, undefined, 0, () =>
        contextApi.with(ctx, () =>
          (target.upsertJobScheduler as AsyncMethod).call(queue, schedulerId, repeatOpts, copy),
        ),
      );
    },
  };
  return delegatingProxy(queue, overrides);
}

/**
 * Runs a producer call and ends its spans once it settles: job ids go onto the per-job spans, a
 * failure is recorded (ERROR, `error.type`) on every span and rethrown unchanged. Shared by the queue
 * and flow wrappers.
 *
 * @param perJob - one span per job, in the order of the jobs the call returns.
 * @param send - the batch's send span, when there is one apart from `perJob`.
 */
export function settleSend(
  instr: Instrumentation,
  perJob: readonly SpanHandle[],
  send: SpanHandle | undefined,
  metricAttributes: Attributes | undefined,
  count: number,
  call: () => Promise<unknown>,
): Promise<unknown> {
  const start = performance.now();
  const fail = (error: unknown): never => {
    for (const handle of perJob) handle.fail(error);
    send?.fail(error);
    if (metricAttributes) {
      instr.metrics.recordSend(start, count, { ...metricAttributes, [ATTR_ERROR_TYPE]: errorTypeOf(error) });
    }
    throw error;
  };
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (error) {
    return fail(error);
  }
  return Promise.resolve(pending).then((result) => {
    const jobs = Array.isArray(result) ? result : [result];
    for (let i = 0; i < perJob.length; i++) {
      const handle = perJob[i] as SpanHandle;
      const id = jobIdOf(jobs[i]);
      if (id !== undefined) handle.span.setAttribute(ATTR_MESSAGING_MESSAGE_ID, id);
      handle.end();
    }
    send?.end();
    if (metricAttributes) instr.metrics.recordSend(start, count, metricAttributes);
    return result;
  }, fail);
}
