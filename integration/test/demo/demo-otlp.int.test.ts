import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brokerEndpoint } from '@hoptrace/test-kit';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DecodedSpan, type OtlpReceiver, startOtlpReceiver } from '../../src/demo/otlp-receiver.ts';

// The real demo (`./dev demo`) in a child process on this run's brokers, exporting over OTLP/HTTP to
// a test receiver: what arrives must be every span the demo counted, as well-formed traces.

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const ORDERS = 3; // main.ts: order-001 goes straight through, order-002 is flaky, order-003 is poison
const DEMO_TIMEOUT_MS = 90_000;
// The demo's HTML page and log go here, not into the developer's .artifacts/demo.
const OUT = mkdtempSync(join(tmpdir(), 'hoptrace-demo-otlp-'));

// Like every other test, the child runs the packages' TypeScript sources (`./dev demo` builds dist
// first; here a stale or missing dist would test old code): @hoptrace/* resolve to packages/*/src.
const SOURCES = Object.fromEntries(
  [
    ['core', 'index'],
    ['core/adapter', 'adapter'],
    ['kafka', 'index'],
    ['amqp', 'index'],
    ['bullmq', 'index'],
    ['platformatic-kafka', 'index'],
  ].map(([name, entry]) => [
    `@hoptrace/${name}`,
    pathToFileURL(`${REPO}packages/${name?.split('/')[0]}/src/${entry}.ts`).href,
  ]),
);
const SOURCE_HOOK = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
const sources = ${JSON.stringify(SOURCES)};
registerHooks({
  resolve: (specifier, context, next) =>
    sources[specifier] ? { url: sources[specifier], shortCircuit: true } : next(specifier, context),
});`)}`;

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node integration/src/demo/main.ts --orders N` from the repo root; kills it after the timeout. */
function runDemo(env: NodeJS.ProcessEnv): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', SOURCE_HOOK, 'integration/src/demo/main.ts', '--orders', String(ORDERS), '--out', OUT],
      { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the demo did not exit within ${DEMO_TIMEOUT_MS} ms\n${stdout}\n${stderr}`));
    }, DEMO_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The child's environment: this run's brokers, OTLP to the receiver, no other OTEL_* settings. */
function demoEnv(receiverUrl: string): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !key.startsWith('OTEL_') && !key.startsWith('VITEST') && key !== 'HOPTRACE_ONLY',
    ),
  );
  const redis = brokerEndpoint('redis');
  const redisHost = redis.host.includes(':') && !redis.host.startsWith('[') ? `[${redis.host}]` : redis.host;
  return {
    ...inherited,
    HOPTRACE_KAFKA_BROKERS: brokerEndpoint('kafka').brokers.join(','),
    HOPTRACE_RABBITMQ_URL: brokerEndpoint('rabbitmq').url,
    HOPTRACE_REDIS_URL: `redis://${redisHost}:${redis.port}`,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
  };
}

const sys = (s: DecodedSpan) => s.attributes['messaging.system.name'];
const op = (s: DecodedSpan) => s.attributes['messaging.operation.type'];
const hop = (spans: readonly DecodedSpan[], system: string, operation: string) =>
  spans.filter((s) => sys(s) === system && op(s) === operation);
const names = (spans: readonly DecodedSpan[]) => spans.map((s) => `${s.name} (${s.spanId})`).join(', ');

function only(spans: readonly DecodedSpan[], what: string): DecodedSpan {
  expect(spans, `${what}: ${names(spans)}`).toHaveLength(1);
  return spans[0] as DecodedSpan;
}

let receiver: OtlpReceiver;
let run: DemoRun;
let spans: DecodedSpan[];
let byId: Map<string, DecodedSpan>;
let traces: Map<string, DecodedSpan[]>;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  run = await runDemo(demoEnv(receiver.url));
  spans = receiver.spans();
  byId = new Map(spans.map((s) => [s.spanId, s]));
  traces = new Map();
  for (const span of spans) traces.set(span.traceId, [...(traces.get(span.traceId) ?? []), span]);
}, DEMO_TIMEOUT_MS + 20_000);
afterAll(async () => {
  await receiver?.close();
  rmSync(OUT, { recursive: true, force: true });
});

