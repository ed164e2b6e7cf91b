// Broker benchmarks: raw clients vs hoptrace vs the incumbent instrumentation, on real brokers, in
// one run. Every variant runs in its own child process (the incumbents patch modules at require
// time), and the repetitions are interleaved (raw, hoptrace, incumbent, ... again) so that drift on a
// noisy machine hits every variant alike.
//
//   node --expose-gc bench/brokers/main.ts <kafka|amqp|bullmq|brokers> [--quick | --soak]
//        [--n=<messages>] [--reps=<repetitions>] [--cpu-prof]
//
// `./dev bench ...` builds the packages first and runs this. See bench/README.md.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrokerKind, type ResolvedBrokers, resolveAllBrokers } from '@hoptrace/test-kit/harness';
import { type Stat, stat } from '../lib/measure.ts';
import { fmt, machine, today, writeResults } from '../lib/report.ts';
import { amqpScenarios } from './amqp.ts';
import { bullmqScenarios } from './bullmq.ts';
import { kafkaScenarios } from './kafka.ts';
import type { BrokerName, ChildReply, ChildTask, Measurement, Scenario, Variant } from './types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const childFile = join(here, 'child.ts');

const BROKER_KIND: Record<BrokerName, BrokerKind> = { kafka: 'kafka', amqp: 'rabbitmq', bullmq: 'redis' };
const TITLE: Record<BrokerName, string> = {
  kafka: 'Kafka (kafkajs 2.2.4)',
  amqp: 'RabbitMQ (amqplib 2.3.1)',
  bullmq: 'BullMQ 6.7.0 (Redis)',
};
const INCUMBENT: Record<BrokerName, string> = {
  kafka: '@opentelemetry/instrumentation-kafkajs',
  amqp: '@opentelemetry/instrumentation-amqplib',
  bullmq: 'bullmq-otel',
};
/** Messages per scenario and repetition: full run, quick run. Chosen so `brokers` takes ~12 min. */
const N: Record<BrokerName, { full: number; quick: number }> = {
  kafka: { full: 50_000, quick: 5_000 },
  amqp: { full: 10_000, quick: 2_000 },
  bullmq: { full: 20_000, quick: 2_000 },
};
/** The scenario a soak run uses. */
const SOAK_SCENARIO: Record<BrokerName, string> = {
  kafka: 'kafka-eachMessage-100b',
  amqp: 'amqp-confirm-prefetch-100',
  bullmq: 'bullmq-concurrency-10',
};
const SCENARIOS: Record<BrokerName, () => Scenario[]> = {
  kafka: kafkaScenarios,
  amqp: amqpScenarios,
  bullmq: bullmqScenarios,
};
const VARIANTS: Variant[] = [
  { library: 'raw', sampling: 'none' },
  { library: 'hoptrace', sampling: 'on' },
  { library: 'incumbent', sampling: 'on' },
  { library: 'hoptrace', sampling: 'off' },
  { library: 'incumbent', sampling: 'off' },
];

/** The variants of one broker: Kafka adds `raw+header`, the cost of the propagation header alone. */
function variantsOf(broker: BrokerName): Variant[] {
  if (broker !== 'kafka') return VARIANTS;
  return [VARIANTS[0] as Variant, { library: 'raw+header', sampling: 'none' }, ...VARIANTS.slice(1)];
}

/** A variant's key in the results, e.g. `hoptrace/on`. */
function key(v: Variant): string {
  return v.sampling === 'none' ? v.library : `${v.library}/${v.sampling}`;
}

