// The command line of `./dev bench`: what to run and which flags, checked before anything starts (a
// full run takes about half an hour and rewrites results and the README table, so a typo or `--help`
// must not start one).

/** The usage text `./dev bench --help` prints. */
export const USAGE = [
  'usage: ./dev bench [core | brokers | SUITE | all | check] [flags]',
  '  core      micro-benchmarks of the core paths (the default)',
  '  brokers   every suite on real brokers, side by side with the raw clients and the incumbents',
  '  SUITE     one suite of bench/suites/ (kafka, amqp, bullmq, platformatic-kafka)',
  '  all       brokers, then the soak, then core',
  '  check     typecheck, lint and unit-test bench/ itself',
  'flags: --quick | --smoke   shorter runs',
  '       --soak              the heap soak instead of the comparison',
  '       --n=N --reps=R --warmup=W --variants=a,b --work=MICROS',
  '       --cpu-prof          CPU profiles of the children',
  '       --no-readme         leave the README table alone',
  'See bench/README.md.',
].join('\n');

const SWITCHES = new Set(['--quick', '--smoke', '--soak', '--cpu-prof', '--no-readme']);
const VALUES = ['--n=', '--reps=', '--warmup=', '--variants=', '--work='];
const HELP = new Set(['--help', '-h', 'help']);

/** What the command line asks for. */
export type BenchCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'run'; readonly what: string; readonly rest: string[] };

/** Reads `./dev bench`'s arguments: help, an error naming the argument it does not know, or a run. */
export function parseBenchCommand(argv: readonly string[]): BenchCommand {
  if (argv.some((a) => HELP.has(a))) return { kind: 'help' };
  const [first, ...others] = argv;
  const what = first === undefined || first.startsWith('-') ? 'core' : first;
  const rest = first === undefined || first.startsWith('-') ? [...argv] : others;
  for (const arg of rest) {
    if (SWITCHES.has(arg) || VALUES.some((v) => arg.startsWith(v))) continue;
    return { kind: 'error', message: `./dev bench: unknown argument \`${arg}\`` };
  }
  return { kind: 'run', what, rest };
}
