import {
  type Attributes,
  type Context,
  context as contextApi,
  createContextKey,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  trace,
} from '@opentelemetry/api';
import { capValue } from './attributes.ts';
import { type HeaderCarrier, type HeaderMap, isHeaderMap, limitedText, mapHeaderView } from './carrier.ts';
import { classifyError, describeError, type ErrorClassifier } from './errors.ts';
import {
  ATTR_HOPTRACE_FAILURE_ATTEMPTS,
  ATTR_HOPTRACE_FAILURE_DESTINATION,
  ATTR_HOPTRACE_FAILURE_ERROR_TYPE,
  ATTR_HOPTRACE_FAILURE_OFFSET,
  ATTR_HOPTRACE_FAILURE_PARTITION,
  ATTR_HOPTRACE_FAILURE_RETRYABLE,
  FAILURE_HEADERS,
  HEADER_FAILED_CONTEXT_PREFIX,
} from './names.ts';
import { assertKnownOptions, type OptionKeys } from './option-keys.ts';
import { extractContextUnchecked, injectContextUnchecked } from './propagation.ts';
import { assertContext } from './validate.ts';

/** Lineage header values longer than this are ignored (refused before decoding). */
const MAX_LINEAGE_VALUE = 4096;

/** Error messages carried in lineage headers are cut to this many characters. */
export const MAX_LINEAGE_MESSAGE_LENGTH = 256;

/** What a dead-letter or retry copy of a failed message says about the failure (all optional). */
export interface FailureLineage {
  /** The destination the failed message was consumed from. */
  readonly destination?: string | undefined;
  /** Kafka: its partition. */
  readonly partition?: number | undefined;
  /** Kafka: its offset (decimal string). */
  readonly offset?: string | undefined;
  /** The failure's `error.type`. */
  readonly errorType?: string | undefined;
  /** The failure's message (capped). */
  readonly errorMessage?: string | undefined;
  /** Whether the failure was classified retryable. */
  readonly retryable?: boolean | undefined;
  /** Attempts made before the copy was sent. */
  readonly attempts?: number | undefined;
  /** The failed attempt's span context, when it travelled. */
  readonly failed?: SpanContext | undefined;
}

/** What {@link failureHeaders} needs to describe one failure. */
export interface FailureInput {
  /** Whatever was thrown (classified with `classifyError`, never rethrown or mutated). */
  error: unknown;
  /** The destination the failed message was consumed from (topic, queue). */
  destination: string;
  /** Kafka partition of the failed message. */
  partition?: number | undefined;
  /** Kafka offset of the failed message. */
  offset?: string | number | undefined;
  /** Attempts made so far. */
  attempts?: number | undefined;
  /** The same classifier the wrapper uses, so the header and the span agree. */
  classifyError?: ErrorClassifier | undefined;
  /** The failed attempt's context. Default: the active one (call it inside the failing handler). */
  context?: Context | undefined;
}

/** The field names {@link failureHeaders} takes in its input (others throw). */
const FAILURE_INPUT_KEYS = {
  error: true,
  destination: true,
  partition: true,
  offset: true,
  attempts: true,
  classifyError: true,
  context: true,
} as const satisfies OptionKeys<FailureInput>;

/**
 * The plain-string lineage headers of a dead-letter or retry copy of a failed message (see
 * `FAILURE_HEADERS`): destination, partition, offset, error type, a capped error message, retryable,
 * attempts, and the failed attempt's trace context under `hoptrace-failed-<field>` through the
 * registered propagator. A new object; a field of the wrong type is left out, and only the calling
 * code's own mistakes throw (a TypeError saying so): an `input` that is not an object, a field it
 * does not take (naming the one it most likely misspells, ``Unknown option `atempts` for
 * failureHeaders (did you mean `attempts`?)``; one set to `undefined` is let through), or an
 * `input.context` that is neither `undefined` (the active context) nor an OpenTelemetry Context.
 */
export function failureHeaders(input: FailureInput): Record<string, string> {
  if (input === null || typeof input !== 'object') {
    throw new TypeError(`Expected \`input\` to be an object with the failure, got ${String(input)}`);
  }
  assertKnownOptions('failureHeaders', input, FAILURE_INPUT_KEYS);
  const context = input.context === undefined ? contextApi.active() : input.context;
  assertContext('failureHeaders', context, 'input.context');
  const failure = classifyError(input.error, input.classifyError);
  const out: Record<string, string> = {};
  if (typeof input.destination === 'string') out[FAILURE_HEADERS.destination] = capValue(input.destination);
  out[FAILURE_HEADERS.errorType] = failure.type;
  const { message } = describeError(input.error);
  if (message !== undefined && message !== '')
    out[FAILURE_HEADERS.errorMessage] = capValue(message, MAX_LINEAGE_MESSAGE_LENGTH);
  if (failure.retryable !== undefined) out[FAILURE_HEADERS.retryable] = String(failure.retryable);
  if (typeof input.partition === 'number' && Number.isInteger(input.partition)) {
    out[FAILURE_HEADERS.partition] = String(input.partition);
  }
  const offset = input.offset as unknown;
  if (
    (typeof offset === 'string' || typeof offset === 'number' || typeof offset === 'bigint') &&
    /^\d{1,20}$/.test(String(offset))
  )
    out[FAILURE_HEADERS.offset] = String(offset);
  if (typeof input.attempts === 'number' && Number.isSafeInteger(input.attempts) && input.attempts >= 0) {
    out[FAILURE_HEADERS.attempts] = String(input.attempts);
  }
  // The trace fields only: business context already travels in the message's own baggage. Injected
  // without the baggage, as a propagator may write it under any names (`uberctx-<key>`,
  // `ot-baggage-<key>`: one header per entry, which `fields()` does not list).
  const failed = injectContextUnchecked(propagation.deleteBaggage(context));
  for (const field in failed) out[HEADER_FAILED_CONTEXT_PREFIX + field] = failed[field] as string;
  return out;
}

