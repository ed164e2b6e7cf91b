import {
  type Attributes,
  type Context,
  context as contextApi,
  createTraceState,
  isSpanContextValid,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  trace,
} from '@opentelemetry/api';

/**
 * How a consumer's span relates to the context the message was created in.
 * - `parent`: the creation context is the parent (one unbroken trace per message), plus a link to it.
 * - `link`: a link only; the parent is whatever context is active where processing starts (the
 *   message's baggage is still made current).
 * - `root`: a new trace, linked to the creation context.
 */
export type RelationPolicy = 'parent' | 'link' | 'root';

/** The policies, for validation and docs. */
export const RELATION_POLICIES: readonly RelationPolicy[] = ['parent', 'link', 'root'];

/**
 * A budget of asynchronous hops per trace. Each consumer hop increments a counter kept in the W3C
 * `tracestate` (member {@link HOP_TRACESTATE_KEY}); once it would exceed `maxHops`, the consumer
 * starts a new trace linked to the old one, so loops and retry chains never grow one endless trace.
 */
export interface TraceBudget {
  /** Hops allowed in one trace before a new linked trace starts. An integer >= 1. */
  maxHops: number;
}

/** The tracestate member that carries hoptrace's hop counter. */
export const HOP_TRACESTATE_KEY = 'hoptrace';

/** Attribute set on a span whose trace was restarted because the hop budget ran out. */
export const ATTR_HOPTRACE_BUDGET_EXCEEDED = 'hoptrace.trace_budget.exceeded';
/** Attribute with the hop number of a consumer span (1 = first hop after the producer). */
export const ATTR_HOPTRACE_HOP = 'hoptrace.hop';

/** The hop count carried by a span context (0 when absent or unreadable). */
export function hopCount(spanContext: SpanContext | undefined): number {
  const raw = spanContext?.traceState?.get(HOP_TRACESTATE_KEY);
  if (!raw) return 0;
  const n = Number.parseInt(raw, 10);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

/** Where a consumer span starts: its parent context and the links it carries. */
export interface ConsumerStart {
  /** The context to pass as parent to `tracer.startSpan`. */
  parent: Context;
  /** Links to add at start (the creation context, when valid). */
  links: Link[];
  /** Whether to start a new trace (`root: true` in the span options). */
  root: boolean;
  /** Attributes the relation adds (hop number, budget exceeded). */
  attributes: Attributes;
}

/**
 * Decides where a consumer span for one message starts.
 *
 * @param creation - the context extracted from the message (its creation context).
 * @param policy - see {@link RelationPolicy}.
 * @param budget - optional hop budget; when the message's hop count would exceed it, the span
 * starts a new trace linked to the creation context whatever the policy.
 * @param active - the context active where processing starts (used by `link`).
 * @param parentLink - under `parent`, also link to the creation context (which is the parent too).
 * Default `true`; `false` exports one link fewer per message.
 */
export function consumerStart(
  creation: Context,
  policy: RelationPolicy,
  budget?: TraceBudget,
  active: Context = contextApi.active(),
  parentLink = true,
): ConsumerStart {
  const spanContext = trace.getSpanContext(creation);
  if (!spanContext || !isSpanContextValid(spanContext)) {
    // Nothing to continue: a new trace (under the active context for `link`), baggage kept.
    return {
      parent: policy === 'link' ? withBaggageOf(active, creation) : creation,
      links: [],
      root: policy !== 'link',
      attributes: {},
    };
  }
  const links: Link[] = [{ context: spanContext }];
  const attributes: Attributes = {};
  const counting = budget !== undefined || spanContext.traceState?.get(HOP_TRACESTATE_KEY) !== undefined;
  if (!counting) {
    if (policy === 'parent')
      return { parent: creation, links: parentLink ? links : [], root: false, attributes };
    if (policy === 'link') return { parent: withBaggageOf(active, creation), links, root: false, attributes };
    return { parent: withoutSpan(creation), links, root: true, attributes };
  }
  const hop = hopCount(spanContext) + 1;
  if (budget && hop > budget.maxHops) {
    attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED] = true;
    attributes[ATTR_HOPTRACE_HOP] = 0;
    return { parent: withoutSpan(creation), links, root: true, attributes };
  }
  attributes[ATTR_HOPTRACE_HOP] = hop;
  if (policy === 'parent') {
    const traceState = (spanContext.traceState ?? createTraceState()).set(HOP_TRACESTATE_KEY, String(hop));
    return {
      parent: trace.setSpanContext(creation, { ...spanContext, traceState }),
      links: parentLink ? links : [],
      root: false,
      attributes,
    };
  }
  if (policy === 'link') return { parent: withBaggageOf(active, creation), links, root: false, attributes };
  return { parent: withoutSpan(creation), links, root: true, attributes };
}

/** `target` with the message's baggage (if any), so business context reaches the handler. */
function withBaggageOf(target: Context, source: Context): Context {
  const bag = propagation.getBaggage(source);
  return bag ? propagation.setBaggage(target, bag) : target;
}

/** The context with its span removed but its other entries (baggage) kept. */
function withoutSpan(context: Context): Context {
  return context === ROOT_CONTEXT ? context : trace.deleteSpan(context);
}
