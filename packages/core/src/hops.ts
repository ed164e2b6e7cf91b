import {
  type Context,
  createContextKey,
  createTraceState,
  type SpanContext,
  type TraceState,
  trace,
} from '@opentelemetry/api';
import { acceptTraceState } from './limits.ts';

/**
 * A budget of asynchronous hops per trace. Each consumer hop that has a budget increments a counter
 * kept in the W3C `tracestate` (member {@link HOP_TRACESTATE_KEY}); once it would exceed `maxHops`,
 * the consumer starts a new trace linked to the old one, so loops and retry chains never grow one
 * endless trace. Without a budget nothing is counted and no `tracestate` member is written.
 */
export interface TraceBudget {
  /** Hops allowed in one trace before a new linked trace starts. An integer >= 1. */
  maxHops: number;
}

/** The tracestate member that carries hoptrace's hop counter. */
export const HOP_TRACESTATE_KEY = 'hoptrace';

/**
 * The hop counter as hoptrace writes it: a decimal integer, digits only, at most 15 of them (so the
 * next hop's count is still exact).
 */
const HOP_COUNT = /^[0-9]{1,15}$/;

/**
 * The hop count carried by a span context: its {@link HOP_TRACESTATE_KEY} member read strictly (see
 * `HOP_COUNT`); 0 when absent or unreadable (`1e308`, `2.9`, `-1`, `NaN`, 16 digits), as if no
 * counter came in, so the next counting hop writes 1 over it. A value hoptrace did not write never
 * spends or shifts the budget; dropping the member would reset it all the same.
 */
export function hopCount(spanContext: SpanContext | undefined): number {
  const raw = spanContext?.traceState?.get(HOP_TRACESTATE_KEY);
  return raw !== undefined && HOP_COUNT.test(raw) ? Number(raw) : 0;
}

/**
 * `traceState` (or a new one) with hoptrace's hop counter set to `hop`, as its first member, within
 * the W3C limits (32 members, 512 characters): when the counter does not fit beside the other
 * vendors' members, the right-most ones are dropped, as W3C Trace Context asks of a vendor adding a
 * member at the limit. Without that, a peer's tracestate at the limit made the counter go missing:
 * the OpenTelemetry SDK's `set` refuses a member past 512 characters (the count never advanced), and
 * a 33rd member made the whole header too long for every reader (hoptrace refuses it, so the count
 * started over), so a hop budget never ran out.
 */
export function withHopCount(traceState: TraceState | undefined, hop: number): TraceState {
  const value = String(hop);
  let state = traceState ?? createTraceState();
  // Each round drops a member; a valid state has at most 32 of them. The bound also ends the loop for
  // a custom TraceState (a propagator's own) whose serialization never settles: then ours alone.
  for (let round = 0; round <= MAX_TRACESTATE_ROUNDS; round++) {
    const next = state.set(HOP_TRACESTATE_KEY, value);
    const serialized = next.serialize();
    if (next.get(HOP_TRACESTATE_KEY) === value && acceptTraceState(serialized)) return next;
    // Drop the right-most member other than ours and try again (ours is never the only one left:
    // `hoptrace=<n>` alone is within the limits).
    const others = state.unset(HOP_TRACESTATE_KEY).serialize();
    if (others.length === 0) return createTraceState().set(HOP_TRACESTATE_KEY, value);
    const last = others.slice(others.lastIndexOf(',') + 1);
    const key = last.slice(0, last.indexOf('=')).trim();
    const shorter = state.unset(HOP_TRACESTATE_KEY).unset(key);
    // A state whose right-most member cannot be removed by its key: start from ours alone.
    if (shorter.serialize() === others) return createTraceState().set(HOP_TRACESTATE_KEY, value);
    state = shorter;
  }
  return createTraceState().set(HOP_TRACESTATE_KEY, value);
}

/** Most members {@link withHopCount} drops before it keeps only its own (twice the W3C maximum of 32). */
const MAX_TRACESTATE_ROUNDS = 64;

/**
 * For a message relayed with the headers it was consumed with: when the relaying code runs inside
 * the same trace (`context`) with a higher hop count than the forwarded headers carry, the caller's
 * span context with the hop counter brought up to date; otherwise `undefined` (nothing to change).
 */
export function relayHop(caller: SpanContext, context: Context): SpanContext | undefined {
  const active = trace.getSpanContext(context);
  if (!active || active.traceId !== caller.traceId) return undefined;
  const hop = hopCount(active);
  if (hop <= hopCount(caller)) return undefined;
  return { ...caller, traceState: withHopCount(caller.traceState, hop) };
}

const RESTART_KEY = createContextKey('hoptrace.budget-restart');

/**
 * `context` marked as the handler context of a consumer span that started a new trace because the
 * hop budget of trace `fromTraceId` ran out. A relay that forwards the consumed headers (which still
 * carry the old trace) from this context sends the new trace instead (see {@link restartedFrom}), so
 * the hops after a restart continue one new trace rather than each starting another.
 */
export function withBudgetRestart(context: Context, fromTraceId: string): Context {
  return context.setValue(RESTART_KEY, fromTraceId);
}

/** The trace whose hop budget ran out where `context` started a new one, if it did. */
export function restartedFrom(context: Context): string | undefined {
  const value = context.getValue(RESTART_KEY);
  return typeof value === 'string' ? value : undefined;
}
