// A tiny OTLP/HTTP receiver for tests: accepts POST /v1/traces in the JSON encoding (what
// @opentelemetry/exporter-trace-otlp-http sends) and keeps the decoded spans in memory.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';

/** An attribute value as decoded from OTLP JSON's `AnyValue`. */
export type DecodedAttributeValue =
  | string
  | number
  | boolean
  | null
  | readonly DecodedAttributeValue[]
  | { readonly [key: string]: DecodedAttributeValue };

/** One span as the receiver decoded it. Ids are lowercase hex. */
export interface DecodedSpan {
  /** 32 hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  /** 16 hex digits, or undefined for a root span. */
  readonly parentSpanId: string | undefined;
  readonly name: string;
  /** The API's span kind (OTLP's kind minus one; OTLP's UNSPECIFIED reads as INTERNAL). */
  readonly kind: SpanKind;
  /** Attributes as a plain object (`intValue` sent as a string is turned into a number). */
  readonly attributes: Readonly<Record<string, DecodedAttributeValue>>;
  readonly status: { readonly code: SpanStatusCode; readonly message?: string };
  /** The `service.name` of the span's resource, if it has one. */
  readonly serviceName: string | undefined;
  /** The instrumentation scope's name. */
  readonly scopeName: string | undefined;
  /** Start and end in nanoseconds since the epoch, as decimal strings (as OTLP JSON sends them). */
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  /** The span's links, ids in hex. */
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
}

/** One HTTP request the receiver answered (also the rejected ones). */
export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  /** The `content-type` header as sent, e.g. `application/json`. */
  readonly contentType: string | undefined;
  /** The `content-encoding` header as sent, e.g. `gzip`. */
  readonly contentEncoding: string | undefined;
  /** The HTTP status the receiver answered with. */
  readonly status: number;
}

