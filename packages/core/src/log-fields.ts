import {
  type Context,
  context as contextApi,
  isSpanContextValid,
  propagation,
  type SpanContext,
  trace,
} from '@opentelemetry/api';
import type { BaggageAllowList } from './baggage.ts';
import { compileBaggageAllowList } from './baggage.ts';
import { recordedErrorType } from './errors.ts';
import { lineageOf } from './lineage.ts';
import { assertKnownOptions, type OptionKeys } from './option-keys.ts';
import { assertContext, assertOptionalBoolean, assertOptionsObject } from './validate.ts';

/**
 * Trace correlation fields for a log record, named as the OpenTelemetry log data model names them,
 * plus what {@link createLogFields} adds: allow-listed baggage entries and the `error.type`.
 */
export interface LogFields {
  trace_id?: string;
  span_id?: string;
  /** Two lowercase hex digits, e.g. `01` when sampled. */
  trace_flags?: string;
  /** The failure's code: of the active span once hoptrace recorded its failure, or of the original failure a dead-letter or retry copy names. */
  'error.type'?: string;
  /** Allow-listed baggage entries, under their key (or the name the allow-list maps them to). */
  [baggageKey: string]: string | undefined;
}

const FLAGS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * The ids of the span in `context` (default: the active one), for log lines: `{ trace_id, span_id,
 * trace_flags }`, or an empty object when there is no valid span. Call it from pino's `mixin`
 * (`mixin: () => logFields()`: pino passes the mixin its merge object, not a context) or in a winston
 * format (see the README). For business codes and error codes too, see {@link createLogFields}, whose
 * function can be the `mixin` itself.
 *
 * @param context - an OpenTelemetry `Context`; `undefined` (or no argument) is the active one.
 * @throws TypeError for anything else (`null`, a plain object, a Span, a string), naming `logFields`
 * and what it got: a mistake in the calling code, said on the first log line.
 */
export function logFields(context: Context = contextApi.active()): LogFields {
  assertContext('logFields', context);
  return spanFields(context);
}

/**
 * {@link logFields} of a context known to be one. A span another tool put in the context whose
 * `spanContext()` throws gives no fields: a log line is never broken by it.
 */
function spanFields(context: Context): LogFields {
  let spanContext: SpanContext | undefined;
  try {
    spanContext = trace.getSpanContext(context);
  } catch {
    return {};
  }
  if (!spanContext || !isSpanContextValid(spanContext)) return {};
  return {
    trace_id: spanContext.traceId,
    span_id: spanContext.spanId,
    trace_flags: FLAGS[spanContext.traceFlags & 0xff] as string,
  };
}

/** The fields a line gets from hoptrace itself: baggage (other services' data) may not replace them. */
const OWN_FIELDS = ['trace_id', 'span_id', 'trace_flags', 'error.type'] as const;

/** Options of {@link createLogFields}. */
export interface LogFieldsOptions {
  /**
   * Baggage keys to add to every line (business codes such as a tenant), as a list or a map from
   * baggage key to field name: the same allow-list shape as the wrappers' `baggageAttributes`.
   * Values over 256 characters are left out. Field names `trace_id`, `span_id`, `trace_flags` and
   * `error.type` are refused (a TypeError): baggage from another service would replace them. Default: none.
   * @example { baggage: ['tenant.id'] }
   */
  baggage?: BaggageAllowList | undefined;
  /**
   * Add `error.type`: the code hoptrace recorded on the active span once it failed, or the original
   * failure's code while handling a dead-letter or retry copy. Default `true`.
   * @example { errorType: false }
   */
  errorType?: boolean | undefined;
}

/** The option names {@link createLogFields} takes (others throw). */
export const LOG_FIELDS_OPTION_KEYS = {
  baggage: true,
  errorType: true,
} as const satisfies OptionKeys<LogFieldsOptions>;

/**
 * Compiles log-field options once (the allow-list is validated here) into a function that reads the
 * active context per call: trace id, span id and flags, allow-listed baggage and the error code,
 * so one log line carries trace id + error code + business code together. It ignores its arguments
 * (whatever they are: it never throws on them), so it can be pino's `mixin` as it is (pino passes its
 * merge object, level and logger). For another context than the active one, run it inside
 * `context.with(other, fields)`.
 *
 * @example pino({ mixin: createLogFields({ baggage: ['tenant.id'] }) })
 * @throws TypeError for options that are not an object, an option it does not take (naming the one
 * it most likely misspells, ``Unknown option `errortype` for createLogFields (did you mean
 * `errorType`?)``; one set to `undefined` is let through), a non-boolean `errorType`, or an invalid
 * allow-list (one naming a field of its own, such as `trace_id`, too).
 */
export function createLogFields(options: LogFieldsOptions = {}): () => LogFields {
  assertOptionsObject('options', options);
  assertKnownOptions('createLogFields', options, LOG_FIELDS_OPTION_KEYS);
  assertOptionalBoolean('errorType', options.errorType);
  const baggage = compileBaggageAllowList(options.baggage, undefined, 'baggage', OWN_FIELDS);
  const withErrorType = options.errorType !== false;
  return () => {
    const context = contextApi.active();
    const fields = spanFields(context);
    if (baggage && propagation.getBaggage(context)) {
      const entries = baggage(context);
      if (entries) for (const key in entries) fields[key] = String(entries[key]);
    }
    if (withErrorType) {
      const type = recordedErrorType(trace.getSpan(context)) ?? lineageOf(context)?.errorType;
      if (type !== undefined) fields['error.type'] = type;
    }
    return fields;
  };
}
