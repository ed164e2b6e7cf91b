import type { Attributes, Context, Link, Span } from '@opentelemetry/api';
import { context as contextApi, trace } from '@opentelemetry/api';
import type { Instrumentation } from './instrumentation.ts';
import { type MessagingSpanSpec, startMessagingSpan } from './messaging-span.ts';
import { consumerStart } from './relation.ts';

/** A consumer span and the context its handler should run in. */
export interface StartedConsumerSpan {
  span: Span;
  /** The parent context (with the message's baggage) with `span` set on it. */
  context: Context;
}

/**
 * Starts a receive or process span for one message under the instrumentation's relation policy and
 * hop budget, with allow-listed baggage as attributes.
 *
 * @param creation - the message's creation context, e.g. from {@link extractContext}.
 * @param spec - the span's conventions (parent, links and root are decided here).
 * @param extraLinks - links beyond the creation context (rarely needed).
 */
export function startConsumerSpan(
  instrumentation: Instrumentation,
  creation: Context,
  spec: Omit<MessagingSpanSpec, 'parent' | 'root' | 'links' | 'legacyAttributes'>,
  extraLinks?: Link[],
): StartedConsumerSpan {
  const start = consumerStart(
    creation,
    instrumentation.relation,
    instrumentation.traceBudget,
    contextApi.active(),
    instrumentation.parentLink,
  );
  const baggage = instrumentation.baggage?.(creation);
  let attributes: Attributes | undefined = spec.attributes;
  if (baggage || Object.keys(start.attributes).length > 0) {
    attributes = { ...spec.attributes, ...start.attributes, ...baggage };
  }
  const span = startMessagingSpan(instrumentation.tracer, {
    ...spec,
    attributes,
    parent: start.parent,
    root: start.root,
    links: extraLinks ? [...start.links, ...extraLinks] : start.links,
    legacyAttributes: instrumentation.legacyAttributes,
  });
  return { span, context: trace.setSpan(start.parent, span) };
}
