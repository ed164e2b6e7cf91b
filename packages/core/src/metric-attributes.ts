import { type Attributes, diag, type Meter } from '@opentelemetry/api';
import { capValue, MAX_DESTINATION_LENGTH, withLegacyNames } from './attributes.ts';
import type { MetricOperation } from './metrics.ts';
import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_TEMPLATE,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ERROR_TYPE_OTHER,
} from './semconv.ts';

/**
 * The broker a wrapper talks to, as its spans' `server.address` / `server.port` say: read each time
 * a metric's attributes are looked up, so a wrapper that learns its server later (kafkajs's first
 * request, @platformatic/kafka's first connection) passes the object it keeps them in, allocating
 * nothing per message.
 */
export interface MetricServer {
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
}

/** The {@link MetricServer} of a wrapper's static span attributes (their `server.*`), built once per wrapper. */
export function metricServerOf(attributes: Attributes): MetricServer {
  const address = attributes[ATTR_SERVER_ADDRESS];
  const port = attributes[ATTR_SERVER_PORT];
  return {
    serverAddress: typeof address === 'string' ? address : undefined,
    serverPort: typeof port === 'number' ? port : undefined,
  };
}

/** Default number of distinct attribute sets one cache keeps (and so, metric series it feeds). */
export const DEFAULT_METRIC_ATTRIBUTE_SETS = 256;

/** The sets a cache and its {@link MetricAttributeCache.withLegacy} sibling share (one bound for both). */
interface SetStore {
  readonly sets: Map<string, Attributes>;
  /** The key of each set `get` built, so `withError` keys its variants by it. */
  readonly keys: WeakMap<Attributes, string>;
  /**
   * The `_OTHER` variant of each base set `withError` gave one past the bound, by the base itself:
   * built once per base, so a failure past the bound allocates nothing, and held no longer than the
   * base.
   */
  readonly others: WeakMap<Attributes, Attributes>;
  warned: boolean;
  /** The two views over the store: without and with the older attribute names. */
  readonly views: [MetricAttributeCache | undefined, MetricAttributeCache | undefined];
}

/**
 * The attribute sets of one adapter's metrics, built once and shared (callers never mutate them).
 * Bounded: once `capacity` distinct sets exist, a new destination is recorded without
 * `messaging.destination.name` and a new error type as `_OTHER` (and once twice that exist, a new
 * server without `server.address` / `server.port`), so traffic with ever new names, or a broker
 * at ever new addresses, can neither grow memory nor multiply metric series without bound. A cache built with `legacy` (a wrapper's
 * `legacyAttributes`) adds the older names (see `withLegacyNames`: `messaging.system`,
 * `messaging.operation`, `messaging.kafka.consumer.group`) to every set, as the spans get them.
 */
export class MetricAttributeCache {
  readonly #system: string;
  readonly #capacity: number;
  readonly #legacy: boolean;
  #store: SetStore;

