import {
  callerSpanContext,
  createInstrumentation,
  type Instrumentation,
  type MetricAttributeCache,
  type MetricServer,
  metricServerOf,
  type OperationMetric,
  OperationTemplates,
  operationMetric,
  sendHeaders,
} from '@hoptrace/core/adapter';
import type { Context, Link, SpanContext } from '@opentelemetry/api';
import {
  CHILDREN_CARRIER_KEY,
  CHILDREN_OF_CARRIER_KEY,
  omitsContext,
  parseCarrier,
  withCarrier,
  withCarrierMap,
  withMetadata,
} from './carrier.ts';
import type { JobOptionsShape } from './job-attributes.ts';
import { BULLMQ_OPERATIONS, type BullmqOperation } from './operations.ts';
import { assertProducerOptions, type FlowTracingOptions, type QueueTracingOptions } from './options.ts';
import { BULLMQ_SCOPE } from './scope.ts';
import { serverAttributes } from './server.ts';

/** What a producer-side BullMQ wrapper (queue or flow producer) keeps, resolved once at wrap time. */
export interface ProducerState {
  readonly instr: Instrumentation;
  readonly templates: OperationTemplates<BullmqOperation>;
  readonly metrics: MetricAttributeCache;
  /** `server.address` / `server.port` of the client's connection (its spans'), for its metrics. */
  readonly server: MetricServer;
  readonly createSpans: boolean;
}

/**
 * Validates `options` (`api` names the wrapper in errors) and resolves a producer wrapper's state; `client` is the Queue or
 * FlowProducer, whose `opts.connection` gives `server.address` / `server.port`.
 */
export function producerState(
  client: { readonly opts?: object | undefined },
  options: QueueTracingOptions | FlowTracingOptions,
  api: 'traceQueue' | 'traceFlowProducer',
): ProducerState {
  const instr = createInstrumentation(BULLMQ_SCOPE, options);
  assertProducerOptions(options, api);
  const server = serverAttributes((client.opts as { connection?: unknown } | undefined)?.connection);
  return {
    instr,
    templates: new OperationTemplates(instr.system, BULLMQ_OPERATIONS, () => server, instr.legacyAttributes),
    metrics: instr.metricAttributes,
    server: metricServerOf(server),
    createSpans: options.createSpans ?? false,
  };
}

/** The send metric of a destination, or `undefined` without a MeterProvider (nothing built then). */
export function sendMetric(
  state: ProducerState,
  destination: string | undefined,
  count: number,
): OperationMetric | undefined {
  return operationMetric(
    state.instr.metrics !== undefined,
    state.metrics,
    'send',
    'send',
    destination,
    count,
    undefined,
    state.server,
  );
}

/** What a job's options already carry, parsed once: their carrier map and the caller's own context in it. */
export interface JobContext {
  readonly carrier: Record<string, unknown> | undefined;
  readonly caller: SpanContext | undefined;
}

const NO_JOB_CONTEXT: JobContext = { carrier: undefined, caller: undefined };

/** Parses the carrier a job's options already hold (once per job). Never throws. */
export function readJobContext(opts: JobOptionsShape | undefined): JobContext {
  const carrier = parseCarrier(opts);
  return carrier ? { carrier, caller: callerSpanContext(carrier) } : NO_JOB_CONTEXT;
}

/**
 * The options a job is added with, carrying `context`: the caller's own context is kept when their
 * options already hold one (only hoptrace's hop counter is updated when relayed), metadata the caller
 * stored is never overwritten, and `telemetry.omitContext` is honoured. Never mutates `opts`.
 *
 * @param parsed - the options' carrier, when the caller parsed it already.
 * @param shared - `contextMetadata(context)`, when one call adds many jobs with the same context.
 */
export function optionsWithContext<O extends JobOptionsShape>(
  opts: O | undefined,
  context: Context,
  parsed: JobContext = readJobContext(opts),
  shared?: () => string | undefined,
): O {
  if (omitsContext(opts)) return opts as O;
  const { carrier, caller } = parsed;
  if (carrier) {
    if (!caller) return opts as O; // someone else's metadata: theirs to keep
    // A relayed flow parent's child list names another job's children: no job added here has them.
    const own = withoutChildren(carrier);
    const relayed = sendHeaders(own, context, caller);
    return relayed === carrier ? (opts as O) : withCarrierMap(opts, relayed as Record<string, unknown>);
  }
  const metadata = (opts as { telemetry?: { metadata?: unknown } } | undefined)?.telemetry?.metadata;
  if (typeof metadata === 'string' && metadata !== '') return opts as O;
  return shared ? withMetadata(opts, shared()) : withCarrier(opts, context);
}

/**
 * `opts` as BullMQ's `Queue.add` and `upsertJobScheduler` store them as far as telemetry goes: they
 * merge the queue's `defaultJobOptions` shallowly under the caller's options, so without a
 * `telemetry` of the caller's own the default one (say `{ omitContext: true }`, or a context) applies.
 * Returns `opts` itself when nothing is to merge; a shallow copy carrying the default `telemetry`
 * otherwise. Never mutates `opts` nor throws.
 *
 * @param queue - the BullMQ `Queue` (its `jobsOpts` are its `defaultJobOptions`).
 */
export function withDefaultTelemetry<O extends JobOptionsShape>(
  opts: O | undefined,
  queue: object,
): O | undefined {
  try {
    const defaults = (queue as { jobsOpts?: unknown }).jobsOpts;
    if (defaults === null || typeof defaults !== 'object') return opts;
    const telemetry = (defaults as JobOptionsShape).telemetry;
    if (telemetry === undefined) return opts;
    if (opts !== undefined && opts !== null) {
      // Not options BullMQ can merge, or the caller's own `telemetry` (even `undefined`) replaces the default.
      if (typeof opts !== 'object' || Object.prototype.propertyIsEnumerable.call(opts, 'telemetry'))
        return opts;
    }
    return { ...opts, telemetry } as O;
  } catch {
    return opts;
  }
}

/** True when job options hold telemetry metadata of their own, or forbid a context: hoptrace writes none there. */
export function carriesOwnContext(opts: JobOptionsShape | undefined): boolean {
  if (omitsContext(opts)) return true;
  const metadata = (opts as { telemetry?: { metadata?: unknown } } | undefined)?.telemetry?.metadata;
  return typeof metadata === 'string' && metadata !== '';
}

/** The link from a send span to the caller's own creation context, if the job carries one. */
export function callerLink(parsed: JobContext): Link | undefined {
  return parsed.caller ? { context: parsed.caller } : undefined;
}

/**
 * `carrier` without the flow parent's child list (`hoptrace-children`, `hoptrace-children-of`), or
 * `carrier` itself when it has none: metadata copied from a processed flow parent
 * (`add(…, { telemetry: job.opts.telemetry })`) names another job's children.
 */
function withoutChildren(carrier: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(carrier, CHILDREN_CARRIER_KEY) && !Object.hasOwn(carrier, CHILDREN_OF_CARRIER_KEY))
    return carrier;
  const { [CHILDREN_CARRIER_KEY]: _children, [CHILDREN_OF_CARRIER_KEY]: _owner, ...rest } = carrier;
  return rest;
}
