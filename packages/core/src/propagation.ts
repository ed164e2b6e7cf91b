import {
  type Context,
  context as contextApi,
  diag,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  trace,
} from '@opentelemetry/api';
import { type HeaderCarrier, headerGetter, recordSetter } from './carrier.ts';

/**
 * Serializes a context into a fresh headers object through the globally registered propagator
 * (W3C `traceparent`/`tracestate`/`baggage` by default; B3 or any other once registered).
 *
 * @param context - the context to carry; defaults to the active one.
 * @returns a new object that the caller owns. Never writes into an object the caller passed in.
 * Never throws: a failing propagator yields the headers written so far.
 */
export function injectContext(context: Context = contextApi.active()): Record<string, string> {
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
 *
 * @param headers - the message headers; `undefined` and `null` are fine.
 * @param base - the context to extend; defaults to the active one.
 * @returns `base` extended with what the propagator could parse. Never throws; input it cannot
 * parse leaves `base` as it was.
 */
export function extractContext(headers: HeaderCarrier, base: Context = contextApi.active()): Context {
  if (!headers) return base;
  try {
    return propagation.extract(base, headers, headerGetter);
  } catch (error) {
    diag.debug('hoptrace: propagator failed to extract; keeping the base context', error);
    return base;
  }
}

/**
 * True when `headers` already carry a valid trace context under the registered propagator (e.g. a
 * well-formed `traceparent` the caller or another tool injected), which must not be overwritten.
 * Headers with only `baggage`, only `tracestate`, or a malformed `traceparent` do not count. Cheap
 * when no propagation field is present (no parsing then).
 */
export function hasPropagationHeaders(headers: HeaderCarrier): boolean {
  if (!headers) return false;
  let present = false;
  for (const field of propagation.fields()) {
    const value = headers[field];
    if (value !== undefined && value !== null) {
      present = true;
      break;
    }
  }
  if (!present) return false;
  const spanContext = trace.getSpanContext(extractContext(headers, ROOT_CONTEXT));
  return spanContext !== undefined && isSpanContextValid(spanContext);
}

/**
 * Returns a copy of `headers` with the context's propagation headers added. When the headers already
 * carry a valid trace context ({@link hasPropagationHeaders}), the copy keeps it untouched and nothing
 * is added, so two contexts are never mixed. Otherwise the injected fields are added, except that a
 * header the caller set is never overwritten (a malformed `traceparent` stays as the caller sent it).
 * The caller's object is not touched.
 *
 * @typeParam V - the header value type of the caller's map (e.g. `string | Buffer`).
 */
export function withContextHeaders<V>(
  headers: Readonly<Record<string, V>> | null | undefined,
  context: Context = contextApi.active(),
): Record<string, V | string> {
  const out: Record<string, V | string> = headers ? { ...headers } : {};
  if (hasPropagationHeaders(headers)) return out;
  const injected = injectContext(context);
  for (const key in injected) {
    if (out[key] === undefined || out[key] === null) out[key] = injected[key] as string;
  }
  return out;
}
