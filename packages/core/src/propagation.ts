import {
  type Context,
  context as contextApi,
  createTraceState,
  diag,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  trace,
} from '@opentelemetry/api';
import {
  type HeaderCarrier,
  type HeaderMap,
  headerGetter,
  headerName,
  isHeaderMap,
  mapHeaderView,
  receivedHeaderGetter,
  recordSetter,
} from './carrier.ts';
import { dropFieldCaseVariants, fieldCaseVariants, propagatorFields } from './field-case.ts';
import { relayHop, restartedFrom } from './hops.ts';
import { withKnownTraceFlags } from './trace-flags.ts';
import { assertContext } from './validate.ts';

/**
 * Serializes a context into a fresh headers object through the globally registered propagator
 * (W3C `traceparent`/`tracestate`/`baggage` by default; B3 or any other once registered).
 *
 * @param context - the context to carry; `undefined` (or no argument) is the active one.
 * @returns a new object that the caller owns. Never writes into an object the caller passed in.
 * A failing propagator yields the headers written so far.
 * @throws TypeError for a `context` that is not a Context (`null`, a plain object, a Span), naming
 * `injectContext` and what it got.
 */
export function injectContext(context: Context = contextApi.active()): Record<string, string> {
  assertContext('injectContext', context);
  return injectContextUnchecked(context);
}

/**
 * {@link injectContext} without the argument check, for adapters, whose context is always one they
 * built (no cost per message). Never throws.
 */
export function injectContextUnchecked(context: Context): Record<string, string> {
  const headers: Record<string, string> = {};
  try {
    propagation.inject(context, headers, recordSetter);
  } catch (error) {
    diag.warn('hoptrace: propagator failed to inject', error);
  }
  return headers;
}

/**
 * Reads a context out of any header shape brokers hand us: strings, Buffers, Uint8Arrays, arrays of
 * those (first textual value wins), and AMQP values of any type (what is not text is ignored).
 * Values over the W3C size limits are refused before parsing (see `headerGetter`).
 *
 * @param headers - the message headers: an object, or a `Map` as @platformatic/kafka hands them out
 * (string or Buffer keys; see {@link HeaderMap}); `undefined` and `null` are fine.
 * @param base - the context to extend; `undefined` (or no argument) is the active one.
 * @returns `base` extended with what the propagator could parse. Headers never make it throw: input
 * it cannot parse, or a propagator that throws or returns something other than a context, leaves
 * `base` as it was.
 * @throws TypeError for a `base` that is not a Context (`null`, a plain object, a Span), naming
 * `extractContext` and what it got; checked before the headers are read.
 */
export function extractContext(
  headers: HeaderCarrier | HeaderMap,
  base: Context = contextApi.active(),
): Context {
  assertContext('extractContext', base, 'base');
  const context = extractContextUnchecked(headers, base);
  if (context === base) return context;
  // Only a span context the headers gave has its flags cleared: the base's own span (headers with
  // baggage alone) stays as it is, even one of another tool's whose spanContext() throws.
  const span = trace.getSpan(context);
  if (span === undefined || span === trace.getSpan(base)) return context;
  try {
    const spanContext = span.spanContext();
    const known = withKnownTraceFlags(spanContext);
    return known === spanContext ? context : trace.setSpanContext(context, known);
  } catch {
    return context; // a propagator's own span whose spanContext() throws: as it gave it
  }
}

/**
 * {@link extractContext} without the argument check, for adapters, whose base is always a context
 * they chose (no cost per message). Never throws.
 *
 * Header names are matched exactly first. Only headers that gave no trace context that way are read
 * again, when one of their names spells a propagation field in another case, with
 * {@link receivedHeaderGetter} (a field absent under its own name is read under another spelling, as
 * Java OpenTelemetry's B3 propagator writes `X-B3-TraceId`). A message carrying its context under the
 * names the propagator asks for (nearly all) costs one extraction, as before; one without any
 * context, one more walk over its header names.
 *
 * @param exactNames - match exact names only (the caller's own headers of a send).
 */
