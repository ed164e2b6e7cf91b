import { type Meter, metrics, type Tracer, trace } from '@opentelemetry/api';
import { type BaggageReader, compileBaggageAllowList } from './baggage.ts';
import { MessagingMetrics } from './metrics.ts';
import {
  assertOptionalBoolean,
  assertOptionalInteger,
  assertOptionalOneOf,
  type ConsumerTracingOptions,
  type TracingOptions,
} from './options.ts';
import { RELATION_POLICIES, type RelationPolicy, type TraceBudget } from './relation.ts';

/** Everything a wrapper resolves once, at wrap time, from its options. */
export interface Instrumentation {
  readonly tracer: Tracer;
  readonly meter: Meter;
  readonly metrics: MessagingMetrics;
  readonly legacyAttributes: boolean;
  readonly captureBodySize: boolean;
  readonly relation: RelationPolicy;
  /** Under `parent`, whether process spans also link to their creation context. */
  readonly parentLink: boolean;
  readonly traceBudget: TraceBudget | undefined;
  readonly baggage: BaggageReader | undefined;
}

/**
 * Validates the shared options and resolves tracer, meter, metrics, relation policy, hop budget and
 * baggage reader once. Throws a TypeError naming the option and the value received.
 *
 * @param scope - instrumentation scope name, e.g. `@hoptrace/kafka`.
 * @param version - the package version.
 */
export function createInstrumentation(
  scope: string,
  version: string,
  options: ConsumerTracingOptions | TracingOptions = {},
): Instrumentation {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected options to be an object, got ${String(options)}`);
  }
  const o = options as ConsumerTracingOptions;
  assertOptionalBoolean('legacyAttributes', o.legacyAttributes);
  assertOptionalBoolean('captureBodySize', o.captureBodySize);
  assertOptionalOneOf('relation', o.relation, RELATION_POLICIES);
  assertOptionalBoolean('parentLink', o.parentLink);
  if (o.traceBudget !== undefined) {
    if (o.traceBudget === null || typeof o.traceBudget !== 'object') {
      throw new TypeError(`Expected \`traceBudget\` to be { maxHops }, got ${String(o.traceBudget)}`);
    }
    assertOptionalInteger('traceBudget.maxHops', o.traceBudget.maxHops ?? Number.NaN, 1);
  }
  const tracer = (o.tracerProvider ?? trace.getTracerProvider()).getTracer(scope, version);
  const meter = (o.meterProvider ?? metrics.getMeterProvider()).getMeter(scope, version);
  return {
    tracer,
    meter,
    metrics: new MessagingMetrics(meter),
    legacyAttributes: o.legacyAttributes ?? false,
    captureBodySize: o.captureBodySize ?? false,
    relation: o.relation ?? 'parent',
    parentLink: o.parentLink ?? true,
    traceBudget: o.traceBudget,
    baggage: compileBaggageAllowList(o.baggageAttributes),
  };
}
