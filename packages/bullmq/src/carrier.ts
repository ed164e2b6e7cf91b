import {
  extractContextUnchecked,
  injectContextUnchecked,
  type MessageContext,
  readMessageContext,
} from '@hoptrace/core/adapter';
import { type Context, diag, type Link, ROOT_CONTEXT, trace } from '@opentelemetry/api';

/**
 * The part of BullMQ's job options hoptrace reads and writes: BullMQ's own telemetry carrier
 * (BullMQ >= 5.34). `metadata` is a JSON string of a propagation header map (W3C `traceparent`,
 * `tracestate`, `baggage` by default), exactly what `bullmq-otel` writes and reads, so both tools
 * continue each other's traces.
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
 * Metadata longer than this (in UTF-16 code units) is never parsed (a hostile job must not cost a
 * large JSON parse); hoptrace never writes longer metadata.
 */
export const MAX_METADATA_LENGTH = 16_384;

/**
 * Deepest nesting of objects and arrays read in metadata: hoptrace's own carrier nests 3 deep (a
 * flow parent's child list), other tools' maps are flat. Deeper metadata is never parsed, as
 * oversized metadata is not: within 16 KB, a value nested a few thousand levels deep parses, but
 * serializing it again (a relayed job's options, a dead-letter copy) overflows the stack.
 */
export const MAX_METADATA_DEPTH = 16;

/**
 * The carrier key under which a flow's parent node lists its direct children's creation contexts
 * (an array of propagation header maps, written and read through the registered propagator, so B3
 * works as well as W3C), for the parent's processing to link to them. Propagators ignore unknown
 * keys, so BullMQ's own telemetry reads the map as before.
 */
export const CHILDREN_CARRIER_KEY = 'hoptrace-children';

/**
 * The carrier key naming the job a {@link CHILDREN_CARRIER_KEY} list belongs to: `{ prefix, queue, id }`,
 * the flow parent's BullMQ key prefix, queue name and job id (`{ prefix, queue }` for a parent added
 * without a `jobId`, whose id BullMQ picks as it adds it). Metadata is copied verbatim when a job is
 * relayed by anything but hoptrace (a plain `Queue`, `bullmq-otel`'s `addBulk` or flow nodes keep the
 * metadata they are given), and a copy is told from the parent only by this: a job links to the
 * listed children only when it is the job named here (for a parent named without an id, any job of
 * that queue). A marker without `prefix` (written by releases before the prefix was added) names the
 * queue under any prefix.
 */
export const CHILDREN_OF_CARRIER_KEY = 'hoptrace-children-of';

/** At most this many child links per parent job (a bound on span size for very wide flows). */
export const MAX_CHILD_LINKS = 128;

/** True when the options ask BullMQ not to propagate a context (`omitContext`): hoptrace writes none either. */
export function omitsContext(opts: TelemetryCarrierOptions | undefined): boolean {
  const telemetry = opts?.telemetry;
  return !!telemetry && typeof telemetry === 'object' && telemetry.omitContext === true;
}

/**
 * The carrier map a job holds in `opts.telemetry.metadata` (or the compact `tm`), parsed; `undefined`
 * for missing, oversized, malformed or non-object metadata, or metadata nested deeper than
 * {@link MAX_METADATA_DEPTH}. Never throws.
 */
export function parseCarrier(opts: TelemetryCarrierOptions | undefined): Record<string, unknown> | undefined {
  if (!opts || typeof opts !== 'object') return undefined;
  let metadata: unknown;
  try {
    const telemetry = opts.telemetry;
    metadata = telemetry && typeof telemetry === 'object' ? telemetry.metadata : opts.tm;
  } catch {
    return undefined;
  }
  if (
    typeof metadata !== 'string' ||
    metadata.length === 0 ||
    metadata.length > MAX_METADATA_LENGTH ||
    metadata.charCodeAt(0) !== 123 /* { */ ||
    !nestedWithin(metadata, MAX_METADATA_DEPTH)
  ) {
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
 * Whether JSON `text` nests objects and arrays at most `max` deep (brackets inside strings do not
 * count). One pass over the text, which is within {@link MAX_METADATA_LENGTH}; malformed text is left
 * for the parser to refuse.
 */
function nestedWithin(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* backslash */)
        i++; // the escaped character is never a closing quote
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22 /* " */) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return true;
}

/**
 * A shallow copy of `opts` whose `telemetry.metadata` is `carrier` serialized, or `opts` itself
 * when the carrier is empty (no propagator registered) or the options opted out (`omitContext`).
 * Never mutates `opts`.
 */