export function extractContextUnchecked(
  headers: HeaderCarrier | HeaderMap,
  base: Context,
  exactNames = false,
): Context {
  if (!headers) return base;
  const carrier = isHeaderMap(headers) ? mapHeaderView(headers) : headers;
  if (!carrier) return base;
  try {
    const extracted: unknown = propagation.extract(base, carrier, headerGetter);
    // A custom propagator may hand back something that is not a context (e.g. `undefined`).
    const context = isContext(extracted) ? extracted : base;
    if (exactNames) return context;
    const baseSpan = trace.getSpan(base);
    // No trace context under the exact names: read again only when a header spells a field in
    // another case (one walk over the names; none for a message with its context as asked).
    if (trace.getSpan(context) !== baseSpan || fieldCaseVariants(carrier) === undefined) return context;
    const again: unknown = propagation.extract(base, carrier, receivedHeaderGetter);
    return isContext(again) && trace.getSpan(again) !== baseSpan ? again : context;
  } catch (error) {
    diag.debug('hoptrace: propagator failed to extract; keeping the base context', error);
    return base;
  }
}

/** Whether a propagator's `extract` returned a usable context. */
function isContext(value: unknown): value is Context {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Partial<Context>).getValue === 'function' &&
    typeof (value as Partial<Context>).setValue === 'function'
  );
}

/** What one message's headers carry, parsed once. */
export interface MessageContext {
  /** `ROOT_CONTEXT` extended with what the propagator parsed (span context, baggage). */
  readonly context: Context;
  /** The message's creation span context when it is valid, else `undefined`. */
  readonly spanContext: SpanContext | undefined;
}

const EMPTY_MESSAGE_CONTEXT: MessageContext = { context: ROOT_CONTEXT, spanContext: undefined };

/**
 * Parses a received message's headers once: its creation context and, when valid, its span context.
 * Never throws.
 */
export function readMessageContext(headers: HeaderCarrier): MessageContext {
  if (!headers) return EMPTY_MESSAGE_CONTEXT;
  const context = extractContextUnchecked(headers, ROOT_CONTEXT);
  if (context === ROOT_CONTEXT) return EMPTY_MESSAGE_CONTEXT;
  const spanContext = trace.getSpanContext(context);
  if (!spanContext || !isSpanContextValid(spanContext)) return { context, spanContext: undefined };
  const kept = withHeaderTraceState(withKnownTraceFlags(spanContext), headers);
  return kept === spanContext
    ? { context, spanContext }
    : { context: trace.setSpanContext(context, kept), spanContext: kept };
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}/;

/**
 * `spanContext` with the message's W3C `tracestate` when a composite propagator dropped it: one that
 * lists B3 (or another format without a tracestate) after W3C trace context lets the later
 * extractor replace the span context, same ids but no tracestate, and with it hoptrace's hop
 * counter (a hop budget would then never run out). Kept only when the message's `traceparent`
 * names the same trace and span; `spanContext` itself otherwise.
 */
function withHeaderTraceState(spanContext: SpanContext, headers: HeaderCarrier): SpanContext {
  if (spanContext.traceState !== undefined) return spanContext;
  try {
    const state = headerGetter.get(headers, 'tracestate');
    if (typeof state !== 'string' || state.length === 0) return spanContext;
    const parent = headerGetter.get(headers, 'traceparent');
    const ids = typeof parent === 'string' ? TRACEPARENT.exec(parent.trim()) : null;
    if (!ids || ids[1] !== spanContext.traceId || ids[2] !== spanContext.spanId) return spanContext;
    return { ...spanContext, traceState: createTraceState(state) };
  } catch {
    return spanContext;
  }
}

/**
 * The valid trace context a caller's outgoing headers already carry (one they, or another tool,
 * injected), parsed once; `undefined` when there is none (only baggage, a malformed `traceparent`,
 * or no headers). Such a context must be kept, never overwritten.
 */
