import { gzipSync } from 'node:zlib';
import { parentSpanId } from '@hoptrace/test-kit';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDemoTracing, type DemoTracing, otlpTracesEndpointFromEnv } from '../../src/demo/exporters.ts';
import {
  type DecodedSpan,
  decodeOtlpJsonTraces,
  type OtlpReceiver,
  startOtlpReceiver,
} from '../../src/demo/otlp-receiver.ts';

// The demo's OTLP/HTTP path without brokers: endpoint resolution, the real exporter sending to the
// test receiver, and the receiver's decoder.

const SERVICE = 'otlp-export-test';
const SCOPE = 'otlp-export-test-scope';
const FOREIGN = { traceId: 'f'.repeat(32), spanId: 'e'.repeat(16) };

// Every OTEL_* variable is cleared for each test (a sampler or compression set by the caller's shell
// would change what is sent) and restored afterwards.
let savedEnv: Record<string, string | undefined>;
let receiver: OtlpReceiver | undefined;
let tracing: DemoTracing | undefined;

beforeEach(() => {
  savedEnv = {};
  for (const key of Object.keys(process.env).filter((k) => k.startsWith('OTEL_'))) {
    savedEnv[key] = process.env[key];
    delete process.env[key];
  }
});
afterEach(async () => {
  await tracing?.shutdown().catch(() => undefined); // a failed test may have left it rejected
  tracing = undefined;
  await receiver?.close();
  receiver = undefined;
  for (const key of Object.keys(process.env).filter((k) => k.startsWith('OTEL_'))) delete process.env[key];
  Object.assign(process.env, savedEnv);
  vi.restoreAllMocks();
});

/** The fields the receiver decodes, taken from an SDK span. */
function asDecoded(span: ReadableSpan, serviceName: string) {
  return {
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: parentSpanId(span),
    name: span.name,
    kind: span.kind,
    attributes: span.attributes,
    status: span.status,
    serviceName,
    scopeName: span.instrumentationScope.name,
    startTimeUnixNano: String(BigInt(span.startTime[0]) * 1_000_000_000n + BigInt(span.startTime[1])),
    endTimeUnixNano: String(BigInt(span.endTime[0]) * 1_000_000_000n + BigInt(span.endTime[1])),
    links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
  };
}

const bySpanId = <T extends { spanId: string }>(spans: readonly T[]): T[] =>
  [...spans].sort((a, b) => a.spanId.localeCompare(b.spanId));

/** Ends one span so there is something to export. */
function oneSpan(): void {
  trace.getTracer(SCOPE).startSpan('lonely').end();
}

describe('otlpTracesEndpointFromEnv', () => {
  it('prefers OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as given (no /v1/traces appended)', () => {
    expect(
      otlpTracesEndpointFromEnv({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces.example:4318/custom/path',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base.example:4318',
      }),
    ).toBe('http://traces.example:4318/custom/path');
    // Normalised like the exporter does (a root path gets its slash), never suffixed.
    expect(
      otlpTracesEndpointFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces.example:4318' }),
    ).toBe('http://traces.example:4318/');
  });

  it.each([
    ['http://collector:4318', 'http://collector:4318/v1/traces'],
    ['http://collector:4318/', 'http://collector:4318/v1/traces'],
    ['http://collector:4318/otlp', 'http://collector:4318/otlp/v1/traces'],
    ['http://collector:4318/otlp/', 'http://collector:4318/otlp/v1/traces'],
    ['  https://collector:4318  ', 'https://collector:4318/v1/traces'],
  ])('appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT=%j', (base, expected) => {
    expect(otlpTracesEndpointFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: base })).toBe(expected);
  });

  it('falls back to the base variable when the traces variable is blank or not a URL', () => {
    const base = 'http://base.example:4318';
    for (const traces of ['', '   ', 'not a url', '//no-scheme']) {
      expect(
        otlpTracesEndpointFromEnv({
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: traces,
          OTEL_EXPORTER_OTLP_ENDPOINT: base,
        }),
        JSON.stringify(traces),
      ).toBe(`${base}/v1/traces`);
    }
  });

  it.each([
    [{}],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '' }],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: ' \t ' }],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }],
  ])('is undefined for %j', (env) => {
    expect(otlpTracesEndpointFromEnv(env)).toBeUndefined();
  });

  it('reads process.env by default', () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://from-process-env:4318';
    expect(otlpTracesEndpointFromEnv()).toBe('http://from-process-env:4318/v1/traces');
  });
});

