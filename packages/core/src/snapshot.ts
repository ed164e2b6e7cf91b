import {
  type Baggage,
  type Context,
  context as contextApi,
  createTraceState,
  diag,
  isSpanContextValid,
  propagation,
  type SpanContext,
  trace,
} from '@opentelemetry/api';
import { acceptBaggageEntries, acceptTraceState, MAX_BAGGAGE_MEMBERS } from './limits.ts';
import { knownTraceFlags } from './trace-flags.ts';
import { assertContext } from './validate.ts';

/**
 * A context flattened into a small plain object: JSON-safe, so it can be stored in Redis, posted to
 * a worker thread or kept across callbacks where AsyncLocalStorage does not follow. Its format
 * version `v` lets a snapshot stored for a long time (a scheduled job) outlive hoptrace upgrades:
 * {@link restoreSnapshot} reads the versions it knows and refuses others.
 */
export interface ContextSnapshot {
  /**
   * The snapshot format version, {@link SNAPSHOT_VERSION}; {@link captureSnapshot} always writes it,
   * first. Optional in the type because snapshots written before hoptrace added it (still stored,
   * e.g. in scheduled jobs) have none; they are read as version 1.
   */
  v?: typeof SNAPSHOT_VERSION;
  /** 32 lowercase hex characters; empty in a snapshot of baggage alone (no valid span context). */
  traceId: string;
  /** 16 lowercase hex characters; empty in a snapshot of baggage alone. */
  spanId: string;
  /** W3C trace flags (bit 0: sampled). */
  traceFlags: number;
  /** The serialized W3C `tracestate`, when there is one. */
  traceState?: string;
  /** Baggage entries as `[key, value]` pairs (metadata is not kept). */
  baggage?: Array<[string, string]>;
}

/** The format version {@link captureSnapshot} writes as a snapshot's `v`. */
export const SNAPSHOT_VERSION = 1;

/**
 * Captures the span context and baggage of `context` (default: the active one).
 *
 * @param context - an OpenTelemetry `Context`; `undefined` (or no argument) is the active one.
 * @returns a fresh snapshot, or `undefined` when the context has neither a valid span context nor
 * a baggage entry. An unsampled span context is captured (`traceFlags` 0). Capped as
 * {@link restoreSnapshot} reads: baggage over 64 members or 8192 bytes and a tracestate over 512
 * characters or 32 members are left out whole (a restore would drop them).
 * @throws TypeError for a `context` that is not a Context (`null`, a plain object, a Span), naming
 * `captureSnapshot` and what it got. (`restoreSnapshot` never throws for its snapshot: that is data,
 * read from storage; the context is the calling code's own.)
 */
export function captureSnapshot(context: Context = contextApi.active()): ContextSnapshot | undefined {
  assertContext('captureSnapshot', context);
  const target: ContextSnapshot = { v: SNAPSHOT_VERSION, traceId: '', spanId: '', traceFlags: 0 };
  return fillSnapshot(target, context) ? target : undefined;
}

/**
 * Fills `target` from `context`; false when there was nothing to capture. Capped as
 * {@link restoreSnapshot} reads: a tracestate or baggage it would drop whole (over the W3C limits) is
 * left out here, so a snapshot never stores and carries what no restore reads (1000 local baggage
 * entries made a snapshot of over 100 KB).
 */
function fillSnapshot(target: ContextSnapshot, context: Context): boolean {
  const spanContext = trace.getSpanContext(context);
  const entries = propagation.getBaggage(context)?.getAllEntries();
  const valid = spanContext !== undefined && isSpanContextValid(spanContext);
  let baggage: Array<[string, string]> | undefined;
  if (entries?.length) {
    const pairs = entries.map(([key, entry]): [string, string] => [key, entry.value]);
    if (acceptBaggageEntries(pairs)) baggage = pairs;
    else diag.debug('hoptrace: a context snapshot leaves out baggage over the W3C limits');
  }
  if (!valid && !baggage) return false;
  if (valid) {
    target.traceId = spanContext.traceId;
    target.spanId = spanContext.spanId;
    target.traceFlags = knownTraceFlags(spanContext.traceFlags);
    const state = spanContext.traceState?.serialize();
    if (state && acceptTraceState(state)) target.traceState = state;
    else if (state) diag.debug('hoptrace: a context snapshot leaves out a tracestate over the W3C limits');
  }
  if (baggage) target.baggage = baggage;
  return true;
}

