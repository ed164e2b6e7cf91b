// Broker benchmarks: raw clients, the raw clients carrying a traceparent (the header floor), hoptrace
// and the incumbent instrumentation under three samplers, on real brokers, in one run. Every variant
// runs in its own child process (the incumbents patch modules at require time), and the repetitions
// are interleaved (every variant once, in an order rotated each repetition) so that drift on a noisy
// machine hits every variant alike.
//
//   node --expose-gc bench/brokers/main.ts <brokers|SUITE> [--quick | --smoke] [--soak]
//        [--n=<messages>] [--reps=<repetitions>] [--warmup=<messages>] [--variants=a,b]
//        [--cpu-prof] [--no-readme]
//
// `./dev bench ...` builds the packages first and runs this. Suites: bench/suites/*.ts. See
// bench/README.md.
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResolvedBrokers, resolveAllBrokers } from '@hoptrace/test-kit/harness';
import { writeReadmeSection } from '../lib/readme.ts';
import { fmt, machine, today, writeResults } from '../lib/report.ts';
import { packageVersion } from '../lib/versions.ts';
import { loadSuites, suiteNames } from './registry.ts';
import {
  detailTable,
  OFF_MAX_ABOVE_FLOOR_MICROS,
  RATIO_MAX_VS_INCUMBENT,
  SOAK_FLAT_BYTES_PER_1K,
  type SuiteMeasurements,
  type SummaryRow,
  soakVerdict,
  summaryRows,
  summaryTable,
  tally,
} from './report.ts';
import type { BenchSuite, ChildReply, ChildTask, Measurement, Scenario, Variant } from './types.ts';
import { VARIANTS, variantKey } from './variants.ts';

const here = dirname(fileURLToPath(import.meta.url));
const childFile = join(here, 'child.ts');

/** Repetitions per mode (issue 16 asks for at least 7 in the measurement that counts). */
const REPS = { full: 7, quick: 3, smoke: 1 } as const;
/** Soak messages per suite (issue 16's heap target is over 1,000,000); `--quick` and `--smoke` soaks are shorter. */
const SOAK_N = 1_000_000;
const SOAK_SHORT = { quick: 200_000, smoke: 20_000 } as const;

type Mode = keyof typeof REPS;

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

/** The SDK every traced variant shares, and each suite's incumbent setup. */
const sdkLine = (suites: BenchSuite[]): string =>
  `SDK (every traced variant): @opentelemetry/sdk-trace-base ${packageVersion('@opentelemetry/sdk-trace-base')} BasicTracerProvider, ` +
  'one sampler per variant: AlwaysOn (`/on`), ParentBased(TraceIdRatioBased(0.1)) (`/ratio`, the production-like setting) ' +
  'or AlwaysOff (`/off`); BatchSpanProcessor with default settings, an exporter that ' +
  `serializes every batch with ProtobufTraceSerializer (@opentelemetry/otlp-transformer ${packageVersion('@opentelemetry/otlp-transformer')}) ` +
  'and discards the bytes, AsyncLocalStorageContextManager, W3C trace context + baggage propagators. Incumbents: ' +
  `${suites.map((s) => `${s.title}: ${s.incumbentSetup()}`).join('; ')}.`;

const LEGEND =
  '**msg/s**: messages from the first send to the last message processed. **CPU µs/msg**: process CPU (user + system; ' +
  'producer, consumer and exporter are one process) from the first send until the last span is exported, divided by N. ' +
  '**above raw**: CPU µs/msg above the raw client. **above floor**: CPU µs/msg above `raw+header`, the raw client ' +
  'carrying a W3C `traceparent` with every message (Kafka and RabbitMQ headers, BullMQ `opts.telemetry.metadata`) and no ' +
  'SDK: what propagation alone costs, paid by any tracer that propagates. **peak heap**: highest heap used (sampled every ' +
  '10 ms); **heap after GC**: after the run and a forced GC, clients still connected. **spans/msg**: spans exported per ' +
  'message. **OTLP KB/msg**: protobuf bytes exported per message.';

