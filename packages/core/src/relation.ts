import { type Context, type Link, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { hopCount, type TraceBudget, withHopCount } from './hops.ts';
import type { MessageContext } from './propagation.ts';

/**
 * How a consumer's span relates to the context the message was created in.
 * - `parent`: the creation context is the parent (one unbroken trace per message).
 * - `link`: a link only; the parent is the processing context hoptrace controls (the batch span for
 *   a message of a traced batch, the caller's context for a pull `get`), never a context that
 *   happened to be active where the consumer, channel or worker was created. For push consumers that
 *   means a new trace. The message's baggage is still made current.
 * - `root`: a new trace, linked to the creation context.
 */
export type RelationPolicy = 'parent' | 'link' | 'root';

/** The policies, for validation and docs. */
export const RELATION_POLICIES: readonly RelationPolicy[] = ['parent', 'link', 'root'];

/** Where a consumer span starts: its parent context, its links, and what the hop budget decided. */
export interface ConsumerStart {
  /** The context to pass as parent to `tracer.startSpan` (and to run the handler in). */
  parent: Context;
  /** The link to the creation context, when the policy adds one. */
  links: Link[] | undefined;
  /** Whether to start a new trace (`root: true` in the span options). */
  root: boolean;
  /** The hop number of this consumer span, when a budget is configured (0 once it restarted). */
  hop: number | undefined;
  /** True when the hop budget ran out and a new trace starts. */
  budgetExceeded: boolean;
}

/**
 * Decides where a consumer span for one message starts.
 *
 * @param message - the message's parsed creation context.
 * @param policy - see {@link RelationPolicy}.
 * @param budget - optional hop budget; when the message's hop count would exceed it, the span starts
 * a new trace linked to the creation context whatever the policy.
 * @param base - the processing context for `link` (ROOT for push consumers, the batch span inside a
 * traced batch, the caller's context for a pull receive).
 * @param parentLink - under `parent`, also link to the creation context (which is the parent too).
 */
export function consumerStart(
  message: MessageContext,
  policy: RelationPolicy,
  budget: TraceBudget | undefined,
  base: Context,
  parentLink: boolean,
): ConsumerStart {
  const spanContext = message.spanContext;
  if (!spanContext) {
    // Nothing to continue: a new trace (under the base for `link`), baggage kept.
    return {
      parent: policy === 'link' ? withBaggageOf(base, message.context) : message.context,
      links: undefined,
      root: policy !== 'link',
      hop: undefined,
      budgetExceeded: false,
    };
  }
  let hop: number | undefined;
  let parentContext = message.context;
  if (budget) {
    hop = hopCount(spanContext) + 1;
    if (hop > budget.maxHops) {
      return {
        parent: withoutSpan(message.context),
        links: [{ context: spanContext }],
        root: true,
        hop: 0,
        budgetExceeded: true,
      };
    }
    if (policy === 'parent') {
      const traceState = withHopCount(spanContext.traceState, hop);
      parentContext = trace.setSpanContext(message.context, { ...spanContext, traceState });
    }
  }
  if (policy === 'parent') {
    return {
      parent: parentContext,
      // No link array unless asked for: this runs for every message, sampled or not.
      links: parentLink ? [{ context: spanContext }] : undefined,
      root: false,
      hop,
      budgetExceeded: false,
    };
  }
  if (policy === 'link') {
    return {
      parent: withBaggageOf(base, message.context),
      links: [{ context: spanContext }],
      root: false,
      hop,
      budgetExceeded: false,
    };
  }
  return {
    parent: withoutSpan(message.context),
    links: [{ context: spanContext }],
    root: true,
    hop,
    budgetExceeded: false,
  };
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
