import {
  type Attributes,
  type Context,
  context as contextApi,
  type Link,
  type Span,
  SpanKind,
  type SpanOptions,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
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

/** What a messaging span is about; everything a sampler may read is set at start. */
export interface MessagingSpanSpec {
  /** `messaging.system.name`, e.g. `kafka`. */
  system: string;
  /** `messaging.operation.type`. */
  operationType: MessagingOperationType;
  /** `messaging.operation.name`, e.g. `send`, `process`, `ack`; first word of the span name. */
  operationName: string;
  /** `messaging.destination.name`; omit for none. */
  destination?: string | undefined;
  /**
   * The low-cardinality destination used in the span name (a template, or `undefined` to leave it
   * out for temporary or anonymous destinations). Defaults to `destination`.
   */
  nameDestination?: string | undefined;
  /** Overrides the kind from {@link OPERATION_SPAN_KIND} (e.g. CLIENT for a send after create spans). */
  kind?: SpanKind;
  /** More attributes, set at start. */
  attributes?: Attributes | undefined;
  /** Links set at start. */
  links?: Link[] | undefined;
  /** The parent context. Default: the active context. */
  parent?: Context | undefined;
  /** Start a new trace (ignores the parent's span; baggage in `parent` is kept). */
  root?: boolean | undefined;
  /** Start time (default: now). */
  startTime?: TimeInput | undefined;
  /** Also emit the older attribute names dashboards use. */
  legacyAttributes?: boolean | undefined;
}

/**
 * Starts a span named `{operation name} {destination}` with the conventions' kind and start-time
 * attributes (system, operation name and type, destination). The caller ends it, usually through a
 * {@link SpanHandle}.
 */
export function startMessagingSpan(tracer: Tracer, spec: MessagingSpanSpec): Span {
  const nameDestination = 'nameDestination' in spec ? spec.nameDestination : spec.destination;
  const name = nameDestination ? `${spec.operationName} ${nameDestination}` : spec.operationName;
  // Built field by field (no spreads): this runs once per message.
  let attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM_NAME]: spec.system,
    [ATTR_MESSAGING_OPERATION_NAME]: spec.operationName,
    [ATTR_MESSAGING_OPERATION_TYPE]: spec.operationType,
  };
  const extra = spec.attributes;
  if (extra) for (const key in extra) attributes[key] = extra[key];
  if (spec.destination !== undefined) attributes[ATTR_MESSAGING_DESTINATION_NAME] = spec.destination;
  if (spec.legacyAttributes) attributes = withLegacyNames(attributes);
  const options: SpanOptions = { kind: spec.kind ?? OPERATION_SPAN_KIND[spec.operationType], attributes };
  if (spec.links) options.links = spec.links;
  if (spec.root) options.root = true;
  if (spec.startTime !== undefined) options.startTime = spec.startTime;
  return tracer.startSpan(name, options, spec.parent ?? contextApi.active());
}