/** Runs one child process and returns what it measured. */
function runChild(
  task: ChildTask,
  cpuProf: boolean,
): Promise<{ results: Measurement[]; apiVersion: string }> {
  const execArgv = ['--expose-gc', '--disable-warning=TimeoutNegativeWarning'];
  if (cpuProf) execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(here, '..', 'results', 'profiles')}`);
  return new Promise((resolve, reject) => {
    const child = fork(childFile, [JSON.stringify(task)], {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let reply: ChildReply | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30 * 60_000);
    child.on('message', (m) => {
      reply = m as ChildReply;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (reply?.ok) resolve({ results: reply.results, apiVersion: reply.apiVersion });
      else reject(new Error(reply && !reply.ok ? reply.error : `child exited with ${signal ?? code}`));
    });
  });
}

interface Figures {
  msgPerSec: Stat;
  cpuMicrosPerMsg: Stat;
  peakHeapMb: Stat;
  heapAfterGcMb: Stat;
  spansPerMsg: Stat;
  kbExportedPerMsg: Stat;
}

function figures(ms: Measurement[]): Figures {
  const mb = (b: number) => b / 2 ** 20;
  return {
    msgPerSec: stat(ms.map((m) => (m.n / m.elapsedMs) * 1000)),
    cpuMicrosPerMsg: stat(ms.map((m) => m.cpuMicros / m.n)),
    peakHeapMb: stat(ms.map((m) => mb(m.peakHeap))),
    heapAfterGcMb: stat(ms.map((m) => mb(m.heapAfterGc))),
    spansPerMsg: stat(ms.map((m) => m.spans / m.n)),
    kbExportedPerMsg: stat(ms.map((m) => m.exportedBytes / m.n / 1024)),
  };
}

const range = (s: Stat, d: number) => `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
const pct = (a: number, b: number) => (b > 0 ? `${fmt((a / b) * 100, 0)}%` : '–');

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

