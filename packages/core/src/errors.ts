import { type Attributes, type AttributeValue, diag, type Span, SpanStatusCode } from '@opentelemetry/api';
import { capValue } from './attributes.ts';
import { ATTR_HOPTRACE_ERROR_RETRYABLE } from './names.ts';
import { ATTR_ERROR_TYPE, ERROR_TYPE_OTHER } from './semconv.ts';

/** How deep {@link errorTypeOf} follows `cause` chains (kafkajs nests its protocol errors one or two deep). */
const MAX_CAUSE_DEPTH = 5;
/** `error.type` values longer than this are cut (they are meant to be short codes). */
export const MAX_ERROR_TYPE_LENGTH = 128;
/** Exception messages recorded on spans (and status descriptions) are cut to this many characters. */
export const MAX_ERROR_MESSAGE_LENGTH = 1024;
/** A classifier may add at most this many attributes; string values are cut to 256 characters. */
export const MAX_CLASSIFIER_ATTRIBUTES = 16;
const MAX_CLASSIFIER_VALUE_LENGTH = 256;
/** Stack traces recorded on exception events are cut to this many characters. */
const MAX_ERROR_STACK_LENGTH = 4096;

/**
 * What an {@link ErrorClassifier} says about a thrown value. Every field is optional; what is left
 * out falls back to hoptrace's defaults.
 */
export interface ErrorClassification {
  /**
   * The `error.type`: a short, low-cardinality code (e.g. `STOCK_UNAVAILABLE`, `ETIMEDOUT`). Default:
   * {@link errorTypeOf} (a client library's error code, else the error's class name, else `_OTHER`).
   */
  type?: string | undefined;
  /** Whether retrying could succeed; recorded as `hoptrace.error.retryable`. Default: not recorded. */
  retryable?: boolean | undefined;
  /**
   * More attributes for the failed span (at most 16; strings cut to 256 characters). `error.type` and
   * `hoptrace.error.retryable` are left out: `type` and `retryable` set them.
   */
  attributes?: Attributes | undefined;
}

/**
 * Maps whatever a handler or a client call threw to an {@link ErrorClassification}. Runs guarded:
 * if it throws or returns something else, hoptrace's default classification is used, and the host
 * still gets its own error back unchanged.
 *
 * @example (error) => error instanceof HttpError ? { type: `HTTP_${error.status}`, retryable: error.status >= 500 } : undefined
 */
export type ErrorClassifier = (error: unknown) => ErrorClassification | undefined;

/** A classification resolved against the defaults: what hoptrace records. */
export interface ResolvedFailure {
  readonly type: string;
  readonly retryable: boolean | undefined;
  readonly attributes: Attributes | undefined;
}

/** Reads `value[key]` without letting a throwing getter or a Proxy trap escape. */
function read(value: object, key: string): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** `text` within `max` code units, never cut inside a surrogate pair (see {@link capValue}). */
function cut(text: string, max: number): string {
  return capValue(text, max);
}

/**
 * The `error.type` for a failure: a textual error code the client library attached, on the error or
 * on any error in its `cause` chain (kafkajs wraps protocol errors in `KafkaJSNumberOfRetriesExceeded`
 * once its retries run out): the Kafka protocol error name (`type` as kafkajs sets it, `apiId` as
 * @platformatic/kafka sets it, e.g. `UNKNOWN_TOPIC_OR_PARTITION`) before the library's own `code`,
 * and the protocol error name all the errors of an aggregate share (@platformatic/kafka's
 * `PLT_KFK_RESPONSE` carries one per failed partition) before the aggregate's code; else the outer
 * error's class name; else `_OTHER`. Works on any thrown value (null prototypes, throwing getters,
 * primitives) and never throws.
 */
export function errorTypeOf(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== null && typeof current === 'object'; depth++) {
    const protocol = protocolErrorName(current) ?? sharedProtocolErrorName(read(current, 'errors'));
    if (protocol !== undefined) return cut(protocol, MAX_ERROR_TYPE_LENGTH);
    const code = read(current, 'code');
    if (typeof code === 'string' && code.length > 0) return cut(code, MAX_ERROR_TYPE_LENGTH);
    current = read(current, 'cause');
  }
  if (error !== null && typeof error === 'object') {
    const name = read(error, 'name');
    if (typeof name === 'string' && name.length > 0 && name !== 'Error')
      return cut(name, MAX_ERROR_TYPE_LENGTH);
    const ctor = read(error, 'constructor');
    const ctorName = typeof ctor === 'function' ? read(ctor, 'name') : undefined;
    if (typeof ctorName === 'string' && ctorName.length > 0 && ctorName !== 'Object') {
      return cut(ctorName, MAX_ERROR_TYPE_LENGTH);
    }
  }
  return ERROR_TYPE_OTHER;
}

/** The Kafka protocol error name an error carries: kafkajs's `type`, @platformatic/kafka's `apiId`. */
function protocolErrorName(error: object): string | undefined {
  const type = read(error, 'type');
  if (typeof type === 'string' && type.length > 0) return type;
  const apiId = read(error, 'apiId');
  return typeof apiId === 'string' && apiId.length > 0 ? apiId : undefined;
}

/** How many errors of an aggregate are looked at for a shared protocol error name. */
const MAX_AGGREGATE_ERRORS = 16;

/** The protocol error name every error of an aggregate's `errors` list carries, if they agree. */
function sharedProtocolErrorName(errors: unknown): string | undefined {
  try {
    if (!Array.isArray(errors) || errors.length === 0 || errors.length > MAX_AGGREGATE_ERRORS)
      return undefined;
    let shared: string | undefined;
    for (let i = 0; i < errors.length; i++) {
      const entry: unknown = errors[i];
      const name = entry !== null && typeof entry === 'object' ? protocolErrorName(entry) : undefined;
      if (name === undefined || (shared !== undefined && name !== shared)) return undefined;
      shared = name;
    }
    return shared;
  } catch {
    return undefined; // a hostile list (a revoked Proxy, a throwing index getter)
  }
}

