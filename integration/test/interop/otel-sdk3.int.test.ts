import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brokerEndpoint } from '@hoptrace/test-kit';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cleanup, newTopic } from './helpers.ts';

// hoptrace's packages need only @opentelemetry/api, so an application may run them under any SDK.
// Users starting today get the 3.x SDK (NodeSDK 0.301 on @opentelemetry/sdk-trace 3, api 1.10);
// hoptrace's own tests use 2.x. Here an application on each, in a process of its own, runs the
// published build of every adapter down one chain on the real brokers
// (request -> kafkajs -> @platformatic/kafka -> amqplib -> BullMQ) and reports what its SDK exported.

/** A span as the application's SDK exported it. */
interface ChainSpan {
  name: string;
  kind: SpanKind;
  /** The instrumentation scope (`@hoptrace/kafka`..., `sdk-chain-app` for the request). */
  scope: string;
  traceId: string;
  spanId: string;
  traceFlags: number;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  status: { code: SpanStatusCode; message?: string };
}

/** What one handler of the chain saw. */
interface ChainSeen {
  hop: 'kafkajs' | 'platformatic' | 'amqp' | 'bullmq';
  body: string;
  /** The `traceparent` the message carried. */
  traceparent: string | undefined;
  /** The span context active in the handler. */
  active: { traceId: string; spanId: string; traceFlags: number } | undefined;
  /** BullMQ only: the job's `attemptsMade` when the handler ran. */
  attemptsMade?: number;
}

/** One metric the application's MeterProvider collected, with its points. */
interface ChainMetric {
  scope: string;
  name: string;
  unit: string;
  points: { attributes: Record<string, unknown>; value: number | { count: number; sum: number } }[];
}

/** What one run of the application reports. */
interface ChainRun {
  /** The SDK packages it ran on (for SDK 3: as NodeSDK itself resolves them). */
  versions: Record<string, string>;
  /** The requests, in order: the body each sent and its request span's context. */
  requests: { body: string; traceId: string; spanId: string; traceFlags: number }[];
  seen: ChainSeen[];
  spans: ChainSpan[];
  /** Names of spans started and not ended once every client was closed. */
  open: string[];
  metrics: ChainMetric[];
}

/** The destinations of one run (fresh ones each run). */
interface Names {
  kafkajs: string;
  platformatic: string;
  amqp: string;
  bullmq: string;
}

const FIXTURE = fileURLToPath(new URL('./fixtures/sdk-chain.mjs', import.meta.url));

/** Runs the application on SDK `major` with fresh destinations; returns its report and the names. */
async function runChain(
  cleanup: Cleanup,
  major: 2 | 3,
  mode: 'sampled' | 'unsampled',
  runs: number,
): Promise<{ run: ChainRun; names: Names }> {
  const id = randomUUID().slice(0, 8);
  const names: Names = {
    kafkajs: await newTopic(`sdk${major}-kafkajs-${id}`),
    platformatic: await newTopic(`sdk${major}-plt-${id}`),
    amqp: `sdk${major}-amqp-${id}-${randomUUID()}`,
    bullmq: `sdk${major}-bull-${id}-${randomUUID()}`,
  };
  const redis = brokerEndpoint('redis');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SDK_KAFKA_BROKERS: brokerEndpoint('kafka').brokers.join(','),
    SDK_AMQP_URL: brokerEndpoint('rabbitmq').url,
    SDK_REDIS_HOST: redis.host,
    SDK_REDIS_PORT: String(redis.port),
    SDK_KAFKA_TOPIC: names.kafkajs,
    SDK_PLT_TOPIC: names.platformatic,
    SDK_AMQP_QUEUE: names.amqp,
    SDK_BULL_QUEUE: names.bullmq,
  };
  const abort = new AbortController();
  cleanup.push(async () => abort.abort());
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [FIXTURE, String(major), mode, String(runs)],
    { env, timeout: 90_000, signal: abort.signal, maxBuffer: 16 * 1024 * 1024 },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`the application printed no RESULT:\n${stdout}`);
  return { run: JSON.parse(line.slice('RESULT '.length)) as ChainRun, names };
}

function only<T>(items: T[], what: string): T {
  expect(items, what).toHaveLength(1);
  return items[0] as T;
}