/** The spans of the order whose Kafka key is `orderId`, checked hop by hop up to the RabbitMQ consumer. */
function orderTrace(orderId: string) {
  const sends = hop(spans, 'kafka', 'send').filter((s) => s.attributes['kafka.message.key'] === orderId);
  const traceId = only(sends, `kafka send of ${orderId}`).traceId;
  const inTrace = traces.get(traceId) ?? [];

  const request = only(
    inTrace.filter((s) => s.parentSpanId === undefined),
    `root of ${orderId}`,
  );
  expect(request).toMatchObject({ name: 'POST /orders', kind: SpanKind.SERVER });
  const kafkaSend = only(hop(inTrace, 'kafka', 'send'), 'kafka send');
  expect(kafkaSend).toMatchObject({ kind: SpanKind.PRODUCER, parentSpanId: request.spanId });
  const kafkaProcess = only(hop(inTrace, 'kafka', 'process'), 'kafka process');
  expect(kafkaProcess).toMatchObject({ kind: SpanKind.CONSUMER, parentSpanId: kafkaSend.spanId });
  // The order's publish, and (for a poison order) the dead-letter copy's publish inside the failed attempt.
  const rabbitSends = hop(inTrace, 'rabbitmq', 'send');
  const rabbitSend = only(
    rabbitSends.filter((s) => s.parentSpanId === kafkaProcess.spanId),
    'rabbitmq send',
  );
  expect(rabbitSend).toMatchObject({ kind: SpanKind.PRODUCER, parentSpanId: kafkaProcess.spanId });
  const rabbitProcesses = hop(inTrace, 'rabbitmq', 'process');
  for (const consumer of rabbitProcesses) {
    expect(consumer).toMatchObject({ kind: SpanKind.CONSUMER, parentSpanId: rabbitSend.spanId });
  }
  const deadLetterSends = rabbitSends.filter((s) => s !== rabbitSend);
  for (const send of deadLetterSends) {
    expect(rabbitProcesses.map((p) => p.spanId)).toContain(send.parentSpanId);
  }
  return {
    traceId,
    spans: inTrace,
    request,
    rabbitProcesses,
    deadLetterSends,
    bullSends: hop(inTrace, 'bullmq', 'send'),
    // Attempts in order.
    bullProcesses: hop(inTrace, 'bullmq', 'process').sort(
      (a, b) => Number(a.attributes['bullmq.job.attempt']) - Number(b.attributes['bullmq.job.attempt']),
    ),
  };
}

