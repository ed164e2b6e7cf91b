import { type Attributes, SpanKind } from '@opentelemetry/api';
import { withLegacyNames } from './attributes.ts';
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
    const cached = this.#templates.get(nameDestination);
    if (cached) return cached;
    const { type, name, kind } = this.#operation;
    let attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM_NAME]: this.#system,
      [ATTR_MESSAGING_OPERATION_NAME]: name,
      [ATTR_MESSAGING_OPERATION_TYPE]: type,
    };
    for (const key in this.#static) attributes[key] = this.#static[key];
    if (typeof destination === 'string') attributes[ATTR_MESSAGING_DESTINATION_NAME] = destination;
    if (this.#legacy) attributes = withLegacyNames(attributes);
    const template: SpanTemplate = {
      name: nameDestination ? `${name} ${nameDestination}` : name,
      kind: kind ?? OPERATION_SPAN_KIND[type],
      attributes,
    };
    if (this.#templates.size < this.#capacity) this.#templates.set(nameDestination, template);
    return template;
  }
}