describe('createDemoTracing with OTLP export', () => {
  it('sends every span to the collector, decoded with the same ids, parents, kinds, attributes, status and links', async () => {
    receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    tracing = createDemoTracing({ serviceName: SERVICE });
    expect(tracing.otlpEndpoint).toBe(`${receiver.url}/v1/traces`);

    // A SERVER root, a PRODUCER child and a CONSUMER grandchild linked to the producer and to a
    // span of another trace; parents come from the active context (the registered context manager).
    const tracer = trace.getTracer(SCOPE);
    await tracer.startActiveSpan('POST /orders', { kind: SpanKind.SERVER, root: true }, async (root) => {
      await new Promise((r) => setTimeout(r, 5)); // the context survives an await
      const producer = tracer.startSpan('send orders', {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system.name': 'kafka',
          'kafka.offset': 42,
          'test.ratio': 0.25,
          'test.flag': true,
          'test.tags': ['a', 'b'],
          'test.counts': [1, 2, 3],
        },
      });
      const consumer = tracer.startSpan(
        'process orders',
        {
          kind: SpanKind.CONSUMER,
          links: [{ context: producer.spanContext() }, { context: { ...FOREIGN, traceFlags: 1 } }],
        },
        trace.setSpan(context.active(), producer),
      );
      producer.end();
      consumer.setStatus({ code: SpanStatusCode.ERROR, message: 'warehouse timed out' });
      consumer.end();
      root.setStatus({ code: SpanStatusCode.OK });
      root.end();
    });

    // Read the in-memory copy before shutdown (shutdown clears it), then flush the batch.
    const finished = tracing.memory.getFinishedSpans();
    expect(finished).toHaveLength(3);
    await tracing.shutdown();
    expect(tracing.memory.getFinishedSpans()).toHaveLength(0);

    // The receiver decoded exactly the SDK's spans, field for field.
    const received = receiver.spans();
    expect(bySpanId(received)).toEqual(bySpanId(finished.map((s) => asDecoded(s, SERVICE))));

    // And the values are the ones written above, not just whatever the SDK had.
    const named = (name: string): DecodedSpan => {
      const found = received.filter((s) => s.name === name);
      expect(found, name).toHaveLength(1);
      return found[0] as DecodedSpan;
    };
    const root = named('POST /orders');
    const producer = named('send orders');
    const consumer = named('process orders');
    expect(root.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(root.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(received.map((s) => s.traceId))).toEqual(new Set([root.traceId]));
    expect(new Set(received.map((s) => s.spanId)).size).toBe(3);
    expect(received.map((s) => [s.name, s.kind, s.parentSpanId])).toEqual(
      expect.arrayContaining([
        ['POST /orders', SpanKind.SERVER, undefined],
        ['send orders', SpanKind.PRODUCER, root.spanId],
        ['process orders', SpanKind.CONSUMER, producer.spanId],
      ]),
    );
    expect(producer.attributes).toEqual({
      'messaging.system.name': 'kafka',
      'kafka.offset': 42,
      'test.ratio': 0.25,
      'test.flag': true,
      'test.tags': ['a', 'b'],
      'test.counts': [1, 2, 3],
    });
    expect(root.status).toEqual({ code: SpanStatusCode.OK });
    expect(producer.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(consumer.status).toEqual({ code: SpanStatusCode.ERROR, message: 'warehouse timed out' });
    expect(consumer.links).toEqual([{ traceId: root.traceId, spanId: producer.spanId }, FOREIGN]);
    expect(producer.links).toEqual([]);
    for (const span of received) {
      expect(span.serviceName).toBe(SERVICE);
      expect(span.scopeName).toBe(SCOPE);
      expect(BigInt(span.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(span.startTimeUnixNano));
    }

    // OTLP/HTTP JSON to /v1/traces, every request accepted.
    const requests = receiver.requests();
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) {
      expect(request).toEqual({
        method: 'POST',
        path: '/v1/traces',
        contentType: 'application/json',
        contentEncoding: undefined,
        status: 200,
      });
    }

    // shutdown unregistered the globals: the global tracer no longer records.
    expect(trace.getTracer(SCOPE).startSpan('after shutdown').isRecording()).toBe(false);
  });

  it.each([
    [
      'OTEL_EXPORTER_OTLP_ENDPOINT with a trailing slash',
      (url: string) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: `${url}/` }),
    ],
    [
      'OTEL_EXPORTER_OTLP_ENDPOINT with surrounding whitespace',
      (url: string) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: ` ${url} ` }),
    ],
    [
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT over a dead OTEL_EXPORTER_OTLP_ENDPOINT',
      (url: string) => ({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${url}/v1/traces`,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/unused',
      }),
    ],
  ])('exports to where otlpEndpoint says, given %s', async (_, env) => {
    receiver = await startOtlpReceiver();
    Object.assign(process.env, env(receiver.url));
    tracing = createDemoTracing({ serviceName: SERVICE });
    expect(tracing.otlpEndpoint).toBe(`${receiver.url}/v1/traces`);
    oneSpan();
    await tracing.shutdown();
    expect(receiver.spans().map((s) => s.name)).toEqual(['lonely']);
    expect(receiver.requests().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'POST /v1/traces 200',
    ]);
  });

  it.each([
    ['neither variable set', {}],
    ['blank variables', { OTEL_EXPORTER_OTLP_ENDPOINT: ' ', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' }],
    ['a traces variable that is not a URL', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }],
  ])('exports nothing over OTLP with %s', async (_, env) => {
    receiver = await startOtlpReceiver();
    Object.assign(process.env, env);
    // No OTLP exporter at all (it would default to localhost:4318, so a receiver alone proves little).
    const exported = vi.spyOn(OTLPTraceExporter.prototype, 'export');
    tracing = createDemoTracing({ serviceName: SERVICE });
    expect(tracing.otlpEndpoint).toBeUndefined();
    expect('otlpEndpoint' in tracing).toBe(false);
    oneSpan();
    expect(tracing.memory.getFinishedSpans().map((s) => s.name)).toEqual(['lonely']);
    await tracing.shutdown();
    expect(exported).not.toHaveBeenCalled();
    expect(receiver.requests()).toEqual([]);
    expect(receiver.spans()).toEqual([]);
  });

  it('the export spy sees the exporter when OTLP is on (so the check above can fail)', async () => {
    receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    const exported = vi.spyOn(OTLPTraceExporter.prototype, 'export');
    tracing = createDemoTracing({ serviceName: SERVICE });
    oneSpan();
    await tracing.shutdown();
    expect(exported).toHaveBeenCalled();
    expect(receiver.spans()).toHaveLength(1);
  });
});

describe('decodeOtlpJsonTraces', () => {
  const TRACE_HEX = '0af7651916cd43dd8448eb211c80319c';
  const SPAN_HEX = 'b7ad6b7169203331';
  const PARENT_HEX = '00f067aa0ba902b7';
  const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

  const request = (span: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [{ scope: { name: 'scope-a' }, spans: [{ name: 'span', ...span }] }],
        ...extra,
      },
    ],
  });
  const decodeOne = (span: Record<string, unknown>): DecodedSpan | undefined => {
    const out = decodeOtlpJsonTraces(request(span));
    expect(out.length).toBeLessThanOrEqual(1);
    return out[0];
  };

  it('reads hex ids (any case) and base64 ids (protobuf JSON mapping) to the same lowercase hex', () => {
    const hex = decodeOne({ traceId: TRACE_HEX.toUpperCase(), spanId: SPAN_HEX, parentSpanId: PARENT_HEX });
    const base64 = decodeOne({
      traceId: b64(TRACE_HEX),
      spanId: b64(SPAN_HEX),
      parentSpanId: b64(PARENT_HEX),
      links: [{ traceId: b64(TRACE_HEX), spanId: b64(PARENT_HEX) }],
    });
    for (const span of [hex, base64]) {
      expect(span).toMatchObject({ traceId: TRACE_HEX, spanId: SPAN_HEX, parentSpanId: PARENT_HEX });
    }
    expect(base64?.links).toEqual([{ traceId: TRACE_HEX, spanId: PARENT_HEX }]);
  });

  it('skips spans whose ids are missing, of the wrong length or not hex/base64; an empty parent is a root', () => {
    expect(decodeOne({ spanId: SPAN_HEX })).toBeUndefined();
    expect(decodeOne({ traceId: TRACE_HEX })).toBeUndefined();
    expect(decodeOne({ traceId: TRACE_HEX.slice(2), spanId: SPAN_HEX })).toBeUndefined();
    expect(decodeOne({ traceId: TRACE_HEX, spanId: `${SPAN_HEX}00` })).toBeUndefined();
    expect(decodeOne({ traceId: 42, spanId: SPAN_HEX })).toBeUndefined();
    // Truncated hex must not be read as (lenient) base64 of the right byte length.
    expect(decodeOne({ traceId: TRACE_HEX.slice(0, 22), spanId: SPAN_HEX })).toBeUndefined();
    expect(decodeOne({ traceId: TRACE_HEX, spanId: SPAN_HEX.slice(0, 11) })).toBeUndefined();
    expect(
      decodeOne({ traceId: TRACE_HEX, spanId: SPAN_HEX, parentSpanId: '' })?.parentSpanId,
    ).toBeUndefined();
    expect(decodeOne({ traceId: TRACE_HEX, spanId: SPAN_HEX })?.parentSpanId).toBeUndefined();
  });

  it('decodes every AnyValue shape, kinds, statuses, resource and scope', () => {
    const span = decodeOne({
      traceId: TRACE_HEX,
      spanId: SPAN_HEX,
      kind: 5,
      startTimeUnixNano: '1760000000000000000',
      endTimeUnixNano: 1760000000500000000,
      status: { code: 2, message: 'boom' },
      attributes: [
        { key: 's', value: { stringValue: 'x' } },
        { key: 'i', value: { intValue: '9007199254740993' } },
        { key: 'n', value: { intValue: 7 } },
        { key: 'd', value: { doubleValue: 1.5 } },
        { key: 'b', value: { boolValue: false } },
        { key: 'bytes', value: { bytesValue: 'AQI=' } },
        { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }] } } },
        { key: 'kv', value: { kvlistValue: { values: [{ key: 'inner', value: { boolValue: true } }] } } },
        { key: 'empty', value: {} },
        { value: { stringValue: 'no key' } },
      ],
      links: [{ traceId: 'nope', spanId: SPAN_HEX }],
    });
    expect(span).toEqual({
      traceId: TRACE_HEX,
      spanId: SPAN_HEX,
      parentSpanId: undefined,
      name: 'span',
      kind: SpanKind.CONSUMER,
      attributes: {
        s: 'x',
        i: 9007199254740992, // JSON numbers are doubles: a 64-bit int past 2^53 loses precision
        n: 7,
        d: 1.5,
        b: false,
        bytes: 'AQI=',
        arr: ['a', 2],
        kv: { inner: true },
        empty: null,
      },
      status: { code: SpanStatusCode.ERROR, message: 'boom' },
      serviceName: 'svc',
      scopeName: 'scope-a',
      startTimeUnixNano: '1760000000000000000',
      endTimeUnixNano: '1760000000500000000',
      links: [],
    });
    const kinds = [0, 1, 2, 3, 4, 5, 6, 'SPAN_KIND_SERVER'].map(
      (kind) => decodeOne({ traceId: TRACE_HEX, spanId: SPAN_HEX, kind })?.kind,
    );
    expect(kinds).toEqual([
      SpanKind.INTERNAL,
      SpanKind.INTERNAL,
      SpanKind.SERVER,
      SpanKind.CLIENT,
      SpanKind.PRODUCER,
      SpanKind.CONSUMER,
      SpanKind.INTERNAL,
      SpanKind.INTERNAL,
    ]);
    const statuses = [undefined, {}, { code: 1 }, { code: 7, message: '' }].map(
      (status) => decodeOne({ traceId: TRACE_HEX, spanId: SPAN_HEX, status })?.status,
    );
    expect(statuses).toEqual([
      { code: SpanStatusCode.UNSET },
      { code: SpanStatusCode.UNSET },
      { code: SpanStatusCode.OK },
      { code: SpanStatusCode.UNSET },
    ]);
  });

  it('never throws on odd input and keeps the spans that are valid', () => {
    for (const body of [null, 42, 'x', [], {}, { resourceSpans: 'x' }, { resourceSpans: [null, 1] }]) {
      expect(decodeOtlpJsonTraces(body)).toEqual([]);
    }
    const mixed = {
      resourceSpans: [
        { scopeSpans: [null, { spans: [null, 'x', { traceId: TRACE_HEX, spanId: SPAN_HEX, name: 'ok' }] }] },
      ],
    };
    expect(decodeOtlpJsonTraces(mixed)).toMatchObject([
      { name: 'ok', serviceName: undefined, scopeName: undefined, attributes: {}, links: [] },
    ]);
  });
});

describe('startOtlpReceiver', () => {
  const post = (url: string, body: string | Buffer, headers: Record<string, string>) =>
    fetch(url, { method: 'POST', body, headers });
  const minimal = JSON.stringify({
    resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }] }] }],
  });

  it('accepts JSON (also gzipped) on /v1/traces and records every request, rejected ones included', async () => {
    receiver = await startOtlpReceiver();
    const traces = `${receiver.url}/v1/traces`;
    const statuses = [
      (await post(traces, minimal, { 'content-type': 'application/json' })).status,
      (
        await post(traces, gzipSync(minimal), {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
        })
      ).status,
      (await fetch(traces)).status,
      (await post(`${receiver.url}/v1/metrics`, minimal, { 'content-type': 'application/json' })).status,
      (await post(traces, Buffer.from([0x0a, 0x00]), { 'content-type': 'application/x-protobuf' })).status,
      (await post(traces, '{not json', { 'content-type': 'application/json' })).status,
      (await post(traces, 'not gzip', { 'content-type': 'application/json', 'content-encoding': 'gzip' }))
        .status,
    ];
    expect(statuses).toEqual([200, 200, 404, 404, 415, 400, 400]);
    expect(receiver.requests().map((r) => [r.method, r.path, r.contentEncoding ?? '', r.status])).toEqual([
      ['POST', '/v1/traces', '', 200],
      ['POST', '/v1/traces', 'gzip', 200],
      ['GET', '/v1/traces', '', 404],
      ['POST', '/v1/metrics', '', 404],
      ['POST', '/v1/traces', '', 415],
      ['POST', '/v1/traces', '', 400],
      ['POST', '/v1/traces', 'gzip', 400],
    ]);
    expect(receiver.spans().map((s) => s.spanId)).toEqual(['b'.repeat(16), 'b'.repeat(16)]);
  });
});
