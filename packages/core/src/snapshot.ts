import {
  type Baggage,
  type Context,
  context as contextApi,
  createTraceState,
  diag,
  isSpanContextValid,
  propagation,
  type SpanContext,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, MAX_TRACESTATE_LENGTH } from './limits.ts';

/**
 * A context flattened into a small plain object: JSON-safe, so it can be stored in Redis, posted to
 * a worker thread or kept across callbacks where AsyncLocalStorage does not follow.
 */
export interface ContextSnapshot {
  /** 32 lowercase hex characters. */
  traceId: string;
  /** 16 lowercase hex characters. */
  spanId: string;
  /** W3C trace flags (bit 0: sampled). */
  traceFlags: number;
  /** The serialized W3C `tracestate`, when there is one. */
  traceState?: string;
  /** Baggage entries as `[key, value]` pairs (metadata is not kept). */
  baggage?: Array<[string, string]>;
}

/**
 * Captures the span context and baggage of `context` (default: the active one).
 *
 * @returns a fresh snapshot, or `undefined` when the context has neither a valid span context nor
 * baggage.
 */
export function captureSnapshot(context: Context = contextApi.active()): ContextSnapshot | undefined {
  const target: ContextSnapshot = { traceId: '', spanId: '', traceFlags: 0 };
  return fillSnapshot(target, context) ? target : undefined;
}

/** Fills `target` in place from `context`; returns false when there was nothing to capture. */
export function fillSnapshot(target: ContextSnapshot, context: Context): boolean {
  const spanContext = trace.getSpanContext(context);
  const bag = propagation.getBaggage(context);
  const valid = spanContext !== undefined && isSpanContextValid(spanContext);
  if (!valid && !bag) return false;
  if (valid) {
    target.traceId = spanContext.traceId;
    target.spanId = spanContext.spanId;
    target.traceFlags = spanContext.traceFlags;
    const state = spanContext.traceState?.serialize();
    if (state) target.traceState = state;
  }
  if (bag) {
    const entries = bag.getAllEntries();
    if (entries.length > 0) target.baggage = entries.map(([key, entry]) => [key, entry.value]);
  }
  return true;
}

/**
 * Turns a snapshot back into a context: `base` (default: the active context) with the snapshot's
 * span context set as a remote parent and its baggage. The snapshot may come from storage written by
 * anyone, so it is validated: invalid ids leave the span context out, oversized tracestate and
 * baggage are dropped, and a value that is not a snapshot at all returns `base`. Never throws.
 */
export function restoreSnapshot(snapshot: unknown, base: Context = contextApi.active()): Context {
  if (!snapshot || typeof snapshot !== 'object') return base;
  const s = snapshot as Partial<ContextSnapshot>;
  let context = base;
  try {
    if (typeof s.traceId === 'string' && typeof s.spanId === 'string') {
      const spanContext: SpanContext = {
        traceId: s.traceId,
        spanId: s.spanId,
        traceFlags: typeof s.traceFlags === 'number' ? s.traceFlags & 0xff : TraceFlags.NONE,
        isRemote: true,
      };
      if (
        typeof s.traceState === 'string' &&
        s.traceState.length > 0 &&
        s.traceState.length <= MAX_TRACESTATE_LENGTH
      ) {
        spanContext.traceState = createTraceState(s.traceState);
      }
      if (isSpanContextValid(spanContext)) context = trace.setSpanContext(context, spanContext);
    }
    if (Array.isArray(s.baggage)) {
      const bag = baggageFromPairs(s.baggage);
      if (bag) context = propagation.setBaggage(context, bag);
    }
  } catch (error) {
    diag.debug('hoptrace: ignoring a malformed context snapshot', error);
    return base;
  }
  return context;
}

function baggageFromPairs(pairs: unknown[]): Baggage | undefined {
  const entries: Record<string, { value: string }> = {};
  let bytes = 0;
  let members = 0;
  for (const pair of pairs) {
    if (!Array.isArray(pair)) continue;
    const [key, value] = pair as unknown[];
    if (typeof key !== 'string' || typeof value !== 'string' || key.length === 0) continue;
    bytes += key.length + value.length + 1;
    if (members >= MAX_BAGGAGE_MEMBERS || bytes > MAX_BAGGAGE_BYTES) break;
    entries[key] = { value };
    members += 1;
  }
  return members > 0 ? propagation.createBaggage(entries) : undefined;
}