/**
 * Turns a snapshot back into a context: `base` (default: the active context) with the snapshot's
 * span context set as a remote parent and its baggage. The snapshot may come from storage written by
 * anyone, so it is validated with the same limits `extractContext` applies to headers: invalid ids
 * (uppercase hex too, as W3C says) and `traceFlags` that are not an integer from 0 to 255 leave the
 * span context out (flags W3C does not define are cleared, as they are when a header is read), a tracestate over 512 characters or 32 members and baggage over 64 members or
 * 8192 bytes are dropped whole, and a value that is not a snapshot at all returns `base`. A snapshot
 * without a version `v` (written by a hoptrace release before versions) is read as version 1; one of
 * a version this release does not know (a later release's, or a `v` that is not a known number)
 * returns `base` whole: nothing of it is read. The snapshot never makes it throw.
 *
 * @param snapshot - what {@link captureSnapshot} returned, read back from anywhere (any value).
 * @param base - the context to extend; `undefined` (or no argument) is the active one.
 * @throws TypeError for a `base` that is not a Context (`null`, a plain object, a Span), naming
 * `restoreSnapshot` and what it got; checked before the snapshot is read.
 */
export function restoreSnapshot(snapshot: unknown, base: Context = contextApi.active()): Context {
  assertContext('restoreSnapshot', base, 'base');
  if (!snapshot || typeof snapshot !== 'object') return base;
  const s = snapshot as Partial<ContextSnapshot>;
  let context = base;
  try {
    const { v } = s as { v?: unknown };
    if (v !== undefined && v !== SNAPSHOT_VERSION) {
      diag.debug(
        `hoptrace: ignoring a context snapshot of a version this release cannot read (v: ${String(v)})`,
      );
      return base;
    }
    const { traceId, spanId, traceFlags } = s;
    if (
      typeof traceId === 'string' &&
      typeof spanId === 'string' &&
      LOWER_TRACE_ID.test(traceId) &&
      LOWER_SPAN_ID.test(spanId) &&
      isTraceFlags(traceFlags)
    ) {
      const spanContext: SpanContext = {
        traceId,
        spanId,
        traceFlags: knownTraceFlags(traceFlags),
        isRemote: true,
      };
      if (typeof s.traceState === 'string' && s.traceState.length > 0 && acceptTraceState(s.traceState)) {
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

/**
 * W3C ids are lowercase hex. The API's `isSpanContextValid` also accepts uppercase, but a context
 * with uppercase ids injects a `traceparent` every W3C extractor (hoptrace's included) refuses.
 */
const LOWER_TRACE_ID = /^[0-9a-f]{32}$/;
const LOWER_SPAN_ID = /^[0-9a-f]{16}$/;

/**
 * W3C trace flags are one byte: an integer from 0 to 255, as the two hex digits of a `traceparent`
 * spell. Anything else is refused, not masked (`-1` would have become 255, sampled; `257`, 1).
 */
function isTraceFlags(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xff;
}

function baggageFromPairs(pairs: unknown[]): Baggage | undefined {
  if (pairs.length === 0 || pairs.length > MAX_BAGGAGE_MEMBERS) return undefined;
  const valid: Array<[string, string]> = [];
  for (const pair of pairs) {
    if (!Array.isArray(pair)) continue;
    const [key, value] = pair as unknown[];
    if (typeof key !== 'string' || typeof value !== 'string' || key.length === 0) continue;
    valid.push([key, value]);
  }
  if (valid.length === 0 || !acceptBaggageEntries(valid)) return undefined;
  const entries: Record<string, { value: string }> = {};
  for (const [key, value] of valid) entries[key] = { value };
  return propagation.createBaggage(entries);
}