function versionOf(pkg: string): string {
  try {
    const path = join(here, '..', 'node_modules', pkg, 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

const SDK_LINE = (): string =>
  `SDK (every traced variant): @opentelemetry/sdk-trace-base ${versionOf('@opentelemetry/sdk-trace-base')} BasicTracerProvider, ` +
  `AlwaysOn sampler (\`/on\`) or AlwaysOff (\`/off\`), BatchSpanProcessor with default settings, an exporter that ` +
  `serializes every batch with ProtobufTraceSerializer (@opentelemetry/otlp-transformer ${versionOf('@opentelemetry/otlp-transformer')}) ` +
  'and discards the bytes, AsyncLocalStorageContextManager, W3C trace context + baggage propagators. ' +
  `Incumbents: @opentelemetry/instrumentation-kafkajs ${versionOf('@opentelemetry/instrumentation-kafkajs')}, ` +
  `@opentelemetry/instrumentation-amqplib ${versionOf('@opentelemetry/instrumentation-amqplib')} ` +
  `(@opentelemetry/instrumentation ${versionOf('@opentelemetry/instrumentation')}, registered before the client is required), ` +
  `bullmq-otel ${versionOf('bullmq-otel')} (\`telemetry\` option of Queue and Worker).`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const what = args.find((a) => !a.startsWith('--')) ?? 'brokers';
  const quick = args.includes('--quick');
  const soak = args.includes('--soak');
  const cpuProf = args.includes('--cpu-prof');
  const nArg = args.find((a) => a.startsWith('--n='));
  const repsArg = args.find((a) => a.startsWith('--reps='));
  const warmupArg = args.find((a) => a.startsWith('--warmup='));
  const only = args
    .find((a) => a.startsWith('--variants='))
    ?.slice(11)
    .split(',');
  const brokers: BrokerName[] =
    what === 'brokers'
      ? ['kafka', 'amqp', 'bullmq']
      : (['kafka', 'amqp', 'bullmq'] as const).filter((b) => b === what);
  if (brokers.length === 0) {
    console.error(
      'usage: ./dev bench <kafka|amqp|bullmq|brokers> [--quick | --soak] [--n=N] [--reps=R] [--cpu-prof]',
    );
    process.exit(2);
  }

  const resolved: ResolvedBrokers = await resolveAllBrokers(
    (line) => console.log(`  ${line}`),
    brokers.map((b) => BROKER_KIND[b]),
  );
  const summary = resolved.summary();
  console.log(summary);
  try {
    if (soak)
      await runSoak(what, brokers, resolved, summary, nArg ? Number(nArg.slice(4)) : 1_000_000, cpuProf);
    else {
      const reps = repsArg ? Number(repsArg.slice(7)) : quick ? 3 : 5;
      const variants = [...VARIANTS, { library: 'raw+header', sampling: 'none' } as Variant].filter(
        (v) => !only || only.includes(key(v)),
      );
      await runComparison(what, brokers, resolved, summary, {
        quick,
        reps,
        n: nArg ? Number(nArg.slice(4)) : undefined,
        warmup: warmupArg ? Number(warmupArg.slice(9)) : undefined,
        cpuProf,
        variants,
      });
    }
  } finally {
    await resolved.stop();
  }
}

async function runComparison(
  what: string,
  brokers: BrokerName[],
  resolved: ResolvedBrokers,
  summary: string,
  options: {
    quick: boolean;
    reps: number;
    n: number | undefined;
    warmup: number | undefined;
    cpuProf: boolean;
    variants: Variant[];
  },
): Promise<void> {
  const { quick, reps, n: nOverride, cpuProf, variants, warmup: warmupOverride } = options;
  const started = Date.now();
  // results[broker][scenario][variant] = one Measurement per repetition
  const results: Record<string, Record<string, Record<string, Measurement[]>>> = {};
  const apiVersions = new Set<string>();
  const nFor = (b: BrokerName) => nOverride ?? (quick ? N[b].quick : N[b].full);
  for (const broker of brokers) {
    results[broker] = {};
    const scenarios = SCENARIOS[broker]();
    const brokerVariants = variantsOf(broker).filter((v) => variants.some((w) => key(w) === key(v)));
    for (const s of scenarios) {
      const row: Record<string, Measurement[]> = {};
      for (const v of brokerVariants) row[key(v)] = [];
      (results[broker] as Record<string, Record<string, Measurement[]>>)[s.id] = row;
    }
    for (let rep = 0; rep < reps; rep++) {
      // Interleaved, and rotated each repetition so no variant always runs first or last.
      for (let i = 0; i < brokerVariants.length; i++) {
        const variant = brokerVariants[(i + rep) % brokerVariants.length] as Variant;
        const n = nFor(broker);
        const t = Date.now();
        const { results: measured, apiVersion } = await runChild(
          {
            broker,
            variant,
            scenarios,
            n,
            warmup: warmupOverride ?? Math.round(n / 5),
            endpoints: resolved.endpoints,
          },
          cpuProf,
        );
        if (apiVersion) apiVersions.add(apiVersion);
        for (const m of measured) results[broker]?.[m.scenario]?.[key(variant)]?.push(m);
        const line = measured
          .map(
            (m) =>
              `${m.scenario} ${fmt((m.n / m.elapsedMs) * 1000, 0)}/s ${fmt(m.cpuMicros / m.n, 1)}µs ${fmt(m.spans / m.n, 2)}sp`,
          )
          .join(' | ');
        console.log(
          `[${broker} rep ${rep + 1}/${reps}] ${key(variant).padEnd(14)} ${((Date.now() - t) / 1000).toFixed(1)}s  ${line}`,
        );
      }
    }
  }

  const md: string[] = [];
  md.push(`# hoptrace broker benchmarks (${today()}${quick ? ', quick run' : ''})`, '');
  md.push(`Machine: ${machine()}.`, '');
  md.push('```', summary, '```', '');
  md.push(
    `Command: \`./dev bench ${what}${quick ? ' --quick' : ''}\`. Repetitions: ${reps}, interleaved (each repetition runs every variant ` +
      'once, in a rotated order, each in its own child process). Each figure is the median with min–max in brackets. ' +
      `Messages per scenario and repetition: ${brokers.map((b) => `${b} ${nFor(b).toLocaleString('en-US')}`).join(', ')} ` +
      '(plus an unmeasured warm-up run of the first scenario in each child). ' +
      `Wall time of the whole run: ${fmt((Date.now() - started) / 60_000, 1)} min. ` +
      `@opentelemetry/api loaded by the children: ${[...apiVersions].join('; ')}.`,
    '',
  );
  md.push(SDK_LINE(), '');
  md.push(
    '**msg/s**: messages from the first send to the last message processed. **CPU µs/msg**: process CPU (user + system, ' +
      'producer, consumer and exporter are one process) from the first send until the last span is exported, divided by N. ' +
      '**overhead**: CPU µs/msg above raw. **peak heap**: highest heap used (sampled every 10 ms); **heap after GC**: after ' +
      'the run and a forced GC, clients still connected. **spans/msg**: spans exported per message. ' +
      '**raw+header** (Kafka): the raw client sending a W3C `traceparent` header with every message, no SDK: what ' +
      'propagation alone costs in kafkajs, the floor for any tracer that propagates through headers.',
    '',
  );
  const summaryRows: string[] = [];
  for (const broker of brokers) {
    md.push(`## ${TITLE[broker]}: raw vs hoptrace vs ${INCUMBENT[broker]}`, '');
    md.push(
      '| scenario | variant | msg/s | vs raw | vs incumbent | CPU µs/msg | overhead µs/msg | overhead vs incumbent | peak heap MB | heap after GC MB | spans/msg | OTLP KB/msg |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const s of SCENARIOS[broker]()) {
      const row = results[broker]?.[s.id] ?? {};
      const f: Record<string, Figures> = {};
      const all = variantsOf(broker);
      if (all.some((v) => !row[key(v)]?.length)) continue; // a partial run (--variants=): no table
      for (const v of all) f[key(v)] = figures(row[key(v)] ?? []);
      const raw = f.raw as Figures;
      for (const v of all) {
        const k = key(v);
        const x = f[k] as Figures;
        const incumbent = v.library === 'hoptrace' ? f[`incumbent/${v.sampling}`] : undefined;
        const overhead = x.cpuMicrosPerMsg.median - raw.cpuMicrosPerMsg.median;
        const incOverhead = incumbent ? incumbent.cpuMicrosPerMsg.median - raw.cpuMicrosPerMsg.median : 0;
        const noSpans = v.library === 'incumbent' && v.sampling === 'on' && x.spansPerMsg.median === 0;
        md.push(
          `| ${s.label} | ${k === 'incumbent' ? k : k.replace('incumbent', INCUMBENT[broker])}${noSpans ? ' **(recorded no spans!)**' : ''} | ${range(x.msgPerSec, 0)} | ${
            k === 'raw' ? '' : pct(x.msgPerSec.median, raw.msgPerSec.median)
          } | ${incumbent ? pct(x.msgPerSec.median, incumbent.msgPerSec.median) : ''} | ${range(x.cpuMicrosPerMsg, 1)} | ${
            k === 'raw' ? '' : fmt(overhead, 1)
          } | ${incumbent && incOverhead > 0 ? pct(overhead, incOverhead) : ''} | ${range(x.peakHeapMb, 1)} | ${range(x.heapAfterGcMb, 1)} | ${fmt(
            x.spansPerMsg.median,
            2,
          )} | ${fmt(x.kbExportedPerMsg.median, 2)} |`,
        );
      }
      const on = f['hoptrace/on'] as Figures;
      const off = f['hoptrace/off'] as Figures;
      const incOn = f['incumbent/on'] as Figures;
      const ovh = on.cpuMicrosPerMsg.median - raw.cpuMicrosPerMsg.median;
      const incOvh = incOn.cpuMicrosPerMsg.median - raw.cpuMicrosPerMsg.median;
      const onPct = (on.msgPerSec.median / raw.msgPerSec.median) * 100;
      const offPct = (off.msgPerSec.median / raw.msgPerSec.median) * 100;
      summaryRows.push(
        `| ${TITLE[broker]}: ${s.label} | ${fmt(onPct, 0)}% ${onPct >= 90 ? '✓' : '✗'} | ${fmt(offPct, 0)}%${
          broker === 'kafka' ? (offPct >= 98 ? ' ✓' : ' ✗') : ''
        } | ${fmt(ovh, 1)} | ${fmt(incOvh, 1)} | ${incOvh > 0 ? `${fmt((ovh / incOvh) * 100, 0)}% ${ovh <= incOvh / 2 ? '✓' : '✗'}` : '–'} |`,
      );
    }
    md.push('');
  }
  md.push(
    '## Against the targets (goals, not assertions)',
    '',
    'Targets: hoptrace keeps ≥ 90% of raw throughput at full sampling (≥ 98% with sampling off for Kafka); its CPU ' +
      "overhead per message is at most half of the incumbent's. Medians of the table above.",
    '',
    '| scenario | hoptrace/on msg/s vs raw | hoptrace/off msg/s vs raw | hoptrace/on overhead µs/msg | incumbent/on overhead µs/msg | hoptrace overhead / incumbent overhead |',
    '|---|---:|---:|---:|---:|---:|',
    ...summaryRows,
    '',
  );
  const markdown = md.join('\n');
  console.log(`\n${markdown}`);
  const name = `${what}${quick ? '-quick' : ''}`;
  const path = writeResults(name, markdown, {
    date: today(),
    machine: machine(),
    brokers: summary,
    quick,
    repetitions: reps,
    n: Object.fromEntries(brokers.map((b) => [b, nFor(b)])),
    sdk: SDK_LINE(),
    apiVersions: [...apiVersions],
    results,
  });
  console.log(`written to ${path}`);
}

async function runSoak(
  what: string,
  brokers: BrokerName[],
  resolved: ResolvedBrokers,
  summary: string,
  n: number,
  cpuProf: boolean,
): Promise<void> {
  const every = Math.max(1, Math.round(n / 20));
  const md: string[] = [
    `# hoptrace soak (${today()})`,
    '',
    `Machine: ${machine()}.`,
    '',
    '```',
    summary,
    '```',
    '',
  ];
  md.push(
    `Command: \`./dev bench ${what} --soak${n !== 1_000_000 ? ` --n=${n}` : ''}\`. ${n.toLocaleString('en-US')} messages through each ` +
      `adapter (hoptrace, sampling on), heap used sampled after a forced GC every ${every.toLocaleString('en-US')} messages (from the ` +
      'consumer, while the run goes on; at most the flow-control window of messages is in flight). Slope: least squares of ' +
      'heap over messages, in bytes per 1,000 messages, over all samples but the first (taken while warming up) and over ' +
      'the second half only (a leak shows as a steady positive slope; a level does not).',
    '',
    SDK_LINE(),
    '',
  );
  const json: Record<string, unknown> = {};
  for (const broker of brokers) {
    const scenario = SCENARIOS[broker]().find((s) => s.id === SOAK_SCENARIO[broker]) as Scenario;
    console.log(`[soak ${broker}] ${scenario.label}, ${n} messages ...`);
    const t = Date.now();
    const { results: measured } = await runChild(
      {
        broker,
        variant: { library: 'hoptrace', sampling: 'on' },
        scenarios: [scenario],
        n,
        warmup: 0,
        soakEvery: every,
        endpoints: resolved.endpoints,
      },
      cpuProf,
    );
    const m = measured[0] as Measurement;
    const samples = m.heapSamples ?? [];
    const all = slope(samples.slice(1)) * 1000;
    const secondHalf = slope(samples.slice(Math.floor(samples.length / 2))) * 1000;
    console.log(
      `[soak ${broker}] done in ${((Date.now() - t) / 1000).toFixed(0)} s, slope ${fmt(all, 1)} B/1k msgs`,
    );
    md.push(`## ${TITLE[broker]}: ${scenario.label}`, '');
    md.push(
      `${m.n.toLocaleString('en-US')} messages in ${fmt(m.elapsedMs / 1000, 1)} s (${fmt((m.n / m.elapsedMs) * 1000, 0)} msg/s), ` +
        `CPU ${fmt(m.cpuMicros / m.n, 1)} µs/msg, ${fmt(m.spans / m.n, 2)} spans/msg, peak heap ${fmt(m.peakHeap / 2 ** 20, 1)} MB, ` +
        `heap after GC at the end ${fmt(m.heapAfterGc / 2 ** 20, 1)} MB.`,
      '',
      `**Slope: ${fmt(all, 1)} bytes per 1,000 messages over all samples but the first; ${fmt(secondHalf, 1)} over the second half.**`,
      '',
      '| messages | heap used after GC (MB) |',
      '|---:|---:|',
      ...samples.map(([x, y]) => `| ${x.toLocaleString('en-US')} | ${fmt(y / 2 ** 20, 2)} |`),
      '',
    );
    json[broker] = {
      scenario: scenario.id,
      measurement: m,
      slopeBytesPer1k: all,
      slopeSecondHalfBytesPer1k: secondHalf,
    };
  }
  const markdown = md.join('\n');
  console.log(`\n${markdown}`);
  const path = writeResults(`${what}-soak`, markdown, {
    date: today(),
    machine: machine(),
    brokers: summary,
    n,
    every,
    results: json,
  });
  console.log(`written to ${path}`);
}

await main();