  /**
   * @param system - `messaging.system.name`.
   * @param capacity - most distinct sets kept.
   * @param legacy - also add the older attribute names.
   */
  constructor(system: string, capacity = DEFAULT_METRIC_ATTRIBUTE_SETS, legacy = false) {
    this.#system = system;
    this.#capacity = capacity;
    this.#legacy = legacy;
    this.#store = {
      sets: new Map(),
      keys: new WeakMap(),
      others: new WeakMap(),
      warned: false,
      views: [undefined, undefined],
    };
    this.#store.views[legacy ? 1 : 0] = this;
  }

  /**
   * This cache when its `legacy` is `legacy`, else its sibling with the other setting, sharing its
   * sets and its bound (the set's key says which, so the two never hand out each other's sets).
   */
  withLegacy(legacy: boolean): MetricAttributeCache {
    const store = this.#store;
    const index = legacy ? 1 : 0;
    let view = store.views[index];
    if (!view) {
      view = new MetricAttributeCache(this.#system, this.#capacity, legacy);
      view.#store = store;
      store.views[index] = view;
    }
    return view;
  }

  /** How many sets are cached, with and without the older names (for tests and diagnostics). */
  get size(): number {
    return this.#store.sets.size;
  }

  /**
   * The attributes for an operation on a destination (only pass a low-cardinality one), with the
   * consumer group when known. `operationType` becomes `messaging.operation.type`, which the
   * conventions give `messaging.client.operation.duration` (send, receive, settle; a set of these
   * also feeds the sent/consumed counter of the same operation); `process` sets, which feed
   * `messaging.process.duration`, leave it out. `server` gives `server.address` and `server.port`
   * (the conventions give them to every messaging metric), as far as the wrapper knows them.
   * `template` is `messaging.destination.template`, for a destination the conventions name by a
   * template (e.g. RabbitMQ's direct reply-to): pass it instead of `destination`, whose high
   * cardinality name the metrics leave out.
   */
  get(
    operationName: string,
    destination: string | undefined,
    group?: string,
    operationType?: MetricOperation,
    server?: MetricServer,
    template?: string,
  ): Attributes {
    // Cut like the span's messaging.destination.name (BullMQ takes queue names of any length).
    if (destination !== undefined) destination = capValue(destination, MAX_DESTINATION_LENGTH);
    const type = operationType === 'process' ? undefined : operationType;
    const address = server?.serverAddress;
    const port = server?.serverPort;
    const key = `${this.#legacy ? 'L' : 'N'}\u0000${operationName}\u0000${destination ?? ''}\u0000${group ?? ''}\u0000${type ?? ''}\u0000${address ?? ''}\u0000${port ?? ''}\u0000${template ?? ''}`;
    const cached = this.#store.sets.get(key);
    if (cached) return cached;
    // Sets without a destination are few (operations x groups x servers, from code, config and the
    // brokers of one cluster, not traffic): they are kept even past the cap, which is what
    // overflowing destinations collapse into. Servers may still be ever new over a process's life
    // (a broker reached at the socket's peer address, back at a new one after each restart): past
    // twice the cap, a new server's sets leave `server.*` out, so only the sets from code remain.
    if (this.#store.sets.size >= this.#capacity) {
      if (destination !== undefined) {
        this.#overflow();
        return this.get(operationName, undefined, group, type, server, template);
      }
      if ((address !== undefined || port !== undefined) && this.#store.sets.size >= 2 * this.#capacity) {
        this.#overflow();
        return this.get(operationName, undefined, group, type, undefined, template);
      }
    }
    const attributes = this.#build(operationName, destination, group, type, address, port, template);
    this.#store.sets.set(key, attributes);
    this.#store.keys.set(attributes, key);
    return attributes;
  }

  /** `base` (from {@link get}) plus `error.type`; shared like `base`. */
  withError(base: Attributes, errorType: string): Attributes {
    const key = `${this.#store.keys.get(base) ?? keyOfValues(base)}\u0000${errorType}`;
    const cached = this.#store.sets.get(key);
    if (cached) return cached;
    if (this.#store.sets.size >= this.#capacity) {
      this.#overflow();
      const { others } = this.#store;
      let other = others.get(base);
      if (other === undefined) {
        other = { ...base, [ATTR_ERROR_TYPE]: ERROR_TYPE_OTHER };
        others.set(base, other);
      }
      return other;
    }
    const attributes = { ...base, [ATTR_ERROR_TYPE]: errorType };
    this.#store.sets.set(key, attributes);
    return attributes;
  }

  #build(
    operationName: string,
    destination: string | undefined,
    group: string | undefined,
    type: MetricOperation | undefined,
    address: string | undefined,
    port: number | undefined,
    template: string | undefined,
  ): Attributes {
    const attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM_NAME]: this.#system,
      [ATTR_MESSAGING_OPERATION_NAME]: operationName,
    };
    if (type !== undefined) attributes[ATTR_MESSAGING_OPERATION_TYPE] = type;
    if (destination !== undefined) attributes[ATTR_MESSAGING_DESTINATION_NAME] = destination;
    if (template !== undefined)
      attributes[ATTR_MESSAGING_DESTINATION_TEMPLATE] = capValue(template, MAX_DESTINATION_LENGTH);
    if (group !== undefined) attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = group;
    if (address !== undefined) attributes[ATTR_SERVER_ADDRESS] = address;
    if (port !== undefined) attributes[ATTR_SERVER_PORT] = port;
    return this.#legacy ? withLegacyNames(attributes) : attributes;
  }

  #overflow(): void {
    if (this.#store.warned) return;
    this.#store.warned = true;
    diag.warn(
      `hoptrace: more than ${this.#capacity} distinct ${this.#system} metric attribute sets; new destinations are recorded without a name and new error types as _OTHER (past twice that, new servers without server.address and server.port)`,
    );
  }
}

/** A key for attributes {@link MetricAttributeCache.get} did not build (their values, in order). */
function keyOfValues(attributes: Attributes): string {
  let key = '\u0001';
  for (const name in attributes) key += `${name}=${String(attributes[name])}\u0000`;
  return key;
}

/** The caches of each meter, by system (a provider may hand one meter to several adapters). */
const byMeter = new WeakMap<Meter, Map<string, MetricAttributeCache>>();

/**
 * The {@link MetricAttributeCache} shared by every wrapper that records on `meter` for `system`. The
 * metric series live in the meter's instruments, which every wrapper of one adapter on one
 * MeterProvider shares, so the cap holds there however many wrappers and clients (producers,
 * consumers, channels, connections, queues, processors) come and go.
 *
 * @param system - `messaging.system.name`.
 * @param legacy - the wrapper's `legacyAttributes`: the view that adds the older names (same sets
 * and bound, see {@link MetricAttributeCache.withLegacy}).
 */
export function metricAttributesOf(meter: Meter, system: string, legacy = false): MetricAttributeCache {
  let bySystem = byMeter.get(meter);
  if (!bySystem) {
    bySystem = new Map();
    byMeter.set(meter, bySystem);
  }
  let cache = bySystem.get(system);
  if (!cache) {
    cache = new MetricAttributeCache(system);
    bySystem.set(system, cache);
  }
  return cache.withLegacy(legacy);
}

/** What an `Operation` records when it ends: which metric, its cached attributes, the message count. */
export interface OperationMetric {
  readonly operation: MetricOperation;
  /** The adapter's attribute cache (also builds the `error.type` variant). */
  readonly cache: MetricAttributeCache;
  /** Attributes from `cache.get(...)`. */
  readonly attributes: Attributes;
  /** Messages the operation carried or delivered. */
  count: number;
}

/**
 * The metric of one operation (attributes from `cache`), or `undefined` when the wrapper has no
 * metrics, so nothing is built then.
 *
 * @param metricsOn - whether the wrapper has metrics (`instr.metrics !== undefined`).
 * @param server - the wrapper's broker (see {@link MetricServer}), when it knows one.
 * @param template - `messaging.destination.template`, for a templated destination (see
 * {@link MetricAttributeCache.get}).
 */
export function operationMetric(
  metricsOn: boolean,
  cache: MetricAttributeCache,
  operation: MetricOperation,
  operationName: string,
  destination: string | undefined,
  count: number,
  group?: string,
  server?: MetricServer,
  template?: string,
): OperationMetric | undefined {
  if (!metricsOn) return undefined;
  return {
    operation,
    cache,
    attributes: cache.get(operationName, destination, group, operation, server, template),
    count,
  };
}