/** The hops in chain order, with the messaging system hoptrace names and the scope of its adapter. */
const HOPS = [
  { hop: 'kafkajs', system: 'kafka', scope: '@hoptrace/kafka' },
  { hop: 'platformatic', system: 'kafka', scope: '@hoptrace/platformatic-kafka' },
  { hop: 'amqp', system: 'rabbitmq', scope: '@hoptrace/amqp' },
  { hop: 'bullmq', system: 'bullmq', scope: '@hoptrace/bullmq' },
] as const;

/** Sum of the counter values (or histogram counts) of `name` in `scope`, over points matching `where`. */
function total(
  run: ChainRun,
  scope: string,
  name: string,
  where: (attributes: Record<string, unknown>) => boolean = () => true,
): number {
  const metric = run.metrics.find((m) => m.scope === scope && m.name === name);
  return (metric?.points ?? [])
    .filter((p) => where(p.attributes))
    .reduce((sum, p) => sum + (typeof p.value === 'number' ? p.value : p.value.count), 0);
}

/**
 * The run with everything that differs from one run to the next taken out: span and trace ids
 * become the spans they name, destinations their hop, timings their type. Two SDKs that behave
 * alike for hoptrace give equal shapes.
 */
function shape(run: ChainRun, names: Names) {
  const rename = (value: unknown): unknown => {
    if (typeof value !== 'string') return value;
    let out = value;
    for (const [hop, name] of Object.entries(names)) out = out.split(name).join(`<${hop}>`);
    return out;
  };
  const VOLATILE = new Set(['bullmq.job.time_in_queue']);
  const attributes = (a: Record<string, unknown>) =>
    Object.fromEntries(
      Object.keys(a)
        .sort()
        .map((k) => [k, VOLATILE.has(k) ? typeof a[k] : rename(a[k])]),
    );
  const byId = new Map(run.spans.map((s) => [s.spanId, s]));
  const label = (s: ChainSpan | undefined) =>
    s ? `${s.scope} ${rename(s.name)} ${s.attributes['bullmq.job.attempt'] ?? ''}` : 'not exported';
  const spans = run.spans
    .map((s) => ({
      span: label(s),
      kind: s.kind,
      traceFlags: s.traceFlags,
      parent: s.parentSpanId === undefined ? 'none' : label(byId.get(s.parentSpanId)),
      sameTrace: s.traceId === run.requests[0]?.traceId,
      attributes: attributes(s.attributes),
      links: s.links.length,
      status: s.status,
    }))
    .sort((a, b) => a.span.localeCompare(b.span));
  const metrics = run.metrics
    .map((m) => ({
      metric: `${m.scope} ${m.name} ${m.unit}`,
      points: m.points
        .map((p) => ({
          attributes: attributes(p.attributes),
          value: typeof p.value === 'number' ? p.value : p.value.count,
        }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    }))
    .sort((a, b) => a.metric.localeCompare(b.metric));
  const seen = run.seen.map((s) => {
    const request = run.requests.find((r) => r.body === s.body);
    const parent = s.traceparent?.split('-')[2];
    return {
      hop: s.hop,
      request: run.requests.indexOf(request as ChainRun['requests'][number]),
      attemptsMade: s.attemptsMade,
      traceparentFlags: s.traceparent?.split('-')[3],
      sameTrace: s.active?.traceId === request?.traceId && s.traceparent?.split('-')[1] === request?.traceId,
      activeFlags: s.active?.traceFlags,
      /** The handler runs in the message's own context (no span of its own). */
      inMessageContext: s.active?.spanId === parent,
      /** The message's parent is the request span itself (nothing in between started a span). */
      parentIsRequest: parent === request?.spanId,
    };
  });
  return { spans, metrics, seen, open: run.open };
}

describe('hoptrace under the OpenTelemetry JS SDK 3 (NodeSDK), in an application process of its own', () => {
  // Each application runs once for the whole file; a test reads what it reported.
  const stop: Cleanup = [];
  afterAll(async () => {
    for (const fn of stop.splice(0)) await fn();
  });
  let sampled: { run: ChainRun; names: Names };
  let unsampled: { run: ChainRun; names: Names };
  let sampled2: { run: ChainRun; names: Names };
  let unsampled2: { run: ChainRun; names: Names };
  beforeAll(async () => {
    [sampled, unsampled, sampled2, unsampled2] = await Promise.all([
      runChain(stop, 3, 'sampled', 1),
      runChain(stop, 3, 'unsampled', 2),
      runChain(stop, 2, 'sampled', 1),
      runChain(stop, 2, 'unsampled', 2),
    ]);
  }, 120_000);

  it('runs on the 3.x stack NodeSDK brings (and the 2.x one for the comparison)', () => {
    expect(sampled.run.versions).toEqual({
      '@opentelemetry/sdk-node': '0.301.2',
      '@opentelemetry/sdk-trace': '3.1.1',
      '@opentelemetry/sdk-metrics': '3.1.1',
      '@opentelemetry/context-async-hooks': '3.1.1',
      '@opentelemetry/core': '3.1.1',
      '@opentelemetry/api': '1.10.0',
    });
    expect(sampled2.run.versions).toEqual({
      '@opentelemetry/sdk-trace-base': '2.12.1',
      '@opentelemetry/sdk-metrics': '2.12.1',
      '@opentelemetry/context-async-hooks': '2.12.0',
      '@opentelemetry/core': '2.12.1',
      '@opentelemetry/api': '1.10.0',
    });
  });

  it('one trace across kafkajs, @platformatic/kafka, amqplib and BullMQ; each process span is the child of its send span', () => {
    const { run, names } = sampled;
    const request = only(run.requests, 'one request');
    expect(run.open).toEqual([]);
    expect(run.spans.map((s) => s.traceId)).toEqual(run.spans.map(() => request.traceId));
    expect(run.spans.every((s) => s.traceFlags === 1)).toBe(true);
    // request, then per hop one send and one process span (BullMQ: one per attempt)
    expect(run.spans).toHaveLength(1 + 4 + 5);
    const root = only(
      run.spans.filter((s) => s.parentSpanId === undefined),
      'one root',
    );
    expect([root.name, root.kind, root.spanId]).toEqual(['request', SpanKind.INTERNAL, request.spanId]);
    let parent = root.spanId;
    for (const { hop, system, scope } of HOPS) {
      const destination = names[hop];
      const ours = run.spans.filter((s) => s.scope === scope);
      const send = only(
        ours.filter((s) => s.kind === SpanKind.PRODUCER),
        `${hop}: one send span`,
      );
      const processes = ours.filter((s) => s.kind === SpanKind.CONSUMER);
      expect(processes, `${hop}: process spans`).toHaveLength(hop === 'bullmq' ? 2 : 1);
      expect(ours, `${hop}: nothing else`).toHaveLength(1 + processes.length);
      // the send span is a child of the context the previous hop's handler ran in
      expect(send.parentSpanId, `${hop}: the send span's parent`).toBe(parent);
      expect(send.name).toBe(`send ${destination}`);
      expect(send.attributes).toMatchObject({
        'messaging.system.name': system,
        'messaging.operation.type': 'send',
        'messaging.destination.name': destination,
      });
      const seen = run.seen.filter((s) => s.hop === hop);
      expect(seen).toHaveLength(processes.length);
      for (const [i, process] of processes.entries()) {
        expect(process.name).toBe(`process ${destination}`);
        expect(process.parentSpanId, `${hop}: a process span's parent is its message's send span`).toBe(
          send.spanId,
        );
        expect(process.links).toEqual([]);
        expect(process.attributes).toMatchObject({
          'messaging.system.name': system,
          'messaging.operation.type': 'process',
          'messaging.destination.name': destination,
        });
        // the handler ran in its process span, and the message carried the send span's context
        expect(seen[i]?.active).toEqual({ traceId: request.traceId, spanId: process.spanId, traceFlags: 1 });
        expect(seen[i]?.traceparent).toBe(`00-${request.traceId}-${send.spanId}-01`);
      }
      parent = (processes.at(-1) as ChainSpan).spanId;
    }
  });

  it('a failing BullMQ attempt is an ERROR with its error.type; the retry that succeeds is not', () => {
    const { run } = sampled;
    const attempts = run.spans
      .filter((s) => s.scope === '@hoptrace/bullmq' && s.kind === SpanKind.CONSUMER)
      .sort(
        (a, b) => Number(a.attributes['bullmq.job.attempt']) - Number(b.attributes['bullmq.job.attempt']),
      );
    expect(attempts.map((s) => s.status)).toEqual([
      { code: SpanStatusCode.ERROR, message: 'out of stock' },
      { code: SpanStatusCode.UNSET },
    ]);
    expect(attempts[0]?.attributes).toMatchObject({
      'error.type': 'StockError',
      'bullmq.job.attempt': 1,
      'hoptrace.attempt.final': false,
      'hoptrace.error.retryable': true,
    });
    expect(attempts[1]?.attributes).not.toHaveProperty('error.type');
    for (const span of run.spans.filter((s) => s !== attempts[0])) {
      expect(span.status, span.name).toEqual({ code: SpanStatusCode.UNSET });
    }
  });

  it("records hoptrace's messaging metrics through the SDK 3 MeterProvider", () => {
    const { run, names } = sampled;
    for (const { hop, system, scope } of HOPS) {
      const destination = names[hop];
      const at = (operation: string) => (a: Record<string, unknown>) =>
        a['messaging.system.name'] === system &&
        a['messaging.operation.name'] === operation &&
        a['messaging.destination.name'] === destination;
      const attempts = hop === 'bullmq' ? 2 : 1;
      expect(
        [
          total(run, scope, 'messaging.client.sent.messages', at('send')),
          total(run, scope, 'messaging.client.operation.duration', at('send')),
          total(run, scope, 'messaging.client.consumed.messages', at('process')),
          total(run, scope, 'messaging.process.duration', at('process')),
        ],
        hop,
      ).toEqual([1, 1, attempts, attempts]);
    }
    const failed = (a: Record<string, unknown>) => a['error.type'] === 'StockError';
    expect(total(run, '@hoptrace/bullmq', 'messaging.process.duration', failed)).toBe(1);
    expect(total(run, '@hoptrace/kafka', 'hoptrace.messaging.time_in_queue')).toBe(1);
    expect(total(run, '@hoptrace/bullmq', 'hoptrace.messaging.time_in_queue')).toBe(1);
  });

  it('unsampled (ParentBased(TraceIdRatioBased(0))): nothing recorded, the trace id reaches every hop, and once learned no hop starts a span', () => {
    const { run } = unsampled;
    expect(run.spans).toEqual([]);
    expect(run.open).toEqual([]);
    expect(run.requests).toHaveLength(2);
    expect(run.seen).toHaveLength(2 * 5);
    for (const seen of run.seen) {
      const request = run.requests.find((r) => r.body === seen.body);
      expect(request?.traceFlags).toBe(0);
      expect(seen.traceparent, seen.hop).toMatch(new RegExp(`^00-${request?.traceId}-[0-9a-f]{16}-00$`));
      expect(seen.active?.traceId, seen.hop).toBe(request?.traceId);
      expect(seen.active?.traceFlags, seen.hop).toBe(0);
    }
    // The first request: the kafkajs send started a (non-recording) span to learn what the sampler
    // does with children of unsampled parents, so the message's parent is that span, not the request.
    const [first, second] = run.requests as [ChainRun['requests'][number], ChainRun['requests'][number]];
    const firstKafka = run.seen.find((s) => s.body === first.body && s.hop === 'kafkajs');
    expect(firstKafka?.traceparent).not.toBe(`00-${first.traceId}-${first.spanId}-00`);
    // The second request: every wrapper has learned; no span anywhere, so every message carries the
    // request's own context and every handler runs in it, down to both BullMQ attempts.
    const passedThrough = run.seen
      .filter((s) => s.body === second.body)
      .map((s) => [s.hop, s.traceparent, s.active?.spanId]);
    expect(passedThrough).toEqual(
      ['kafkajs', 'platformatic', 'amqp', 'bullmq', 'bullmq'].map((hop) => [
        hop,
        `00-${second.traceId}-${second.spanId}-00`,
        second.spanId,
      ]),
    );
    // metrics do not depend on sampling
    for (const { scope } of HOPS) expect(total(run, scope, 'messaging.client.sent.messages'), scope).toBe(2);
  });

  it('spans, metrics and the unsampled fast path have the same shape under SDK 3 as under SDK 2', () => {
    expect(shape(sampled.run, sampled.names)).toEqual(shape(sampled2.run, sampled2.names));
    expect(shape(unsampled.run, unsampled.names)).toEqual(shape(unsampled2.run, unsampled2.names));
  });
});