export function withCarrierMap<O extends object>(opts: O | undefined, carrier: Record<string, unknown>): O {
  const source = opts as (O & TelemetryCarrierOptions) | undefined;
  if (omitsContext(source)) return opts as O;
  let any = false;
  for (const _ in carrier) {
    any = true;
    break;
  }
  if (!any) return (opts ?? {}) as O;
  return withMetadata(opts, JSON.stringify(carrier));
}

/**
 * A shallow copy of `opts` whose `telemetry.metadata` is `metadata` (a serialized carrier, e.g. from
 * {@link contextMetadata}); `opts` itself when `metadata` is `undefined`, the options opted out, or
 * they are not an object.
 */
export function withMetadata<O extends object>(opts: O | undefined, metadata: string | undefined): O {
  const source = opts as (O & TelemetryCarrierOptions) | undefined;
  if (metadata === undefined || omitsContext(source)) return (opts ?? {}) as O;
  // Options that are not an object (a string, a number) are BullMQ's to take or refuse as they are:
  // spread into a copy, a string became options named '0', '1'... that BullMQ 5 stored instead of
  // refusing them.
  if (opts !== undefined && opts !== null && typeof opts !== 'object') return opts;
  const telemetry = { ...source?.telemetry, metadata };
  warnIfReplaced(source);
  return { ...source, telemetry } as O;
}

let replacedReported = false;

/**
 * Reports through `diag` (once per process) metadata of the caller's that is neither a string nor
 * `null`: BullMQ declares `opts.telemetry.metadata` a (JSON) string, so such a value is no carrier,
 * and hoptrace writes the job's context in its place where raw BullMQ would have stored it as given.
 * Never throws.
 */
function warnIfReplaced(source: TelemetryCarrierOptions | undefined): void {
  if (replacedReported) return;
  try {
    const previous: unknown = source?.telemetry?.metadata;
    if (previous === undefined || previous === null || typeof previous === 'string') return;
    replacedReported = true;
    const kind = typeof previous === 'object' ? 'an object' : `a ${typeof previous}`;
    diag.warn(
      `hoptrace: a job's opts.telemetry.metadata was ${kind}, not a string (BullMQ's carrier is a JSON string of propagation headers); hoptrace replaced it with the job's trace context. Later replacements are not reported.`,
    );
  } catch {
    // a getter that throws: nothing to report
  }
}

/**
 * `context` injected through the registered propagator and serialized, once for every job added
 * with it; `undefined` when nothing was injected (no propagator registered).
 */
export function contextMetadata(context: Context): string | undefined {
  const carrier = injectContextUnchecked(context);
  for (const _ in carrier) return JSON.stringify(carrier);
  return undefined;
}

/** {@link withCarrierMap} with `context` injected through the registered propagator. */
export function withCarrier<O extends object>(opts: O | undefined, context: Context): O {
  return withCarrierMap(opts, injectContextUnchecked(context));
}

/**
 * The flow parent a {@link CHILDREN_CARRIER_KEY} list names under {@link CHILDREN_OF_CARRIER_KEY}:
 * the BullMQ key prefix and queue it is added to, and its job id when the caller gave one.
 */
export interface ListingParent {
  /** The key prefix BullMQ adds the parent under (the node's `prefix`, else the flow producer's, else `'bull'`). */
  readonly prefix: string;
  /** The parent's queue name. */
  readonly queue: string;
  /** The parent's job id, when the caller gave one. */
  readonly id?: string | undefined;
}

/**
 * The job a process span is for, as far as it is known, to be compared with a
 * {@link CHILDREN_OF_CARRIER_KEY} marker: `prefix` is the key prefix it was read under (`undefined`
 * when the job does not tell it: the marker's prefix is then not compared).
 */
export interface ProcessedJob {
  /** The job's key prefix, when known. */
  readonly prefix?: string | undefined;
  /** The job's queue name. */
  readonly queue?: string | undefined;
  /** The job's id. */
  readonly id?: string | undefined;
}

/**
 * {@link withCarrier} for a flow parent: its carrier also lists `children` (its direct children's
 * creation contexts, each a propagation header map) under {@link CHILDREN_CARRIER_KEY}, in order,
 * as many as keep the serialized metadata within {@link MAX_METADATA_LENGTH}. Metadata past that
 * length is never read, so listing them all (128 children under a context with some baggage or a
 * peer's long tracestate) lost the parent's own context with them. The list names its `parent` job
 * (key prefix, queue, and id when the caller gave one) under {@link CHILDREN_OF_CARRIER_KEY}, whose
 * length counts toward the limit, so a copy of this metadata on a job of another queue or prefix, or
 * with another id, links to none of the children. When no child fits, neither key is written.
 */