describe('the demo with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  it('exits 0 and says where it exports', () => {
    expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
    expect(run.stdout.split('\n')).toContain(`exporting spans via OTLP/HTTP to ${receiver.url}/v1/traces`);
  });

  it('writes the HTML waterfall and the log into --out and prints their paths', () => {
    const html = join(OUT, 'waterfall.html');
    expect(run.stdout.split('\n')).toContain(`HTML waterfall: ${html}`);
    expect(existsSync(join(OUT, 'pipeline.log'))).toBe(true);
    // The page carries every order trace the receiver saw.
    const page = readFileSync(html, 'utf8');
    for (const send of hop(spans, 'kafka', 'send').filter((s) => s.attributes['kafka.message.key'])) {
      expect(page).toContain(send.traceId);
    }
  });

  it('exports exactly the spans it counted, as OTLP/HTTP JSON, under service.name hoptrace-demo', () => {
    const counted = /^(\d+) spans in (\d+) traces /m.exec(run.stdout);
    expect(counted, run.stdout).not.toBeNull();
    const [, spanCount, traceCount] = counted ?? [];
    expect(spans.length).toBe(Number(spanCount));
    expect(traces.size).toBe(Number(traceCount));
    expect(byId.size, 'span ids are unique (nothing sent twice)').toBe(spans.length);
    expect(new Set(spans.map((s) => s.serviceName))).toEqual(new Set(['hoptrace-demo']));

    const requests = receiver.requests();
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) {
      expect(request).toMatchObject({
        method: 'POST',
        path: '/v1/traces',
        contentType: 'application/json',
        status: 200,
      });
    }
  });

  it('sends a straight-through order as one trace: SERVER root, then Kafka, RabbitMQ and BullMQ hops', () => {
    const t = orderTrace('order-001');
    const rabbitProcess = only(t.rabbitProcesses, 'rabbitmq process');
    const bullSend = only(t.bullSends, 'bullmq send');
    expect(bullSend).toMatchObject({ kind: SpanKind.PRODUCER, parentSpanId: rabbitProcess.spanId });
    const bullProcess = only(t.bullProcesses, 'bullmq process');
    expect(bullProcess).toMatchObject({ kind: SpanKind.CONSUMER, parentSpanId: bullSend.spanId });
    expect(bullProcess.attributes['tenant.id']).toBe('acme'); // baggage crossed all three brokers
    expect(t.spans, names(t.spans)).toHaveLength(7);
    expect(t.spans.filter((s) => s.status.code === SpanStatusCode.ERROR)).toEqual([]);
    expect(new Set(t.spans.map(sys))).toEqual(new Set([undefined, 'kafka', 'rabbitmq', 'bullmq']));
  });

  it("shows the flaky order's first BullMQ attempt as ERROR and its retry as a sibling", () => {
    const t = orderTrace('order-002');
    // The demo prints the flaky order's trace as the tree; the same trace arrived over OTLP.
    expect(run.stdout).toContain(`trace of order-002 (fulfilled after 2 attempt(s)), trace id ${t.traceId}`);
    const bullSend = only(t.bullSends, 'bullmq send');
    expect(t.bullProcesses.map((s) => s.attributes['bullmq.job.attempt'])).toEqual([1, 2]);
    expect(t.bullProcesses.map((s) => s.parentSpanId)).toEqual([bullSend.spanId, bullSend.spanId]);
    expect(t.bullProcesses.map((s) => s.status)).toEqual([
      { code: SpanStatusCode.ERROR, message: 'warehouse timed out' },
      { code: SpanStatusCode.UNSET },
    ]);
    expect(t.bullProcesses[0]?.attributes['error.type']).toBe('Error');
    expect(t.spans, names(t.spans)).toHaveLength(8);
  });

  it('keeps the poison order in its trace: POISON_ORDER at RabbitMQ, its dead letter linked back to that attempt', () => {
    const t = orderTrace('order-003');
    expect(t.rabbitProcesses).toHaveLength(2);
    const [rejected, deadLetter] = [...t.rabbitProcesses].sort((a, b) =>
      a.startTimeUnixNano.localeCompare(b.startTimeUnixNano),
    );
    expect(rejected?.status.code).toBe(SpanStatusCode.ERROR);
    expect(rejected?.attributes['error.type']).toBe('POISON_ORDER');
    expect(String(deadLetter?.attributes['messaging.destination.name'])).toContain('fulfilment-dead-');
    expect(deadLetter?.status.code).toBe(SpanStatusCode.UNSET);
    expect(deadLetter?.links).toEqual([{ traceId: t.traceId, spanId: rejected?.spanId }]);
    expect(deadLetter?.attributes['hoptrace.failure.error.type']).toBe('POISON_ORDER');
    expect(t.deadLetterSends.map((s) => s.parentSpanId)).toEqual([rejected?.spanId]);
    expect(t.bullSends).toEqual([]);
    // request, Kafka send + process, RabbitMQ send + process, the dead-letter send + process
    expect(t.spans, names(t.spans)).toHaveLength(7);
    // The demo prints this trace too, the dead letter naming the attempt it came from.
    expect(run.stdout).toContain(`↪ dead letter of ${rejected?.name} (POISON_ORDER)`);
  });

  it('runs each reconciliation as its own trace, a root linked to the scheduling call', () => {
    const printed = /^scheduling trace ([0-9a-f]{32}):/m.exec(run.stdout)?.[1];
    expect(printed, run.stdout).toBeDefined();
    const scheduling = traces.get(printed ?? '') ?? [];
    expect(scheduling.find((s) => s.parentSpanId === undefined)).toMatchObject({
      name: 'POST /admin/reconciliation',
      kind: SpanKind.SERVER,
    });
    const schedule = only(hop(scheduling, 'bullmq', 'create'), 'bullmq schedule');

    const runs = hop(spans, 'bullmq', 'process').filter((s) => s.attributes['bullmq.scheduler.id']);
    expect(runs.length).toBeGreaterThanOrEqual(2); // the demo waits for two runs
    expect(new Set(runs.map((s) => s.traceId)).size).toBe(runs.length);
    for (const r of runs) {
      // Each run hangs under its virtual run root (derived from the job id; never exported).
      expect(r.parentSpanId).toMatch(/^[0-9a-f]{16}$/);
      expect(byId.has(r.parentSpanId ?? '')).toBe(false);
      expect(r.links).toEqual([{ traceId: schedule.traceId, spanId: schedule.spanId }]);
      // The run's Kafka publish and its audit consumer continue the run's trace.
      const [send] = hop(traces.get(r.traceId) ?? [], 'kafka', 'send');
      expect(send?.parentSpanId).toBe(r.spanId);
    }
  });

  it('leaves no orphan: every parent and every link is a span that was exported', () => {
    const roots: DecodedSpan[] = [];
    for (const span of spans) {
      // A scheduled run's attempts hang under a virtual run root that is never exported (by design).
      const virtualRoot =
        span.attributes['bullmq.scheduler.id'] !== undefined && !byId.has(span.parentSpanId ?? '');
      if (span.parentSpanId === undefined || virtualRoot) {
        roots.push(span);
      } else {
        const parent = byId.get(span.parentSpanId);
        expect(parent, `parent of ${span.name} (${span.spanId})`).toBeDefined();
        expect(parent?.traceId, `trace of the parent of ${span.name}`).toBe(span.traceId);
        // Consumers continue the trace as the message's child: their parent is the producer's span.
        if (span.kind === SpanKind.CONSUMER) expect(parent?.kind, span.name).toBe(SpanKind.PRODUCER);
      }
      for (const link of span.links) {
        expect(byId.get(link.spanId)?.traceId, `link of ${span.name} (${span.spanId})`).toBe(link.traceId);
      }
    }
    // One root per trace: the HTTP requests, and the scheduler runs (under their virtual run root, linked to another trace).
    expect(roots).toHaveLength(traces.size);
    for (const root of roots) {
      if (root.kind === SpanKind.SERVER) {
        expect(root.name).toMatch(/^POST \//);
      } else {
        expect({ kind: root.kind, system: sys(root), op: op(root) }).toEqual({
          kind: SpanKind.CONSUMER,
          system: 'bullmq',
          op: 'process',
        });
        expect(root.links.length).toBeGreaterThan(0);
        expect(root.links.every((l) => l.traceId !== root.traceId)).toBe(true);
      }
    }
    expect(roots.filter((s) => s.name === 'POST /orders')).toHaveLength(ORDERS);
  });
});

describe('the demo command line', () => {
  /** Runs the demo with `args`; these all exit before any broker is looked for. */
  function demo(args: string[]) {
    const out = spawnSync(
      process.execPath,
      ['--import', SOURCE_HOOK, 'integration/src/demo/main.ts', ...args],
      {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    return { code: out.status, stdout: out.stdout, stderr: out.stderr };
  }

  it('--help prints the usage and runs nothing', () => {
    const run = demo(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^usage: \.\/dev demo \[--orders N\]/);
    expect(run.stdout).not.toContain('[harness]');
  });

  it('an argument it does not take stops it with the usage (a typo ran the default demo)', () => {
    const run = demo(['--ordres', '5']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("Unknown option '--ordres'");
    expect(run.stderr).toContain('usage: ./dev demo');
    expect(run.stdout).not.toContain('[harness]');
    expect(demo(['--orders', '2'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--orders takes an integer >= 3, got 2'),
    });
  });
});