const TARGETS_TEXT =
  `Issue 16's targets (goals, never assertions): sampling off, hoptrace at most the header floor + ${OFF_MAX_ABOVE_FLOOR_MICROS} µs/msg; ` +
  `10% ParentBased sampling, hoptrace's CPU above the floor at most ${RATIO_MAX_VS_INCUMBENT}x the incumbent's above the floor; ` +
  "full sampling, hoptrace's CPU above raw at most 0.6x the incumbent's on Kafka eachMessage and on RabbitMQ, and 0.35x on " +
  'eachBatch in batch mode; heap flat over 1,000,000 messages per adapter (the soak). Every figure is a median of the ' +
  'repetitions of this one run.';

/** Parsed command line. */
interface Args {
  what: string;
  mode: Mode;
  soak: boolean;
  cpuProf: boolean;
  readme: boolean;
  n: number | undefined;
  reps: number | undefined;
  warmup: number | undefined;
  only: string[] | undefined;
  /** `--work=N`: µs of synthetic CPU work per message in the `raw+header` variant (calibration). */
  work: number | undefined;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string) => {
    const arg = argv.find((a) => a.startsWith(`--${name}=`));
    return arg === undefined ? undefined : arg.slice(name.length + 3);
  };
  const number = (name: string) => {
    const v = value(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${v}`);
    return n;
  };
  return {
    what: argv.find((a) => !a.startsWith('--')) ?? 'brokers',
    mode: argv.includes('--smoke') ? 'smoke' : argv.includes('--quick') ? 'quick' : 'full',
    soak: argv.includes('--soak'),
    cpuProf: argv.includes('--cpu-prof'),
    readme: !argv.includes('--no-readme'),
    n: number('n'),
    reps: number('reps'),
    warmup: number('warmup'),
    only: value('variants')?.split(','),
    work: number('work'),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const all = await loadSuites();
  const suites = args.what === 'brokers' ? all : all.filter((s) => s.name === args.what);
  if (suites.length === 0) {
    console.error(
      `usage: ./dev bench <brokers|${suiteNames().join('|')}> [--quick | --smoke] [--soak] [--n=N] [--reps=R] ` +
        '[--warmup=W] [--variants=raw,hoptrace/on,...] [--work=MICROS] [--cpu-prof] [--no-readme]',
    );
    process.exit(2);
  }
  const resolved: ResolvedBrokers = await resolveAllBrokers(
    (line) => console.log(`  ${line}`),
    [...new Set(suites.map((s) => s.broker))],
  );
  const summary = resolved.summary();
  console.log(summary);
  try {
    if (args.soak) await runSoak(args, suites, resolved, summary);
    else await runComparison(args, suites, resolved, summary);
  } finally {
    await resolved.stop();
  }
}

/** The top of a results file: title, machine, the brokers the harness found. */
function heading(title: string, brokerSummary: string): string[] {
  return [`# ${title}`, '', `Machine: ${machine()}.`, '', '```', brokerSummary, '```', ''];
}

/** The command that reproduces a run, for the results. */
function command(args: Args): string {
  const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
  return `./dev bench ${args.what}${flags.length ? ` ${flags.join(' ')}` : ''}`;
}

async function runComparison(
  args: Args,
  suites: BenchSuite[],
  resolved: ResolvedBrokers,
  brokerSummary: string,
): Promise<void> {
  const reps = args.reps ?? REPS[args.mode];
  const variants = VARIANTS.filter((v) => !args.only || args.only.includes(variantKey(v)));
  const nFor = (s: BenchSuite) => args.n ?? s.messages[args.mode];
  const warmupFor = (s: BenchSuite) => args.warmup ?? Math.max(50, Math.round(nFor(s) / 10));
  const started = Date.now();
  const measured: Record<string, SuiteMeasurements> = {};
  const apiVersions = new Set<string>();
  const total = suites.length * reps * variants.length;
  console.log(
    `${args.mode} run: ${suites.map((s) => s.name).join(', ')}; ${variants.length} variants x ${reps} repetitions = ` +
      `${total} child processes; messages per scenario: ${suites.map((s) => `${s.name} ${nFor(s)}`).join(', ')}` +
      (args.mode === 'full' && !args.n && !args.reps
        ? ' (kafka, amqp and bullmq alone: about 12 min on a quiet 2-core machine)'
        : ''),
  );
  let done = 0;
  for (const suite of suites) {
    const scenarios: Scenario[] = suite.scenarios();
    const bySuite: SuiteMeasurements = {};
    measured[suite.name] = bySuite;
    for (const s of scenarios) bySuite[s.id] = Object.fromEntries(variants.map((v) => [variantKey(v), []]));
    for (let rep = 0; rep < reps; rep++) {
      // Interleaved, and rotated each repetition so no variant always runs first or last.
      // A child runs the suite's scenarios one after another, and a scenario's cost moves with what
      // ran before it in the process (JIT and heap state): their order is rotated each repetition
      // too, so no scenario is always measured first or after the same others.
      const order = scenarios.map((_, j) => scenarios[(j + rep) % scenarios.length] as Scenario);
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[(i + rep) % variants.length] as Variant;
        const t = Date.now();
        const task: ChildTask = {
          suite: suite.name,
          variant,
          scenarios: order,
          n: nFor(suite),
          warmup: warmupFor(suite),
          endpoints: resolved.endpoints,
          ...(args.work ? { workMicros: args.work } : {}),
        };
        // One retry: a broker hiccup (a group join timing out) should not throw away a long run.
        const { results, apiVersion } = await runChild(task, args.cpuProf).catch((error: unknown) => {
          console.warn(`[${suite.name}] ${variantKey(variant)} failed, retrying once: ${String(error)}`);
          return runChild(task, args.cpuProf);
        });
        if (apiVersion) apiVersions.add(apiVersion);
        for (const m of results) bySuite[m.scenario]?.[variantKey(variant)]?.push(m);
        done++;
        const elapsed = (Date.now() - started) / 1000;
        const eta = (elapsed / done) * (total - done);
        // In the suite's order, whatever order the child ran them in.
        const line = scenarios
          .flatMap((s) => results.filter((m) => m.scenario === s.id))
          .map(
            (m) =>
              `${fmt((m.n / m.elapsedMs) * 1000, 0)}/s ${fmt(m.cpuMicros / m.n, 1)}µs ${fmt(m.spans / m.n, 2)}sp`,
          )
          .join(' | ');
        console.log(
          `[${suite.name} rep ${rep + 1}/${reps}] ${variantKey(variant).padEnd(15)} ${((Date.now() - t) / 1000).toFixed(1)}s ` +
            `(${done}/${total}, ~${fmt(eta / 60, 1)} min left)  ${line}`,
        );
      }
    }
  }
  const minutes = (Date.now() - started) / 60_000;

  const rows: SummaryRow[] = suites.flatMap((s) =>
    summaryRows({ title: s.title, incumbent: s.incumbent, scenarios: s.scenarios() }, measured[s.name] ?? {}),
  );
  const counts = tally(rows);
  const runLine =
    `Command: \`${command(args)}\` (${args.mode} run). Repetitions: ${reps}, interleaved (each repetition runs every variant ` +
    "once, each in its own child process, in an order rotated by one each repetition; a child runs the suite's " +
    'scenarios one after another, in an order also rotated by one each repetition). Messages per scenario and ' +
    `repetition: ${suites.map((s) => `${s.name} ${nFor(s).toLocaleString('en-US')}`).join(', ')}, each scenario after an ` +
    `unmeasured warm-up of ${suites.map((s) => `${warmupFor(s).toLocaleString('en-US')}`).join(' / ')} messages on the same ` +
    `connections. Wall time of the whole run: ${fmt(minutes, 1)} min. @opentelemetry/api loaded by the children: ` +
    `${[...apiVersions].join('; ') || '(none)'}.` +
    (args.work
      ? ` **Calibration run (\`--work=${args.work}\`): the \`raw+header\` variant also does ${args.work} µs of ` +
        'synthetic CPU work per message (half when it is sent, half when it is processed), so its figures are not ' +
        'the header floor; the results go to `results/scratch/`.**'
      : '');
  const summaryMd = [
    TARGETS_TEXT,
    '',
    ...(rows.length
      ? [
          ...summaryTable(rows),
          '',
          `Targets: ${counts.met} met, ${counts.missed} missed (${counts.none} rows without a target). Heap over the soak: ` +
            'the soak section.',
        ]
      : ['(No summary: a partial run, `--variants=`.)']),
  ];
  const md: string[] = [
    ...heading(`hoptrace broker benchmarks (${today()}, ${args.mode} run)`, brokerSummary),
    runLine,
    '',
    sdkLine(suites),
    '',
    '## Summary: hoptrace against the incumbent, above the header floor',
    '',
    ...summaryMd,
    '',
    LEGEND,
    '',
  ];
  for (const suite of suites) {
    md.push(`## ${suite.title}: raw, header floor, hoptrace, ${suite.incumbent}`, '');
    md.push(
      ...detailTable(
        { title: suite.title, incumbent: suite.incumbent, scenarios: suite.scenarios() },
        measured[suite.name] ?? {},
      ),
      '',
    );
  }
  const markdown = md.join('\n');
  console.log(`\n${markdown}`);
  const name = `${args.what}${args.mode === 'full' ? '' : `-${args.mode}`}${args.work ? `-work-${args.work}` : ''}`;
  const path = writeResults(
    name,
    markdown,
    {
      date: today(),
      machine: machine(),
      brokers: brokerSummary,
      command: command(args),
      mode: args.mode,
      repetitions: reps,
      minutes,
      n: Object.fromEntries(suites.map((s) => [s.name, nFor(s)])),
      warmup: Object.fromEntries(suites.map((s) => [s.name, warmupFor(s)])),
      sdk: sdkLine(suites),
      apiVersions: [...apiVersions],
      summary: rows,
      results: measured,
    },
    // Partial and calibration runs are no full run's results: scratch, as quick runs.
    args.mode === 'full' && !args.work && !args.only ? undefined : 'scratch',
  );
  console.log(`written to ${path}`);
  if (
    args.readme &&
    !args.work &&
    args.mode === 'full' &&
    args.what === 'brokers' &&
    !args.only &&
    reps >= REPS.full &&
    rows.length
  ) {
    const readme = writeReadmeSection(
      'brokers',
      [
        `Latest full run: ${today()}, ${machine()}; \`${command(args)}\`, ${reps} interleaved repetitions, ` +
          `${fmt(minutes, 1)} min. All figures: [results/${path.split('/').pop()}](results/${path.split('/').pop()}).`,
        '',
        ...summaryMd,
      ].join('\n'),
    );
    console.log(`summary written to ${readme}`);
  }
}

