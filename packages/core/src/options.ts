import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type { BaggageAllowList } from './baggage.ts';
import type { RelationPolicy, TraceBudget } from './relation.ts';

/** Options every hoptrace wrapper takes. */
export interface TracingOptions {
  /**
   * Where spans go. Default: the globally registered provider (`trace.getTracerProvider()`).
   * @example { tracerProvider: sdk.getTracerProvider() }
   */
  tracerProvider?: TracerProvider;
  /**
   * Where metrics go. Default: the globally registered provider; with none, metrics cost nothing.
   * @example { meterProvider }
   */
  meterProvider?: MeterProvider;
  /**
   * Also emit the older attribute names (`messaging.system`, `messaging.kafka.*`,
   * `messaging.rabbitmq.*`, `messaging.operation`) that existing dashboards key on. Default `false`.
   * @example { legacyAttributes: true }
   */
  legacyAttributes?: boolean;
  /**
   * Record `messaging.message.body.size` (opt-in in the conventions). Default `false`.
   * @example { captureBodySize: true }
   */
  captureBodySize?: boolean;
}

/** Options every consumer-side wrapper takes in addition to {@link TracingOptions}. */
export interface ConsumerTracingOptions extends TracingOptions {
  /**
   * How a process span relates to the message's creation context. Default `'parent'`: one unbroken
   * trace per message (the spec's default is `'link'`; both are conventional).
   * @example { relation: 'link' }
   */
  relation?: RelationPolicy;
  /**
   * Under `relation: 'parent'`, also link each process span to the message's creation context (its
   * parent as well), as the conventions' link-based model expects. Default `true`. Set `false` to
   * export one link fewer per message when your backend follows parents anyway. Ignored by `link`
   * and `root`, which always link.
   * @example { parentLink: false }
   */
  parentLink?: boolean;
  /**
   * Start a new linked trace after this many asynchronous hops. Default: no budget.
   * @example { traceBudget: { maxHops: 10 } }
   */
  traceBudget?: TraceBudget;
  /**
   * Baggage keys copied onto consumer spans as attributes (untrusted input: only these, size-capped).
   * Default: none.
   * @example { baggageAttributes: ['tenant.id'] }
   */
  baggageAttributes?: BaggageAllowList;
}

/** Throws a clear TypeError unless `value` is `undefined` or an integer >= `min`. */
export function assertOptionalInteger(name: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got ${describe(value)}`);
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or a number >= `min` (Infinity allowed). */
export function assertOptionalNumber(name: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new TypeError(`Expected \`${name}\` to be a number >= ${min}, got ${describe(value)}`);
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or one of `allowed`. */
export function assertOptionalOneOf<T>(name: string, value: unknown, allowed: readonly T[]): void {
  if (value === undefined) return;
  if (!allowed.includes(value as T)) {
    throw new TypeError(
      `Expected \`${name}\` to be one of ${allowed.map((a) => `'${String(a)}'`).join(', ')}, got ${describe(value)}`,
    );
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or a boolean. */
export function assertOptionalBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`Expected \`${name}\` to be a boolean, got ${describe(value)}`);
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or a function. */
export function assertOptionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`Expected \`${name}\` to be a function, got ${describe(value)}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}
