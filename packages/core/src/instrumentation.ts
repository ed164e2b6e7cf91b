import { metrics, type Tracer, trace } from '@opentelemetry/api';
import { type BaggageReader, compileBaggageAllowList } from './baggage.ts';
import type { ErrorClassifier } from './errors.ts';
import type { TraceBudget } from './hops.ts';
import { type MetricAttributeCache, metricAttributesOf } from './metric-attributes.ts';
import { createMessagingMetrics, type MessagingMetrics } from './metrics.ts';
import type { ConsumerTracingOptions, TracingOptions } from './options.ts';
import { RELATION_POLICIES, type RelationPolicy } from './relation.ts';
import { UNSAMPLED_MODES, UnsampledPolicy } from './sampling.ts';
import {
  assertOptionalBoolean,
  assertOptionalFunction,
  assertOptionalInteger,
  assertOptionalOneOf,
  describeValue,
} from './validate.ts';

/** Tells a handler's control-flow signal (e.g. BullMQ's `DelayedError`) from a failure: its name, or undefined. */
export type ControlFlowSignal = (error: unknown) => string | undefined;

/** Everything a wrapper resolves once, at wrap time, from its options. */
export interface Instrumentation {
  /** `messaging.system.name`. */
  readonly system: string;
  readonly tracer: Tracer;
  /** The metrics, or `undefined` when no MeterProvider is registered (then no metric work at all). */
  readonly metrics: MessagingMetrics | undefined;
  /**
   * The bounded metric attribute sets, shared by every wrapper recording on the same meter (same
   * MeterProvider and adapter), so the cap on metric series holds across all of them. With
   * `legacyAttributes`, the view of those sets that adds the older names (same bound).
   */
  readonly metricAttributes: MetricAttributeCache;
  readonly legacyAttributes: boolean;
  readonly captureBodySize: boolean;
  readonly relation: RelationPolicy;
  /** Under `parent`, whether process spans also link to their creation context. */
  readonly parentLink: boolean;
  readonly traceBudget: TraceBudget | undefined;
  readonly baggage: BaggageReader | undefined;
  readonly classifyError: ErrorClassifier | undefined;
  readonly unsampled: UnsampledPolicy;
  /** The adapter's control-flow recognizer (not a user option). */
  readonly controlFlow: ControlFlowSignal | undefined;
}

/** What an adapter (not the user) adds when it creates its instrumentation. */
export interface InstrumentationScope {
  /** Instrumentation scope name, e.g. `@hoptrace/kafka`. */
  name: string;
  /** The package version. */
  version: string;
  /** `messaging.system.name`, e.g. `kafka`. */
  system: string;
  /** Recognizes the broker's control-flow signals (see {@link ControlFlowSignal}). */
  controlFlow?: ControlFlowSignal;
}

/**
 * Validates the shared options and resolves tracer, metrics, relation policy, hop budget, baggage
 * reader, classifier and the unsampled policy once. Throws a TypeError naming the option and the
 * value received.
 */
export function createInstrumentation(
  scope: InstrumentationScope,
  options: ConsumerTracingOptions | TracingOptions | undefined = {},
): Instrumentation {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  const o = options as ConsumerTracingOptions;
  assertOptionalBoolean('legacyAttributes', o.legacyAttributes);
  assertOptionalBoolean('captureBodySize', o.captureBodySize);
  assertOptionalOneOf('relation', o.relation, RELATION_POLICIES);
  assertOptionalBoolean('parentLink', o.parentLink);
  assertOptionalOneOf('unsampled', o.unsampled, UNSAMPLED_MODES);
  assertOptionalFunction('classifyError', o.classifyError);
  if (o.traceBudget !== undefined) {
    if (o.traceBudget === null || typeof o.traceBudget !== 'object') {
      throw new TypeError(`Expected \`traceBudget\` to be { maxHops }, got ${describeValue(o.traceBudget)}`);
    }
    assertOptionalInteger('traceBudget.maxHops', o.traceBudget.maxHops ?? Number.NaN, 1);
  }
  for (const [name, provider, method] of [
    ['tracerProvider', o.tracerProvider, 'getTracer'],
    ['meterProvider', o.meterProvider, 'getMeter'],
  ] as const) {
    if (
      provider !== undefined &&
      typeof (provider as unknown as Record<string, unknown>)?.[method] !== 'function'
    ) {
      throw new TypeError(
        `Expected \`${name}\` to have a ${method}() method, got ${describeValue(provider)}`,
      );
    }
  }
  const tracer = (o.tracerProvider ?? trace.getTracerProvider()).getTracer(scope.name, scope.version);
  const meter = (o.meterProvider ?? metrics.getMeterProvider()).getMeter(scope.name, scope.version);
  const legacyAttributes = o.legacyAttributes ?? false;
  return {
    system: scope.system,
    tracer,
    metrics: createMessagingMetrics(meter),
    metricAttributes: metricAttributesOf(meter, scope.system, legacyAttributes),
    legacyAttributes,
    captureBodySize: o.captureBodySize ?? false,
    relation: o.relation ?? 'parent',
    parentLink: o.parentLink ?? false,
    traceBudget: o.traceBudget === undefined ? undefined : { maxHops: o.traceBudget.maxHops },
    baggage: compileBaggageAllowList(o.baggageAttributes),
    classifyError: o.classifyError,
    unsampled: new UnsampledPolicy(o.unsampled ?? 'auto', o.tracerProvider),
    controlFlow: scope.controlFlow,
  };
}
