// Micro-benchmarks for @hoptrace/core's per-message work, each beside its baseline in the same run:
// inject, extract from string and Buffer headers, and snapshot capture/restore with and without the
// (the pool it once compared was dropped: it lost). Run: `./dev bench core` (add --quick for a short run).

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
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { type CaseResult, runCases } from '../lib/measure.ts';
import { fmt, machine, today, writeResults } from '../lib/report.ts';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
);

const stringHeaders: Record<string, string> = {
  'content-type': 'application/json',
  'x-request-id': 'c0ffee00-1111-2222-3333-444455556666',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'vendor=abc,hoptrace=1',
  baggage: 'tenant.id=acme,order.id=42',
};
const bufferHeaders: Record<string, Buffer> = Object.fromEntries(
  Object.entries(stringHeaders).map(([k, v]) => [k, Buffer.from(v)]),
);
const ctx = extractContext(stringHeaders, ROOT_CONTEXT);

const BATCH = 100;
const held: Array<ContextSnapshot | undefined> = new Array(BATCH);

// Realistic per-message work for snapshots: a batch of messages is extracted and captured, held
// across the batch, then restored. Reported per message.
function batchUnpooled(): void {
  for (let i = 0; i < BATCH; i++) held[i] = captureSnapshot(extractContext(bufferHeaders, ROOT_CONTEXT));
  for (let i = 0; i < BATCH; i++) restoreSnapshot(held[i], ROOT_CONTEXT);
}

const quick = process.argv.includes('--quick');
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
      name: 'captureSnapshot + restoreSnapshot',
      fn: () => restoreSnapshot(captureSnapshot(ctx), ROOT_CONTEXT),
    },
    { name: `batch of ${BATCH}: extract + capture, then restore`, fn: batchUnpooled },
  ],
  quick
    ? { ops: 20_000, repetitions: 3, warmupOps: 5_000 }
    : { ops: 200_000, repetitions: 7, warmupOps: 50_000 },
);

// Batch cases did BATCH messages per op: report per message.
for (const r of results) {
  if (r.name.startsWith('batch of')) {
    for (const s of [r.nsPerOp, r.gcMsPerMillion]) {
      s.median /= BATCH;
      s.min /= BATCH;
      s.max /= BATCH;
    }
  }
}

const byName = new Map(results.map((r) => [r.name, r]));
const rows = results.map((r: CaseResult) => {
  const base = r.baseline ? byName.get(r.baseline) : undefined;
  const ratio = base ? `${fmt(r.nsPerOp.median / base.nsPerOp.median, 2)}x` : '';
  return `| ${r.name} | ${fmt(r.nsPerOp.median, 0)} | ${fmt(r.nsPerOp.min, 0)}–${fmt(r.nsPerOp.max, 0)} | ${ratio} | ${fmt(r.gcMsPerMillion.median, 2)} |`;
});
const markdown = [
  `### @hoptrace/core micro-benchmarks (${today()})`,
  '',
  `Machine: ${machine()}. ${quick ? 'Quick run' : 'Full run'}: median of the repetitions, min–max beside it; GC is pause time per million operations (per million messages for batch rows).`,
  '',
  '| case | ns/op (median) | min–max | vs baseline | GC ms / 1M ops |',
  '|---|---:|---:|---:|---:|',
  ...rows,
  '',
].join('\n');
console.log(markdown);
const path = writeResults('core', markdown, { date: today(), machine: machine(), quick, results });
console.log(`written to ${path}`);
