import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  assertClient,
  describeKind,
  existingWrapper,
  type Interceptor,
  interceptMethods,
  Operation,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import { type Context, context as contextApi, type Link, type Span, trace } from '@opentelemetry/api';
import { ATTR_BULLMQ_SCHEDULER_ID } from './attributes.ts';
import { contextMetadata } from './carrier.ts';
import { type JobOptionsShape, jobAttributes, jobAttributesOf, setJobIds } from './job-attributes.ts';
import type { QueueTracingOptions } from './options.ts';
import {
  callerLink,
  type JobContext,
  optionsWithContext,
  producerState,
  readJobContext,
  sendMetric,
  withDefaultTelemetry,
} from './producer.ts';

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

type AsyncMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * Wraps a BullMQ `Queue` so that `add`, `addBulk` and `upsertJobScheduler` are traced and every job
 * carries its creation context in `opts.telemetry.metadata` (BullMQ's own carrier: a JSON header
 * map through the registered propagator). Returns a Proxy with the queue's own type; everything else
 * is delegated untouched.
 *
 * - `add`: a `send {queue}` PRODUCER span; its context goes into a copy of the job's options.
 * - `addBulk`: one `send {queue}` PRODUCER span whose context every job carries (with
 *   `createSpans: true`, a `create {queue}` span per job that the job carries, and a CLIENT send span
 *   linked to them; a job carrying the caller's own context gets none).
 * - `upsertJobScheduler`: a `schedule {queue}` PRODUCER span whose context is stored with the
 *   scheduler's job template in Redis; every run later starts a new trace linked to it.
 * - Job options that already carry a context (the caller's own) keep it: the send span is then a
 *   CLIENT span linked to it, as with Kafka and AMQP.
 *
 * Never mutates the caller's options or job data, never overwrites a context the caller or another
 * tool stored (nor one `telemetry.omitContext` forbids, the job's or, for `add` and
 * `upsertJobScheduler`, the queue's `defaultJobOptions`). Idempotent. Bad options throw a TypeError here.
 */
export function traceQueue<Q extends QueueLike>(queue: Q, options: QueueTracingOptions = {}): Q {
  assertClient('queue', queue, 'a BullMQ Queue', ['add']);
  // A FlowProducer has an `add` too, but no name: wrapped as a queue, its flows went out untraced.
  if (typeof queue.name !== 'string') {
    throw new TypeError(`Expected \`queue\` to be a BullMQ Queue, got ${describeKind(queue)} without a name`);
  }
  // Options are validated also when the queue was wrapped before (they are then ignored).
  const state = producerState(queue, options, 'traceQueue');
  const existing = existingWrapper(queue);
  if (existing) return existing;
  const { instr } = state;
  const destination = String(queue.name);

  const add: Interceptor<Q> = (raw, [name, data, opts]) => {
    // The default telemetry (an omitContext, a context) is what BullMQ would apply: read and keep it.
    const jobOpts = withDefaultTelemetry(opts as JobOptionsShape | undefined, raw);
    const parsed = readJobContext(jobOpts);
    // Where hoptrace writes nothing, BullMQ gets the caller's own options and merges its defaults
    // itself, as without hoptrace (BullMQ's own telemetry reads the caller's options only).
    const sent = (context: Context) =>
      keptUnlessWritten(optionsWithContext(jobOpts, context, parsed), jobOpts, opts);
    const caller = callerLink(parsed);
    const parent = contextApi.active();
    const span = startClientSpan(
      instr,
      state.templates.of(caller ? 'sendClient' : 'send').get(destination),
      parent,
      caller ? { links: [caller] } : undefined,
    );
    if (span?.isRecording())
      setSpanAttributes(span, jobAttributes(name, jobOpts, {}), instr.legacyAttributes);
    const metric = sendMetric(state, destination, 1);
    const context = span ? trace.setSpan(parent, span) : parent;
    // Nothing to settle (unsampled fast path, or a span that does not record, and no metrics): the
    // job carries the context as it is, so the trace id still travels; no operation, no extra promise.
    if (!metric && !span?.isRecording()) {
      span?.end();
      return contextApi.with(context, () => (raw.add as AsyncMethod).call(raw, name, data, sent(context)));
    }
    const operation = new Operation(instr, span, metric);
    return operation.run(
      () => contextApi.with(context, () => (raw.add as AsyncMethod).call(raw, name, data, sent(context))),
      span ? (job) => setJobIds([span], job) : undefined,
    );
  };

  const addBulk: Interceptor<Q> = (raw, [jobs]) => {
    if (!Array.isArray(jobs)) return (raw as unknown as { addBulk: AsyncMethod }).addBulk(jobs);
    const list = jobs as BulkJob[];
    const parent = contextApi.active();
    let creates: (Span | undefined)[] | undefined;
    let links: Link[] | undefined;
    // The callers' own contexts (parsed once) are kept, and linked from the send span.
    const parsed: JobContext[] = list.map(bulkJobContext);
    let own = 0;
    for (const job of parsed) {
      const caller = callerLink(job);
      if (caller) {
        links ??= [];
        links.push(caller);
        own++;
      }
    }
    if (state.createSpans && own < list.length) {
      // A create span per job that does not carry the caller's own context (that job keeps theirs,
      // as with Kafka: a create span of its own would be carried by nothing).
      creates = new Array(list.length);
      for (let i = 0; i < list.length; i++) {
        if (parsed[i]?.caller) continue;
        const job = list[i];
        const create = startClientSpan(instr, state.templates.of('create').get(destination), parent);
        creates[i] = create;
        if (create?.isRecording()) {
          setSpanAttributes(create, jobAttributesOf(job, {}), instr.legacyAttributes);
          links ??= [];
          links.push({ context: create.spanContext() });
        }
      }
    }
    const send = startClientSpan(
      instr,
      // CLIENT when every job carries its own creation context (create spans, or the caller's).
      state.templates.of(creates || links?.length === list.length ? 'sendClient' : 'send').get(destination),
      parent,
      links ? { links } : undefined,
    );
    if (send?.isRecording()) setSpanAttributes(send, { [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: list.length });
    const context = send ? trace.setSpan(parent, send) : parent;
    const operation = new Operation(
      instr,
      creates ? [send, ...creates] : send,
      sendMetric(state, destination, list.length),
    );
    // The send span's context is injected and serialized once for every job that carries it.
    let shared: string | undefined | null = null;
    const metadata = () => {
      if (shared === null) shared = contextMetadata(context);
      return shared;
    };
    return operation.run(
      () => {
        const copies = list.map((job, i) => {
          // Not a job object: BullMQ's own error for it, not a job made up of hoptrace's options.
          if (!job || typeof job !== 'object') return job;
          const create = creates?.[i];
          return {
            ...job,
            opts: create
              ? optionsWithContext(job?.opts, trace.setSpan(parent, create), parsed[i])
              : optionsWithContext(job?.opts, context, parsed[i], metadata),
          };
        });
        return contextApi.with(context, () => (raw as unknown as { addBulk: AsyncMethod }).addBulk(copies));
      },
      creates ? (result) => setJobIds(creates as (Span | undefined)[], result) : undefined,
    );
  };

  const upsertJobScheduler: Interceptor<Q> = (raw, [schedulerId, repeatOpts, template]) => {
    const jobTemplate = template as { name?: unknown; data?: unknown; opts?: JobOptionsShape } | undefined;
    // The default telemetry (an omitContext, a context) is what BullMQ would apply: read and keep it.
    let templateOpts: JobOptionsShape | undefined;
    let readable = true;
    try {
      templateOpts = withDefaultTelemetry(jobTemplate?.opts, raw);
    } catch {
      readable = false; // an `opts` getter that throws: read again (and raised) when the template is copied
    }
    const parsed = readJobContext(templateOpts);
    const caller = callerLink(parsed);
    const parent = contextApi.active();
    const span = startClientSpan(
      instr,
      state.templates.of(caller ? 'scheduleClient' : 'schedule').get(destination),
      parent,
      caller ? { links: [caller] } : undefined,
    );
    if (span?.isRecording()) {
      const attributes = jobAttributesOf(jobTemplate, {});
      if (typeof schedulerId === 'string') attributes[ATTR_BULLMQ_SCHEDULER_ID] = schedulerId;
      setSpanAttributes(span, attributes, instr.legacyAttributes);
    }
    const context = span ? trace.setSpan(parent, span) : parent;
    const operation = new Operation(instr, span);
    // The template's options are stored with the scheduler in Redis: the context kept there is what
    // each run links to.
    return operation.run(() =>
      contextApi.with(context, () =>
        (raw as unknown as { upsertJobScheduler: AsyncMethod }).upsertJobScheduler(schedulerId, repeatOpts, {
          ...jobTemplate,
          opts: readable
            ? keptUnlessWritten(
                optionsWithContext(templateOpts, context, parsed),
                templateOpts,
                jobTemplate?.opts,
              )
            : optionsWithContext(jobTemplate?.opts, context),
        }),
      ),
    );
  };

  // Listeners added to the traced queue get it as `this`, as they get the queue itself without hoptrace.
  return interceptMethods(queue, { add, addBulk, upsertJobScheduler }, { listeners: {} });
}

/** {@link readJobContext} of a bulk entry; none for an entry that is not a job or whose `opts` getter throws. */
function bulkJobContext(job: BulkJob | undefined): JobContext {
  try {
    return readJobContext(job && typeof job === 'object' ? job.opts : undefined);
  } catch {
    return readJobContext(undefined);
  }
}

/** The options to hand BullMQ: the caller's own when hoptrace wrote nothing into its merged view. */
function keptUnlessWritten<O>(written: O, merged: O, own: O): O {
  return written === merged ? own : written;
}