/**
 * A thrown value's name and message, read safely: an Error's own fields, a string as the message,
 * other primitives through `String`, objects through a string `message` field only (their
 * `toString` is never called). Messages are cut to {@link MAX_ERROR_MESSAGE_LENGTH}. Never throws.
 */
export function describeError(error: unknown): { name: string | undefined; message: string | undefined } {
  if (typeof error === 'string') return { name: undefined, message: cut(error, MAX_ERROR_MESSAGE_LENGTH) };
  if (error === null || error === undefined) return { name: undefined, message: String(error) };
  if (typeof error !== 'object' && typeof error !== 'function') {
    try {
      return { name: undefined, message: cut(String(error), MAX_ERROR_MESSAGE_LENGTH) };
    } catch {
      return { name: undefined, message: undefined };
    }
  }
  const name = read(error, 'name');
  const message = read(error, 'message');
  return {
    name: typeof name === 'string' ? cut(name, MAX_ERROR_TYPE_LENGTH) : undefined,
    message: typeof message === 'string' ? cut(message, MAX_ERROR_MESSAGE_LENGTH) : undefined,
  };
}

/**
 * Classifies a thrown value: the user's classifier (guarded) on top of `fallbackType` (a type the
 * adapter knows, e.g. `nacked`) or {@link errorTypeOf}. Never throws; every recorded value is capped.
 */
export function classifyError(
  error: unknown,
  classifier?: ErrorClassifier,
  fallbackType?: string,
): ResolvedFailure {
  let result: ErrorClassification | undefined;
  if (classifier) {
    try {
      const value = classifier(error);
      if (value !== null && typeof value === 'object') result = value;
    } catch (failure) {
      diag.error('hoptrace: classifyError threw; using the default classification', failure);
    }
  }
  let type: string | undefined;
  let retryable: boolean | undefined;
  let attributes: Attributes | undefined;
  if (result) {
    const t = read(result, 'type');
    if (typeof t === 'string' && t.length > 0) type = cut(t, MAX_ERROR_TYPE_LENGTH);
    const r = read(result, 'retryable');
    if (typeof r === 'boolean') retryable = r;
    attributes = cappedAttributes(read(result, 'attributes'));
  }
  return { type: type ?? fallbackType ?? errorTypeOf(error), retryable, attributes };
}

/**
 * The keys a classification sets through `type` and `retryable`: its `attributes` may not replace
 * them (an `error.type` there would escape the cap and differ from the metric's and the lineage's).
 */
const OWN_KEYS: ReadonlySet<string> = new Set([ATTR_ERROR_TYPE, ATTR_HOPTRACE_ERROR_RETRYABLE]);

function cappedAttributes(source: unknown): Attributes | undefined {
  if (source === null || typeof source !== 'object') return undefined;
  let out: Attributes | undefined;
  let n = 0;
  try {
    for (const key of Object.keys(source)) {
      if (n >= MAX_CLASSIFIER_ATTRIBUTES) break;
      const value = read(source, key);
      const capped = cappedValue(value);
      if (capped === undefined || key.length === 0 || key.length > 128 || OWN_KEYS.has(key)) continue;
      out ??= {};
      out[key] = capped;
      n++;
    }
  } catch {
    // A hostile attributes object: keep what was read.
  }
  return out;
}

function cappedValue(value: unknown): AttributeValue | undefined {
  if (typeof value === 'string') return cut(value, MAX_CLASSIFIER_VALUE_LENGTH);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  return undefined;
}

/**
 * Marks `span` as failed: status ERROR with the error's (capped) message, `error.type`, the
 * classification's retryable flag and attributes, and an exception event. Does not end the span.
 * Works on any thrown value and never throws.
 *
 * @param failure - a classification from {@link classifyError}; default: the plain one.
 */
export function recordFailure(
  span: Span,
  error: unknown,
  failure: ResolvedFailure | string = classifyError(error),
): void {
  try {
    const resolved =
      typeof failure === 'string' ? { type: failure, retryable: undefined, attributes: undefined } : failure;
    failedSpans.set(span, resolved.type);
    const { name, message } = describeError(error);
    span.setAttribute(ATTR_ERROR_TYPE, resolved.type);
    if (resolved.retryable !== undefined)
      span.setAttribute(ATTR_HOPTRACE_ERROR_RETRYABLE, resolved.retryable);
    if (resolved.attributes) span.setAttributes(resolved.attributes);
    span.setStatus(
      message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message },
    );
    // A plain exception object built from what was read safely: the SDK never touches the original.
    const stack = error !== null && typeof error === 'object' ? read(error, 'stack') : undefined;
    const exception: { name: string; message: string; stack?: string } = {
      // An empty name (an anonymous function, `name = ''`) would leave the SDK nothing to record.
      name: name !== undefined && name.length > 0 ? name : resolved.type,
      message: message ?? '',
    };
    if (typeof stack === 'string') exception.stack = cut(stack, MAX_ERROR_STACK_LENGTH);
    span.recordException(exception);
  } catch (failureToRecord) {
    diag.debug('hoptrace: could not record a failure on a span', failureToRecord);
  }
}

/** The `error.type` hoptrace recorded on each failed span it saw (weak: gone with the span). */
const failedSpans = new WeakMap<Span, string>();

/** The `error.type` hoptrace recorded on `span`, if it recorded a failure there. */
export function recordedErrorType(span: Span | undefined): string | undefined {
  return span === undefined ? undefined : failedSpans.get(span);
}