/** What {@link startOtlpReceiver} hands back. */
export interface OtlpReceiver {
  /** The base URL, e.g. `http://127.0.0.1:43117` (the traces path is `/v1/traces`). */
  readonly url: string;
  /** Every span decoded so far, in arrival order. */
  spans(): DecodedSpan[];
  /** Every request received so far, in arrival order. */
  requests(): ReceivedRequest[];
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

type Json = unknown;

function isRecord(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arrayOf(value: Json): Json[] {
  return Array.isArray(value) ? value : [];
}

function stringOf(value: Json): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * An OTLP id as lowercase hex. The OTLP/JSON spec (and this exporter) send hex; protobuf-JSON mappers
 * send standard padded base64, which is accepted too when it is exactly the encoding of `bytes` bytes
 * (Node's base64 decoder skips stray characters, so a truncated hex id would otherwise decode to a
 * wrong id of the right length).
 */
function idOf(value: Json, bytes: number): string | undefined {
  const text = stringOf(value);
  if (text === undefined || text === '') return undefined;
  if (text.length === bytes * 2 && /^[0-9a-f]+$/i.test(text)) return text.toLowerCase();
  const decoded = Buffer.from(text, 'base64');
  return decoded.length === bytes && decoded.toString('base64') === text
    ? decoded.toString('hex')
    : undefined;
}

function anyValueOf(value: Json): DecodedAttributeValue {
  if (!isRecord(value)) return null;
  if (typeof value.stringValue === 'string') return value.stringValue;
  if (typeof value.boolValue === 'boolean') return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (typeof value.bytesValue === 'string') return value.bytesValue;
  if (isRecord(value.arrayValue)) return arrayOf(value.arrayValue.values).map(anyValueOf);
  if (isRecord(value.kvlistValue)) return attributesOf(value.kvlistValue.values);
  return null;
}

function attributesOf(keyValues: Json): Record<string, DecodedAttributeValue> {
  const out: Record<string, DecodedAttributeValue> = {};
  for (const kv of arrayOf(keyValues)) {
    if (isRecord(kv) && typeof kv.key === 'string') out[kv.key] = anyValueOf(kv.value);
  }
  return out;
}

function kindOf(otlpKind: Json): SpanKind {
  const n = typeof otlpKind === 'number' ? otlpKind : 0;
  return n >= 1 && n <= 5 ? ((n - 1) as SpanKind) : SpanKind.INTERNAL;
}

function statusOf(status: Json): DecodedSpan['status'] {
  if (!isRecord(status)) return { code: SpanStatusCode.UNSET };
  const code =
    status.code === SpanStatusCode.OK || status.code === SpanStatusCode.ERROR
      ? status.code
      : SpanStatusCode.UNSET;
  const message = stringOf(status.message);
  return message ? { code, message } : { code };
}

/**
 * Decodes an OTLP/JSON `ExportTraceServiceRequest` (resourceSpans → scopeSpans → spans). Spans
 * without a valid trace or span id are skipped; nothing here throws on odd input.
 */
export function decodeOtlpJsonTraces(body: Json): DecodedSpan[] {
  const out: DecodedSpan[] = [];
  if (!isRecord(body)) return out;
  for (const resourceSpans of arrayOf(body.resourceSpans)) {
    if (!isRecord(resourceSpans)) continue;
    const resource = isRecord(resourceSpans.resource) ? attributesOf(resourceSpans.resource.attributes) : {};
    const serviceName = typeof resource['service.name'] === 'string' ? resource['service.name'] : undefined;
    for (const scopeSpans of arrayOf(resourceSpans.scopeSpans)) {
      if (!isRecord(scopeSpans)) continue;
      const scopeName = isRecord(scopeSpans.scope) ? stringOf(scopeSpans.scope.name) : undefined;
      for (const span of arrayOf(scopeSpans.spans)) {
        if (!isRecord(span)) continue;
        const traceId = idOf(span.traceId, 16);
        const spanId = idOf(span.spanId, 8);
        if (traceId === undefined || spanId === undefined) continue;
        out.push({
          traceId,
          spanId,
          parentSpanId: idOf(span.parentSpanId, 8),
          name: stringOf(span.name) ?? '',
          kind: kindOf(span.kind),
          attributes: attributesOf(span.attributes),
          status: statusOf(span.status),
          serviceName,
          scopeName,
          startTimeUnixNano: String(span.startTimeUnixNano ?? ''),
          endTimeUnixNano: String(span.endTimeUnixNano ?? ''),
          links: arrayOf(span.links).flatMap((link) => {
            if (!isRecord(link)) return [];
            const linkTrace = idOf(link.traceId, 16);
            const linkSpan = idOf(link.spanId, 8);
            return linkTrace && linkSpan ? [{ traceId: linkTrace, spanId: linkSpan }] : [];
          }),
        });
      }
    }
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

/**
 * Starts an OTLP/HTTP receiver on 127.0.0.1 (a free port) for tests. `POST /v1/traces` with a JSON
 * body is decoded and answered `200 {}`; protobuf bodies are answered 415 (this receiver only speaks
 * JSON), malformed JSON or a body that does not gunzip 400, other paths 404. Every request is recorded
 * with its content type.
 *
 * @returns the base URL, the decoded spans, the requests seen, and `close`.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const decoded: DecodedSpan[] = [];
  const seen: ReceivedRequest[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const contentType = req.headers['content-type'];
    const contentEncoding = req.headers['content-encoding'];
    const answer = (status: number, body: string): void => {
      seen.push({ method: req.method ?? '', path, contentType, contentEncoding, status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    };
    if (req.method !== 'POST' || path !== '/v1/traces') return answer(404, '{"error":"not found"}');
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      return answer(400, '{"error":"unreadable body (bad gzip?)"}');
    }
    if (!contentType?.startsWith('application/json')) {
      return answer(415, '{"error":"this test receiver only accepts application/json"}');
    }
    let parsed: Json;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return answer(400, '{"error":"malformed JSON"}');
    }
    decoded.push(...decodeOtlpJsonTraces(parsed));
    answer(200, '{}');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...decoded],
    requests: () => [...seen],
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
