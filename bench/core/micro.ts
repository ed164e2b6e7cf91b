// Micro-benchmarks for @hoptrace/core's per-message work, each beside its baseline in the same run:
// inject, extract from string and Buffer headers, snapshot capture/restore, the kafkajs consumer
// wrapper's own work per message under each sampler (consumer-path.ts), a kafkajs send of one message
// through a traced producer (producer-path.ts), an amqplib publish, delivery
// and ack through a traced channel on a stand-in (amqp-path.ts), and the hostile cases of
// issue 12.3 (1 MB baggage, tracestate and traceparent headers, refused by hoptrace before any
// parser sees them, beside OpenTelemetry's propagator parsing them). Run: `./dev bench core` (add
// --quick for a short run; a full run rewrites the core section of bench/README.md).

import {
  type ContextSnapshot,
  captureSnapshot,
  extractContext,
  injectContext,
  restoreSnapshot,
} from '@hoptrace/core';
import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { type Case, type CaseResult, runCases } from '../lib/measure.ts';
import { writeReadmeSection } from '../lib/readme.ts';
import { duration, fmt, machine, today, writeResults } from '../lib/report.ts';
import { amqpPathCases } from './amqp-path.ts';
import { consumerPathCases } from './consumer-path.ts';
import { producerPathCases } from './producer-path.ts';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
);

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const stringHeaders: Record<string, string> = {
  'content-type': 'application/json',
  'x-request-id': 'c0ffee00-1111-2222-3333-444455556666',
  traceparent: TRACEPARENT,
  tracestate: 'vendor=abc,hoptrace=1',
  baggage: 'tenant.id=acme,order.id=42',
};
const toBuffers = (headers: Record<string, string>): Record<string, Buffer> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)]));
const bufferHeaders = toBuffers(stringHeaders);
const ctx = extractContext(stringHeaders, ROOT_CONTEXT);

const noop = (): void => undefined;

const BATCH = 100;
const held: Array<ContextSnapshot | undefined> = new Array(BATCH);

// Realistic per-message work for snapshots: a batch of messages is extracted and captured, held
// across the batch, then restored. Reported per message.
function batch(): void {
  for (let i = 0; i < BATCH; i++) held[i] = captureSnapshot(extractContext(bufferHeaders, ROOT_CONTEXT));
  for (let i = 0; i < BATCH; i++) restoreSnapshot(held[i], ROOT_CONTEXT);
}

// Issue 12.3: hostile 1 MB headers beside a valid traceparent. The slow one: a baggage of 262,144
// `k=%` members, each a malformed percent-escape (OpenTelemetry's parser tries, and fails, to decode
// every one of them).
const MB = 2 ** 20;
const HOSTILE: Array<{ name: string; headers: Record<string, string>; baselineOps: number }> = [
  {
    name: 'baggage of 262,144 `k=%,` members (1 MB, the slow one)',
    headers: { traceparent: TRACEPARENT, baggage: 'k=%,'.repeat(MB / 4) },
    baselineOps: 1,
  },
  {
    name: 'baggage with one 1 MB value',
    headers: { traceparent: TRACEPARENT, baggage: `k=${'v'.repeat(MB - 2)}` },
    baselineOps: 20,
  },
  {
    name: 'tracestate of 262,144 `a=b,` members (1 MB)',
    headers: { traceparent: TRACEPARENT, tracestate: 'a=b,'.repeat(MB / 4) },
    baselineOps: 200,
  },
  {
    name: 'traceparent of 1 MB',
    headers: { traceparent: `00-${'f'.repeat(MB - 3)}` },
    baselineOps: 20,
  },
];

// The baseline reads Kafka-style Buffer headers as a plain instrumentation does: decode, then parse
// (a fresh string per message, as on the wire; a reused string would let V8 reuse its work).
const decodingGetter: TextMapGetter<Record<string, Buffer>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key]?.toString('latin1'),
};

const hostileCases: Case[] = HOSTILE.flatMap(({ name, headers, baselineOps }): Case[] => {
  const buffers = toBuffers(headers);
  const baseline = `hostile ${name}: baseline propagation.extract (decoding getter)`;
  return [
    {
      name: baseline,
      fn: () => propagation.extract(ROOT_CONTEXT, buffers, decodingGetter),
      ops: baselineOps,
      warmupOps: baselineOps === 1 ? 0 : 1,
      // OpenTelemetry's parse of the slow one allocates about 200 MB per call.
      allocationSamplingInterval: 4096,
    },
    {
      name: `hostile ${name}: extractContext, string headers`,
      baseline,
      fn: () => extractContext(headers, ROOT_CONTEXT),
    },
    {
      name: `hostile ${name}: extractContext, Buffer headers`,
      baseline,
      fn: () => extractContext(buffers, ROOT_CONTEXT),
    },
  ];
});

