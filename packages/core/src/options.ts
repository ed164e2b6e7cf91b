import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type { BaggageAllowList } from './baggage.ts';
import type { ErrorClassifier } from './errors.ts';
import type { TraceBudget } from './hops.ts';
import type { RelationPolicy } from './relation.ts';
import type { UnsampledMode } from './sampling.ts';

/** Options every hoptrace wrapper takes. */
export interface TracingOptions {
  /**
   * Where spans go. Default: the globally registered provider (`trace.getTracerProvider()`).
   * @example { tracerProvider: sdk.getTracerProvider() }
   */
  tracerProvider?: TracerProvider | undefined;
  /**
   * Where metrics go. Default: the globally registered provider. With none registered when the
   * wrapper is made, no metric work is done at all.
   * @example { meterProvider }
   */
  meterProvider?: MeterProvider | undefined;
  /**
   * Also emit the older attribute names (`messaging.system`, `messaging.kafka.*`,
   * `messaging.rabbitmq.*`, `messaging.operation`) that existing dashboards key on. Default `false`.
   * @example { legacyAttributes: true }
   */
  legacyAttributes?: boolean | undefined;
  /**
   * Record `messaging.message.body.size` (opt-in in the conventions). Default `false`.
   * @example { captureBodySize: true }
   */
  captureBodySize?: boolean | undefined;
  /**
   * Spans for messages whose parent context is not sampled: `'auto'` (default) learns from the
   * tracer whether they would record, `'skip'` never builds them, `'span'` always does.
   * @example { unsampled: 'skip' }
   */
  unsampled?: UnsampledMode | undefined;
  /**
   * Maps a thrown value to an error code (`error.type`), a retryable flag and a few attributes.
   * Runs guarded: a classifier that throws changes nothing for the host. Default: the client
   * library's error code, else the error's class name, else `_OTHER`.
   * @example { classifyError: (e) => (e instanceof StockError ? { type: 'STOCK_UNAVAILABLE', retryable: false } : undefined) }
   */
  classifyError?: ErrorClassifier | undefined;
}

/** Options every consumer-side wrapper takes in addition to {@link TracingOptions}. */
export interface ConsumerTracingOptions extends TracingOptions {
  /**
   * How a process span relates to the message's creation context. Default `'parent'`: one unbroken
   * trace per message (the spec's default is `'link'`; both are conventional).
   * @example { relation: 'link' }
   */
  relation?: RelationPolicy | undefined;
  /**
   * Under `relation: 'parent'`, also link each process span to the message's creation context
   * (already its parent), as the conventions' link-based model does. Default `false`: the parent
   * ties them, and every link costs export bytes. Ignored by `link` and `root`, which always link.
   * @example { parentLink: true }
   */
  parentLink?: boolean | undefined;
  /**
   * Start a new linked trace after this many asynchronous hops. Default: no budget (nothing is
   * counted and no `tracestate` member is written).
   * @example { traceBudget: { maxHops: 10 } }
   */
  traceBudget?: TraceBudget | undefined;
  /**
   * Baggage keys copied onto consumer spans as attributes (untrusted input: only these, size-capped).
   * Default: none.
   * @example { baggageAttributes: ['tenant.id'] }
   */
  baggageAttributes?: BaggageAllowList | undefined;
}
