import { type Attributes, SpanKind } from '@opentelemetry/api';
import { capValue, MAX_DESTINATION_LENGTH, withLegacyNames } from './attributes.ts';
import {
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM_NAME,
  type MessagingOperationType,
} from './semconv.ts';

/** The span kind the conventions give each operation type. */
export const OPERATION_SPAN_KIND: Readonly<Record<MessagingOperationType, SpanKind>> = {
  create: SpanKind.PRODUCER,
  send: SpanKind.PRODUCER,
  receive: SpanKind.CLIENT,
  process: SpanKind.CONSUMER,
  settle: SpanKind.CLIENT,
};

/**
 * What every span of one operation on one destination starts with: its name, kind and the
 * attributes a sampler may read (system, operation, destination, and the wrapper's static ones such
 * as `server.address`). Built once, shared by every span (the SDK copies attributes at start).
 */
export interface SpanTemplate {
  readonly name: string;
  readonly kind: SpanKind;
  readonly attributes: Attributes;
}

/** Default number of templates one {@link SpanTemplates} keeps. */
export const DEFAULT_SPAN_TEMPLATES = 256;

/** The operation a {@link SpanTemplates} family is for. */
export interface SpanOperation {
  readonly type: MessagingOperationType;
  /** `messaging.operation.name`, the first word of the span name. */
  readonly name: string;
  /** Overrides the conventions' kind for the type (e.g. CLIENT for a send whose messages carry their own contexts). */
  readonly kind?: SpanKind | undefined;
}

/**
 * A bounded cache of {@link SpanTemplate}s for one wrapper and one operation, keyed by the
 * low-cardinality destination of the span name. Past `capacity` destinations, templates are built
 * per call and not kept, so destinations from traffic cannot grow memory.
 */
export class SpanTemplates {
  readonly #operation: SpanOperation;
  readonly #system: string;
  readonly #static: Attributes;
  readonly #legacy: boolean;
  readonly #capacity: number;
  readonly #templates = new Map<string | undefined, SpanTemplate>();

  /**
   * @param system - `messaging.system.name`.
   * @param operation - the operation every template is for.
   * @param staticAttributes - attributes every span starts with (server address, client id...).
   * @param legacy - also emit the older attribute names.
   */
  constructor(
    system: string,
    operation: SpanOperation,
    staticAttributes: Attributes,
    legacy: boolean,
    capacity = DEFAULT_SPAN_TEMPLATES,
  ) {
    this.#system = system;
    this.#operation = operation;
    this.#static = staticAttributes;
    this.#legacy = legacy;
    this.#capacity = capacity;
  }

  /** How many templates are kept (never more than the capacity). */
  get size(): number {
    return this.#templates.size;
  }

  /**
   * The template for spans named after `nameDestination`.
   *
   * @param nameDestination - the low-cardinality destination of the span name; `undefined` leaves it
   * out (`send`, `process`).
   * @param destination - the `messaging.destination.name` baked into the template (default:
   * `nameDestination`). Pass `null` when each span carries its own (see `startSpanFromTemplate`).
   */
  get(
    nameDestination: string | undefined,
    destination: string | null | undefined = nameDestination,
  ): SpanTemplate {
    // Kept under the destination as the span name cuts it: BullMQ takes queue names of any length,
    // and a long name from traffic must not become a long key.
    const key =
      nameDestination !== undefined && nameDestination.length > MAX_DESTINATION_LENGTH
        ? capValue(nameDestination, MAX_DESTINATION_LENGTH)
        : nameDestination;
    const cached = this.#templates.get(key);
    if (cached) return cached;
    const { type, name, kind } = this.#operation;
    let attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM_NAME]: this.#system,
      [ATTR_MESSAGING_OPERATION_NAME]: name,
      [ATTR_MESSAGING_OPERATION_TYPE]: type,
    };
    for (const key in this.#static) attributes[key] = this.#static[key];
    // Destinations are bounded like every value from traffic: BullMQ takes queue names of any length.
    if (typeof destination === 'string')
      attributes[ATTR_MESSAGING_DESTINATION_NAME] = capValue(destination, MAX_DESTINATION_LENGTH);
    if (this.#legacy) attributes = withLegacyNames(attributes);
    const template: SpanTemplate = {
      name: key ? `${name} ${key}` : name,
      kind: kind ?? OPERATION_SPAN_KIND[type],
      attributes,
    };
    if (this.#templates.size < this.#capacity) this.#templates.set(key, template);
    return template;
  }
}

/**
 * The {@link SpanTemplates} of one wrapper for each of its operations, created on first use. The
 * static attributes are read when a family is built; when `version` changes (the wrapper learned
 * something new about its client, e.g. its id), every family is rebuilt.
 *
 * @typeParam K - the wrapper's operation keys, e.g. `'send' | 'process'`.
 */
export class OperationTemplates<K extends string> {
  readonly #system: string;
  readonly #operations: Readonly<Record<K, SpanOperation>>;
  readonly #staticAttributes: () => Attributes;
  readonly #version: (() => number) | undefined;
  readonly #legacy: boolean;
  #built = Number.NaN;
  #families = new Map<K, SpanTemplates>();

  /**
   * @param operations - each operation key's type, name and kind.
   * @param staticAttributes - read when a family is built (server address, client id...).
   * @param version - when its value changes, families are rebuilt.
   */
  constructor(
    system: string,
    operations: Readonly<Record<K, SpanOperation>>,
    staticAttributes: () => Attributes,
    legacy: boolean,
    version?: () => number,
  ) {
    this.#system = system;
    this.#operations = operations;
    this.#staticAttributes = staticAttributes;
    this.#legacy = legacy;
    this.#version = version;
  }

  /** The templates of `operation`, keyed by span-name destination. */
  of(operation: K): SpanTemplates {
    const version = this.#version?.() ?? 0;
    if (version !== this.#built) {
      this.#built = version;
      this.#families = new Map();
    }
    let family = this.#families.get(operation);
    if (!family) {
      family = new SpanTemplates(
        this.#system,
        this.#operations[operation],
        this.#staticAttributes(),
        this.#legacy,
      );
      this.#families.set(operation, family);
    }
    return family;
  }
}

/**
 * The span operations most messaging adapters share, for an adapter's {@link OperationTemplates}
 * table: spread it and add the broker's own (settle operations, transactions...). `sendClient` is
 * a send whose messages all carry their own contexts (a CLIENT span linking to them).
 */
export const MESSAGING_SPAN_OPERATIONS = {
  send: { type: 'send', name: 'send' },
  sendClient: { type: 'send', name: 'send', kind: SpanKind.CLIENT },
  create: { type: 'create', name: 'create' },
  receive: { type: 'receive', name: 'receive' },
  process: { type: 'process', name: 'process' },
} as const satisfies Record<string, SpanOperation>;