const quick = process.argv.includes('--quick');
// The wrapper rows are compared with the handler alone by difference: a ratio to a no-op means nothing.
const pathCases = [...producerPathCases(), ...consumerPathCases(), ...amqpPathCases()];
const byDifference = new Set(pathCases.map((c) => c.name));
const results = await runCases(
  [
    {
      name: 'baseline: propagation.inject (plain setter)',
      fn: () => propagation.inject(ctx, {}, defaultTextMapSetter),
    },
    {
      name: 'injectContext',
      baseline: 'baseline: propagation.inject (plain setter)',
      fn: () => injectContext(ctx),
    },
    {
      name: 'baseline: propagation.extract, string headers (plain getter)',
      fn: () => propagation.extract(ROOT_CONTEXT, stringHeaders, defaultTextMapGetter),
    },
    {
      name: 'extractContext, string headers',
      baseline: 'baseline: propagation.extract, string headers (plain getter)',
      fn: () => extractContext(stringHeaders, ROOT_CONTEXT),
    },
    {
      name: 'extractContext, Buffer headers',
      baseline: 'baseline: propagation.extract, string headers (plain getter)',
      fn: () => extractContext(bufferHeaders, ROOT_CONTEXT),
    },
    {
      // What running a handler in a message's context costs any tracer: the context manager's switch.
      name: 'baseline: context.with (AsyncLocalStorage context manager)',
      fn: () => context.with(ctx, noop),
    },
    {
      name: 'captureSnapshot + restoreSnapshot',
      fn: () => restoreSnapshot(captureSnapshot(ctx), ROOT_CONTEXT),
    },
    {
      name: `batch of ${BATCH}: extract + capture, then restore`,
      fn: batch,
      ops: quick ? 200 : 2_000,
      warmupOps: 200,
      // 100 messages per call: a 64-byte interval gives V8 more samples than it can hand back.
      allocationSamplingInterval: 1024,
    },
    ...pathCases,
    ...hostileCases,
  ],
  quick
    ? { ops: 20_000, repetitions: 3, warmupOps: 5_000, allocationOps: 5_000 }
    : { ops: 200_000, repetitions: 7, warmupOps: 50_000, allocationOps: 20_000 },
);

// Batch cases did BATCH messages per op: report per message.
for (const r of results) {
  if (r.name.startsWith('batch of')) {
    for (const s of [r.nsPerOp, r.gcMsPerMillion]) {
      s.median /= BATCH;
      s.min /= BATCH;
      s.max /= BATCH;
    }
    r.bytesPerOp /= BATCH;
  }
}

const byName = new Map(results.map((r) => [r.name, r]));
const ratio = (r: CaseResult): string => {
  const base = r.baseline ? byName.get(r.baseline) : undefined;
  if (!base) return '';
  if (byDifference.has(r.name)) return `+${duration(r.nsPerOp.median - base.nsPerOp.median)}`;
  const x = r.nsPerOp.median / base.nsPerOp.median;
  return x >= 0.01 ? `${fmt(x, 2)}x` : `1/${Math.round(1 / x).toLocaleString('en-US')}`;
};
const bytes = (n: number): string =>
  Number.isNaN(n) ? 'not measured' : `${Math.round(n).toLocaleString('en-US')} B`;
// Allocation: the bytes, and for a case with a baseline what it allocates above it.
const allocated = (r: CaseResult): string => {
  const base = r.baseline ? byName.get(r.baseline) : undefined;
  const above = base ? r.bytesPerOp - base.bytesPerOp : undefined;
  return above === undefined || Number.isNaN(above)
    ? bytes(r.bytesPerOp)
    : `${bytes(r.bytesPerOp)} (${above < 0 ? '−' : '+'}${bytes(Math.abs(above))})`;
};
const rows = results.map(
  (r: CaseResult) =>
    `| ${r.name} | ${duration(r.nsPerOp.median)} | ${duration(r.nsPerOp.min)}–${duration(r.nsPerOp.max)} | ${ratio(r)} | ${fmt(
      r.gcMsPerMillion.median,
      2,
    )} | ${allocated(r)} |`,
);
const worst = HOSTILE[0]?.name ?? '';
const worstBase = byName.get(`hostile ${worst}: baseline propagation.extract (decoding getter)`);
const worstOurs = byName.get(`hostile ${worst}: extractContext, Buffer headers`);
// hoptrace must still continue the trace: the traceparent beside the refused header is read.
const keepsParent = HOSTILE.slice(0, 3).every(
  ({ headers }) =>
    trace.getSpanContext(extractContext(toBuffers(headers), ROOT_CONTEXT))?.traceId === TRACE_ID,
);
const worstLine =
  worstBase && worstOurs
    ? `Worst case (issue 12.3): a ${worst.replace(' (1 MB, the slow one)', '')} header (1 MB) costs OpenTelemetry's ` +
      `propagator ${duration(worstBase.nsPerOp.median)} of event-loop time per message; hoptrace refuses it by its size ` +
      `(W3C limits: baggage 8192 bytes / 64 members, tracestate 512 characters / 32 members, traceparent 512) in ` +
      `${duration(worstOurs.nsPerOp.median)} and ${keepsParent ? 'still reads' : '**does not read**'} the traceparent beside it.`
    : '';
const table = [
  `Machine: ${machine()}. ${quick ? 'Quick run' : 'Full run'}: median of the repetitions (interleaved), min–max beside it; ` +
    'GC is pause time per million operations (per million messages for batch rows). Hostile baselines run a few ' +
    'operations per repetition (the slow one: one). A repetition ends when the microtasks its calls queued have ' +
    "run. Heap is the bytes allocated per operation (per message for batch rows), collected or not, from V8's " +
    'sampling heap profiler over a separate pass after the timed ones (in brackets: above the baseline); it does ' +
    "not move with the machine's load.",
  '',
  '| case | time/op (median) | min–max | vs baseline (ratio, or + time above it) | GC ms / 1M ops | heap allocated / op |',
  '|---|---:|---:|---:|---:|---:|',
  ...rows,
  '',
  worstLine,
];
const markdown = [`### @hoptrace/core micro-benchmarks (${today()})`, '', ...table, ''].join('\n');
console.log(markdown);
const path = writeResults(
  quick ? 'core-quick' : 'core',
  markdown,
  { date: today(), machine: machine(), quick, results },
  quick ? 'scratch' : undefined,
);
console.log(`written to ${path}`);
if (!quick && !process.argv.includes('--no-readme')) {
  const file = path.split('/').pop();
  writeReadmeSection(
    'core',
    [`Latest full run: ${today()}. All figures: [results/${file}](results/${file}).`, '', ...table].join(
      '\n',
    ),
  );
}