export function callerSpanContext(headers: HeaderCarrier): SpanContext | undefined {
  if (!headers) return undefined;
  try {
    for (const _ in headers) {
      // Exact names only: a field the caller spelled in another case is stale (see `sendHeaders`).
      const spanContext = trace.getSpanContext(extractContextUnchecked(headers, ROOT_CONTEXT, true));
      return spanContext && isSpanContextValid(spanContext)
        ? withHeaderTraceState(spanContext, headers)
        : undefined;
    }
  } catch {
    // A hostile header object (a Proxy whose key listing throws): treat it as carrying no context.
    // Copying it later throws the host's own error inside the send operation.
  }
  return undefined; // no enumerable keys: nothing to parse
}

/**
 * The headers to send: a copy of the caller's `headers` with `context` injected, unless the caller's
 * headers already carry their own valid context (`caller`, from {@link callerSpanContext}): that
 * one is kept, and the caller's object is returned as it is, unless the message is relayed inside
 * the same trace with a higher hop count, when a copy brings hoptrace's own hop counter in
 * `tracestate` up to date, or unless the hop budget of the caller's trace ran out where `context`
 * started a new trace: then the copy carries the new trace (see `withBudgetRestart`). A field the
 * caller set is never overwritten otherwise (a malformed
 * `traceparent` stays as they sent it), and the caller's object is never written to. A copy leaves
 * out the caller's headers that spell a propagation field in another case (`Traceparent`,
 * `X-B3-TraceId`; see `fieldCaseVariants`), so no field travels twice.
 *
 * @typeParam V - the header value type of the caller's map (e.g. `string | Buffer`).
 * @param injected - `injectContext(context)` when the caller already has it (one send injects its
 * span's context once for all its messages); read only.
 */
export function sendHeaders<V>(
  headers: Readonly<Record<string, V>> | null | undefined,
  context: Context,
  caller: SpanContext | undefined,
  injected?: Readonly<Record<string, string>>,
): Readonly<Record<string, V | string>> {
  if (caller && headers) {
    // Forwarded headers of a trace whose hop budget ran out here: send the new trace instead.
    if (caller.traceId === restartedFrom(context)) return replacedContext(headers, context);
    const relayed = relayHop(caller, context);
    if (!relayed) return headers;
    // Only the W3C tracestate carries the hop counter; every other field stays as the caller sent it.
    const state = injectContextUnchecked(trace.setSpanContext(ROOT_CONTEXT, relayed)).tracestate;
    if (state === undefined) return headers;
    const relayedCopy: Record<string, V | string> = { ...headers, tracestate: state };
    dropFieldCaseVariants(relayedCopy);
    return relayedCopy;
  }
  const out: Record<string, V | string> = headers ? { ...headers } : {};
  if (headers) dropFieldCaseVariants(out);
  const fields = fieldsToAdd(headers, injected ?? injectContextUnchecked(context));
  for (const key in fields) out[key] = fields[key] as string;
  return out;
}

/**
 * The fields of `injected` a send adds to a message's `headers`: those the headers do not set
 * (absent, `null` or `undefined`), so a field the caller set (a malformed `traceparent`, their own
 * baggage) is never overwritten. `injected` itself when the headers set none of them.
 */
export function fieldsToAdd(
  headers: Readonly<Record<string, unknown>> | null | undefined,
  injected: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  if (!headers) return injected;
  let anySet = false;
  for (const key in injected) {
    if (isSet(headers, key)) {
      anySet = true;
      break;
    }
  }
  if (!anySet) return injected;
  const out: Record<string, string> = {};
  for (const key in injected) if (!isSet(headers, key)) out[key] = injected[key] as string;
  return out;
}

/** Whether the caller's headers set `key` (to anything but `null` or `undefined`). */
function isSet(headers: Readonly<Record<string, unknown>>, key: string): boolean {
  return headers[key] !== undefined && headers[key] !== null;
}