function text(headers: Readonly<Record<string, unknown>>, name: string, max = 256): string | undefined {
  let t: string | undefined;
  try {
    const value: unknown = headers[name];
    if (value === undefined || value === null) return undefined;
    // Refused by its size before it is decoded: a hostile 1 MB value costs nothing. Bytes are UTF-8
    // text (failureHeaders writes strings, which Kafka clients and byte-array AMQP headers encode so).
    t = limitedText(value, MAX_LINEAGE_VALUE);
  } catch {
    return undefined; // a throwing getter, or a hostile Proxy value
  }
  return t === undefined || t.length === 0 ? undefined : capValue(t, max);
}

function integer(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/** A decimal offset, as `failureHeaders` writes it; anything else (a raw producer's `{"a":1}`) is left out. */
function offset(value: string | undefined): string | undefined {
  return value !== undefined && /^\d{1,20}$/.test(value) ? value : undefined;
}

/**
 * Reads lineage headers from a received message: `undefined` unless it carries
 * `hoptrace-error-type` (so ordinary messages cost one property read). Values are capped, invalid
 * ones skipped; the failed context is parsed by the registered propagator. Never throws.
 *
 * @param headers - the message headers: an object, or a `Map` as @platformatic/kafka hands them out
 * (string or Buffer keys; see {@link HeaderMap}); `undefined` and `null` are fine.
 */
export function readFailureLineage(headers: HeaderCarrier | HeaderMap): FailureLineage | undefined {
  if (!headers) return undefined;
  if (isHeaderMap(headers)) return readFailureLineage(mapHeaderView(headers));
  const errorType = text(headers, FAILURE_HEADERS.errorType, 128);
  if (errorType === undefined) return undefined;
  const retryable = text(headers, FAILURE_HEADERS.retryable);
  let failed: SpanContext | undefined;
  try {
    // No prototype: a `hoptrace-failed-__proto__` header (an AMQP table) is then one more field, not
    // the prototype the propagator's reads of `traceparent` and the rest fall through to.
    const carrier: Record<string, unknown> = Object.create(null);
    let any = false;
    for (const key of Object.keys(headers)) {
      if (key.startsWith(HEADER_FAILED_CONTEXT_PREFIX)) {
        carrier[key.slice(HEADER_FAILED_CONTEXT_PREFIX.length)] = headers[key];
        any = true;
      }
    }
    if (any) {
      const spanContext = trace.getSpanContext(extractContextUnchecked(carrier, ROOT_CONTEXT));
      if (spanContext && trace.isSpanContextValid(spanContext)) failed = spanContext;
    }
  } catch {
    failed = undefined;
  }
  return {
    destination: text(headers, FAILURE_HEADERS.destination),
    partition: integer(text(headers, FAILURE_HEADERS.partition)),
    offset: offset(text(headers, FAILURE_HEADERS.offset, 20)),
    errorType,
    errorMessage: text(headers, FAILURE_HEADERS.errorMessage, MAX_LINEAGE_MESSAGE_LENGTH),
    retryable: retryable === 'true' ? true : retryable === 'false' ? false : undefined,
    attempts: integer(text(headers, FAILURE_HEADERS.attempts)),
    failed,
  };
}

/** Span attributes naming a failure lineage (`hoptrace.failure.*`). */
export function lineageAttributes(lineage: FailureLineage): Attributes {
  const out: Attributes = {};
  if (lineage.destination !== undefined) out[ATTR_HOPTRACE_FAILURE_DESTINATION] = lineage.destination;
  if (lineage.errorType !== undefined) out[ATTR_HOPTRACE_FAILURE_ERROR_TYPE] = lineage.errorType;
  if (lineage.retryable !== undefined) out[ATTR_HOPTRACE_FAILURE_RETRYABLE] = lineage.retryable;
  if (lineage.attempts !== undefined) out[ATTR_HOPTRACE_FAILURE_ATTEMPTS] = lineage.attempts;
  if (lineage.partition !== undefined) out[ATTR_HOPTRACE_FAILURE_PARTITION] = String(lineage.partition);
  if (lineage.offset !== undefined) out[ATTR_HOPTRACE_FAILURE_OFFSET] = lineage.offset;
  return out;
}

/** The link from a dead-letter or retry copy's span to the failed attempt, with the lineage attributes. */
export function lineageLinks(lineage: FailureLineage | undefined): Link[] | undefined {
  if (!lineage?.failed) return undefined;
  return [{ context: lineage.failed, attributes: lineageAttributes(lineage) }];
}

const LINEAGE_KEY = createContextKey('hoptrace.failure-lineage');

/** `context` carrying `lineage`, so log fields can name the original failure. */
export function withFailureLineage(context: Context, lineage: FailureLineage | undefined): Context {
  return lineage ? context.setValue(LINEAGE_KEY, lineage) : context;
}

/**
 * The lineage of the message being handled in `context`, if it is a dead-letter or retry copy.
 *
 * @param context - an OpenTelemetry `Context`; `undefined` (or no argument) is the active one.
 * @throws TypeError for anything else (`null`, a plain object, a Span), naming `failureLineageOf`
 * and what it got.
 */
export function failureLineageOf(context: Context = contextApi.active()): FailureLineage | undefined {
  assertContext('failureLineageOf', context);
  return lineageOf(context);
}

/** {@link failureLineageOf} of a context known to be one. */
export function lineageOf(context: Context): FailureLineage | undefined {
  return context.getValue(LINEAGE_KEY) as FailureLineage | undefined;
}