async function runSoak(
  args: Args,
  suites: BenchSuite[],
  resolved: ResolvedBrokers,
  brokerSummary: string,
): Promise<void> {
  const n = args.n ?? (args.mode === 'full' ? SOAK_N : SOAK_SHORT[args.mode]);
  const every = Math.max(1, Math.round(n / 20));
  const md: string[] = [
    ...heading(`hoptrace soak (${today()})`, brokerSummary),
    `Command: \`${command(args)}\`. ${n.toLocaleString('en-US')} messages through each hoptrace adapter (AlwaysOn), heap used ` +
      `sampled after a forced GC every ${every.toLocaleString('en-US')} messages (from the consumer, while the run goes on; at ` +
      'most the flow-control window of messages is in flight). Slope: least squares of heap over messages, in bytes per ' +
      '1,000 messages, over all samples but the first (taken while warming up) and over the second half only. **Flat** ' +
      `(issue 16's heap target): both slopes below ${SOAK_FLAT_BYTES_PER_1K} B per 1,000 messages (under 1 MiB per ` +
      'million messages); a leak shows as a steady positive slope, a level (caches, JIT, buffers) does not.',
    '',
    sdkLine(suites),
    '',
  ];
  const verdicts: string[] = [
    '| adapter, scenario | messages | msg/s | slope, all (B / 1k msgs) | slope, second half | heap after GC at the end MB | heap flat |',
    '|---|---:|---:|---:|---:|---:|:---:|',
  ];
  const json: Record<string, unknown> = {};
  for (const suite of suites) {
    const scenario = suite.scenarios().find((s) => s.id === suite.soakScenario);
    if (!scenario) throw new Error(`suite ${suite.name}: no soak scenario ${suite.soakScenario}`);
    console.log(`[soak ${suite.name}] ${scenario.label}, ${n} messages ...`);
    const t = Date.now();
    const { results } = await runChild(
      {
        suite: suite.name,
        variant: { library: 'hoptrace', sampling: 'on' },
        scenarios: [scenario],
        n,
        warmup: 0,
        soakEvery: every,
        endpoints: resolved.endpoints,
      },
      args.cpuProf,
    );
    const m = results[0] as Measurement;
    const samples = m.heapSamples ?? [];
    const v = soakVerdict(samples);
    console.log(
      `[soak ${suite.name}] done in ${((Date.now() - t) / 1000).toFixed(0)} s, slope ${fmt(v.slopeAll, 1)} B/1k msgs`,
    );
    verdicts.push(
      `| ${suite.title}: ${scenario.label} | ${m.n.toLocaleString('en-US')} | ${fmt((m.n / m.elapsedMs) * 1000, 0)} | ${fmt(
        v.slopeAll,
        1,
      )} | ${fmt(v.slopeSecondHalf, 1)} | ${fmt(m.heapAfterGc / 2 ** 20, 1)} | ${v.flat ? '✓ met' : '✗ missed'} |`,
    );
    md.push(`## ${suite.title}: ${scenario.label}`, '');
    md.push(
      `${m.n.toLocaleString('en-US')} messages in ${fmt(m.elapsedMs / 1000, 1)} s (${fmt((m.n / m.elapsedMs) * 1000, 0)} msg/s), ` +
        `CPU ${fmt(m.cpuMicros / m.n, 1)} µs/msg, ${fmt(m.spans / m.n, 2)} spans/msg, peak heap ${fmt(m.peakHeap / 2 ** 20, 1)} MB, ` +
        `heap after GC at the end ${fmt(m.heapAfterGc / 2 ** 20, 1)} MB.`,
      '',
      `**Slope: ${fmt(v.slopeAll, 1)} bytes per 1,000 messages over all samples but the first; ${fmt(v.slopeSecondHalf, 1)} over ` +
        `the second half: ${v.flat ? 'flat' : 'NOT flat'}.**`,
      '',
      '| messages | heap used after GC (MB) |',
      '|---:|---:|',
      ...samples.map(([x, y]) => `| ${x.toLocaleString('en-US')} | ${fmt(y / 2 ** 20, 2)} |`),
      '',
    );
    json[suite.name] = {
      scenario: scenario.id,
      measurement: m,
      slopeBytesPer1k: v.slopeAll,
      slopeSecondHalfBytesPer1k: v.slopeSecondHalf,
      flat: v.flat,
    };
  }
  md.splice(md.indexOf(sdkLine(suites)) + 2, 0, '## Heap over the soak', '', ...verdicts, '');
  const markdown = md.join('\n');
  console.log(`\n${markdown}`);
  const path = writeResults(
    `${args.what}-soak`,
    markdown,
    {
      date: today(),
      machine: machine(),
      brokers: brokerSummary,
      command: command(args),
      n,
      every,
      results: json,
    },
    n < SOAK_N ? 'scratch' : undefined,
  );
  console.log(`written to ${path}`);
  if (args.readme && args.what === 'brokers' && n >= SOAK_N) {
    const file = path.split('/').pop();
    writeReadmeSection(
      'soak',
      [
        `Latest soak: ${today()}, ${machine()}; \`${command(args)}\`. All figures: [results/${file}](results/${file}).`,
        '',
        ...verdicts,
      ].join('\n'),
    );
  }
}

await main();