export function withChildCarriers<O extends object>(
  opts: O | undefined,
  context: Context,
  children: readonly Readonly<Record<string, string>>[],
  parent: ListingParent,
): O {
  const carrier: Record<string, unknown> = injectContextUnchecked(context);
  carrier[CHILDREN_OF_CARRIER_KEY] =
    parent.id === undefined
      ? { prefix: parent.prefix, queue: parent.queue }
      : { prefix: parent.prefix, queue: parent.queue, id: parent.id };
  // `,"hoptrace-children":[]` around the entries, each after the first preceded by a comma.
  let length = JSON.stringify(carrier).length + CHILDREN_LIST_OVERHEAD;
  const listed: Readonly<Record<string, string>>[] = [];
  for (const child of children) {
    const added = JSON.stringify(child).length + (listed.length > 0 ? 1 : 0);
    if (length + added > MAX_METADATA_LENGTH) break;
    length += added;
    listed.push(child);
  }
  if (listed.length > 0) carrier[CHILDREN_CARRIER_KEY] = listed;
  // A marker naming nothing listed is of no use, and may alone be past the limit (a long job id).
  else delete carrier[CHILDREN_OF_CARRIER_KEY];
  return withCarrierMap(opts, carrier);
}

const CHILDREN_LIST_OVERHEAD = `,${JSON.stringify(CHILDREN_CARRIER_KEY)}:[]`.length;

/**
 * The creation context a job carries in `opts.telemetry.metadata`, extracted on top of `base`
 * (default `ROOT_CONTEXT`). Missing, malformed or foreign metadata yields `base` (a new trace);
 * another tool's valid map is continued. Never throws.
 */
export function readCarrier(
  opts: TelemetryCarrierOptions | undefined,
  base: Context = ROOT_CONTEXT,
): Context {
  const carrier = parseCarrier(opts);
  return carrier ? extractContextUnchecked(carrier, base) : base;
}

/** The parsed creation context of a carrier map (once). */
export function carrierContext(carrier: Record<string, unknown> | undefined): MessageContext {
  return readMessageContext(carrier);
}

/**
 * Links to the children listed under {@link CHILDREN_CARRIER_KEY}, each read by the registered
 * propagator, when the `job` processed is the flow parent the list names under
 * {@link CHILDREN_OF_CARRIER_KEY}; none for any other job carrying the same metadata. Only the
 * first {@link MAX_CHILD_LINKS} entries are read (hoptrace lists no more): a job listing thousands
 * of entries that carry no context costs no more than one it wrote.
 */
export function childLinks(
  carrier: Record<string, unknown> | undefined,
  job: ProcessedJob,
): Link[] | undefined {
  const children = carrier?.[CHILDREN_CARRIER_KEY];
  if (!Array.isArray(children) || children.length === 0 || !namesJob(carrier, job)) return undefined;
  const links: Link[] = [];
  const read = Math.min(children.length, MAX_CHILD_LINKS);
  for (let i = 0; i < read; i++) {
    const child: unknown = children[i];
    if (child === null || typeof child !== 'object' || Array.isArray(child)) continue;
    const spanContext = trace.getSpanContext(
      extractContextUnchecked(child as Record<string, unknown>, ROOT_CONTEXT),
    );
    if (spanContext && trace.isSpanContextValid(spanContext)) links.push({ context: spanContext });
  }
  return links.length > 0 ? links : undefined;
}

/**
 * Whether the carrier's {@link CHILDREN_OF_CARRIER_KEY} names `job`: its queue; its id unless the
 * marker names none (a parent added without a `jobId`); and its key prefix unless the marker names
 * none (written before markers named one) or the job's prefix is unknown.
 */
function namesJob(carrier: Record<string, unknown> | undefined, job: ProcessedJob): boolean {
  const { queue, id, prefix } = job;
  if (queue === undefined || id === undefined) return false;
  const owner = carrier?.[CHILDREN_OF_CARRIER_KEY];
  if (owner === null || typeof owner !== 'object') return false;
  const named = owner as { prefix?: unknown; queue?: unknown; id?: unknown };
  if (named.queue !== queue) return false;
  if (Object.hasOwn(named, 'id') && named.id !== id) return false;
  return prefix === undefined || !Object.hasOwn(named, 'prefix') || named.prefix === prefix;
}
