import { extractContext, injectContext } from '@hoptrace/core';
import { type Context, isSpanContextValid, type Link, ROOT_CONTEXT, TraceFlags } from '@opentelemetry/api';

/**
 * The part of BullMQ's job options hoptrace reads and writes: BullMQ's own telemetry carrier
 * (BullMQ >= 5.34). `metadata` is a JSON string of a W3C header map (`traceparent`, `tracestate`,
 * `baggage`), exactly what `bullmq-otel` writes and reads, so both tools continue each other's
 * traces.
 */
export interface TelemetryCarrierOptions {
  telemetry?: { metadata?: string | undefined; omitContext?: boolean | undefined } | undefined;
  /**
   * The same metadata in BullMQ's compact encoding: BullMQ 5.x hands a sandboxed processor the job's
   * options as stored (`tm` for `telemetry.metadata`); 6.x decodes them first.
   */
  tm?: unknown;
}

/**
 * True when the options already carry a context (the user's or another tool's) or ask BullMQ not to
 * propagate one (`omitContext`): hoptrace then writes nothing.
 */
export function ownsNoCarrier(opts: TelemetryCarrierOptions | undefined): boolean {
  const telemetry = opts?.telemetry;
  if (!telemetry || typeof telemetry !== 'object') return false;
  return (
    telemetry.omitContext === true || (typeof telemetry.metadata === 'string' && telemetry.metadata !== '')
  );
}

/**
 * A shallow copy of `opts` with `context` serialized into `telemetry.metadata`, or `opts` itself when
 * it already carries a context or opted out ({@link ownsNoCarrier}). Never mutates `opts`.
 */
export function withCarrier<O extends object>(
  opts: O | undefined,
  context: Context,
  extra?: Readonly<Record<string, string>>,
): O {
  const source = opts as (O & TelemetryCarrierOptions) | undefined;
  if (ownsNoCarrier(source)) return opts as O;
  const headers = injectContext(context);
  // An empty map means no propagator is registered: leave the options as they were.
  let any = false;
  for (const _ in headers) {
    any = true;
    break;
  }
  if (!any) return (opts ?? {}) as O;
  if (extra) Object.assign(headers, extra);
  const telemetry = { ...source?.telemetry, metadata: JSON.stringify(headers) };
  return { ...source, telemetry } as O;
}

/**
 * The carrier map a job holds in `opts.telemetry.metadata` (or the compact `tm`), parsed; `undefined`
 * for missing, malformed or non-object metadata. Never throws.
 */
export function parseCarrier(opts: TelemetryCarrierOptions | undefined): Record<string, unknown> | undefined {
  if (!opts || typeof opts !== 'object') return undefined;
  const telemetry = opts.telemetry;
  const metadata = telemetry && typeof telemetry === 'object' ? telemetry.metadata : opts.tm;
  if (typeof metadata !== 'string' || metadata.length === 0 || metadata.charCodeAt(0) !== 123 /* { */) {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  return parsed as Record<string, unknown>;
}

/**
 * The creation context a job carries in `opts.telemetry.metadata`, extracted on top of `base`
 * (default `ROOT_CONTEXT`). Missing, malformed or foreign metadata yields `base` (a new trace);
 * another tool's valid W3C map is continued. Never throws.
 */
export function readCarrier(
  opts: TelemetryCarrierOptions | undefined,
  base: Context = ROOT_CONTEXT,
): Context {
  const carrier = parseCarrier(opts);
  return carrier ? extractContext(carrier, base) : base;
}

/**
 * The carrier key under which a flow's parent node lists its children's creation contexts
 * (space-separated W3C traceparents), so the parent's processing can link to them. Propagators
 * ignore unknown keys, so BullMQ's own telemetry reads the map as before.
 */
export const CHILDREN_CARRIER_KEY = 'hoptrace-children';

/** At most this many child links per parent job (a bound on span size for very wide flows). */
export const MAX_CHILD_LINKS = 128;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Links to the children listed under {@link CHILDREN_CARRIER_KEY}; invalid entries are skipped. */
export function childLinks(carrier: Record<string, unknown> | undefined): Link[] | undefined {
  const raw = carrier?.[CHILDREN_CARRIER_KEY];
  if (typeof raw !== 'string' || raw.length === 0) return undefined;
  const links: Link[] = [];
  for (const part of raw.split(' ')) {
    const m = TRACEPARENT.exec(part);
    if (!m) continue;
    const spanContext = {
      traceId: m[1] as string,
      spanId: m[2] as string,
      traceFlags: Number.parseInt(m[3] as string, 16) & TraceFlags.SAMPLED,
      isRemote: true,
    };
    if (isSpanContextValid(spanContext)) links.push({ context: spanContext });
    if (links.length >= MAX_CHILD_LINKS) break;
  }
  return links.length > 0 ? links : undefined;
}