/**
 * A copy of `headers` whose propagation fields are those of `context`: the stale trace fields
 * (`traceparent`, `tracestate`, B3...) are dropped and `context`'s injected. Baggage the context does
 * not carry is kept as the caller sent it.
 */
function replacedContext<V>(
  headers: Readonly<Record<string, V>>,
  context: Context,
): Readonly<Record<string, V | string>> {
  const out: Record<string, V | string> = { ...headers };
  dropFieldCaseVariants(out);
  // A propagator whose fields() throws or lists no array: the W3C trace fields, where hops are counted.
  for (const field of propagatorFields()) {
    if (typeof field === 'string' && field !== 'baggage') delete out[field];
  }
  const injected = injectContextUnchecked(context);
  for (const key in injected) out[key] = injected[key] as string;
  return out;
}

/**
 * Returns a copy of `headers` with the context's propagation headers added. When the headers already
 * carry a valid trace context, the copy keeps it and nothing is added, so two contexts are never
 * mixed. Otherwise the injected fields are added, except that a header the caller set is never
 * overwritten (a malformed `traceparent` stays as the caller sent it). The caller's object is not
 * touched; headers are parsed once.
 *
 * A `Map` (see {@link HeaderMap}) gives a new `Map`: the caller's entries under their own keys and
 * values (Buffer keys stay Buffers), the added fields as string keys and string values (encode them
 * if your client's serializers take only bytes); an entry it leaves out (a stale `Traceparent`) or
 * replaces is left out under every key spelling its name.
 *
 * @typeParam K - the key type of the caller's `Map` (e.g. `string | Buffer`).
 * @typeParam V - the header value type of the caller's headers (e.g. `string | Buffer`).
 * @param context - the context to add; `undefined` (or no argument) is the active one.
 * @throws TypeError for a `context` that is not a Context (`null`, a plain object, a Span), naming
 * `withContextHeaders` and what it got. Header values it cannot parse never make it throw; a
 * header object whose own reads throw (a throwing getter, a Proxy trap, a `Map` whose `forEach`
 * throws) throws that error unchanged while being copied, as a client sending it would.
 */
export function withContextHeaders<K, V>(
  headers: ReadonlyMap<K, V>,
  context?: Context,
): Map<K | string, V | string>;
export function withContextHeaders<V>(
  headers: Readonly<Record<string, V>> | null | undefined,
  context?: Context,
): Record<string, V | string>;
export function withContextHeaders<V>(
  headers: Readonly<Record<string, V>> | HeaderMap | null | undefined,
  context: Context = contextApi.active(),
): Record<string, V | string> | Map<unknown, unknown> {
  assertContext('withContextHeaders', context);
  if (isHeaderMap(headers)) return withMapContextHeaders(headers, context);
  const caller = callerSpanContext(headers);
  const out = sendHeaders(headers, context, caller);
  return out === headers ? { ...headers } : (out as Record<string, V | string>);
}

/**
 * {@link withContextHeaders} for a `Map`: the decision is made on the map's named view, as for an
 * object, then applied to the map's own entries by name.
 */
function withMapContextHeaders(headers: HeaderMap, context: Context): Map<unknown, unknown> {
  const view = mapHeaderView(headers);
  const out: Readonly<Record<string, unknown>> = sendHeaders(view, context, callerSpanContext(view));
  const copy = new Map<unknown, unknown>();
  // A name is kept, under every key spelling it, unless the copy drops or replaces its value.
  const kept = (name: string) => view !== undefined && Object.hasOwn(out, name) && out[name] === view[name];
  headers.forEach((value, key) => {
    const name = out === view ? undefined : headerName(key);
    if (name === undefined || kept(name)) copy.set(key, value);
  });
  if (out !== view) for (const name in out) if (!kept(name)) copy.set(name, out[name]);
  return copy;
}
