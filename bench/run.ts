// `./dev bench <what>`: `core` micro-benchmarks; `brokers` (every suite) or one suite of
// bench/suites/ on real brokers (add --quick or --smoke for shorter runs, --soak for the soak);
// `all`: brokers, then the soak, then core (the whole measurement, one command); or `check`:
// typecheck, lint and unit-test bench/ itself. See bench/README.md.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchCommand, USAGE } from './lib/cli.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const bin = (pkg: string, file: string) => join(root, 'node_modules', ...pkg.split('/'), file);

/** Runs node with `args`, inheriting stdio; returns the exit status. */
function node(args: string[]): number {
  return spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root }).status ?? 1;
}

/** `check`: typecheck bench/ (and what it imports), lint it, run its unit tests. */
function check(): number {
  const steps: Array<[string, string[]]> = [
    ['typecheck', [bin('typescript', 'bin/tsc'), '-p', join(here, 'tsconfig.json'), '--noEmit']],
    ['lint', [bin('@biomejs/biome', 'bin/biome'), 'check', here]],
    ['tests', [bin('vitest', 'vitest.mjs'), 'run', '--config', join(here, 'vitest.config.ts')]],
  ];
  for (const [name, args] of steps) {
    console.log(`== bench check: ${name}`);
    const status = node(args);
    if (status !== 0) return status;
  }
  return 0;
}

/** Runs one benchmark: `core`, or main.ts for `brokers` and the suites. */
function bench(what: string, rest: string[]): number {
  const file = what === 'core' ? join(here, 'core', 'micro.ts') : join(here, 'brokers', 'main.ts');
  const args = what === 'core' ? rest : [what, ...rest];
  return node(['--expose-gc', '--disable-warning=TimeoutNegativeWarning', file, ...args]);
}

/** `all`: the comparison, the soak and core in turn (each still runs when one before it failed). */
function all(rest: string[]): number {
  const short = rest.includes('--quick') || rest.includes('--smoke');
  const statuses = [
    bench('brokers', rest),
    bench('brokers', ['--soak', ...rest]),
    bench('core', [...rest.filter((a) => a === '--no-readme'), ...(short ? ['--quick'] : [])]),
  ];
  return statuses.find((s) => s !== 0) ?? 0;
}

const command = parseBenchCommand(process.argv.slice(2));
if (command.kind === 'help') {
  console.log(USAGE);
  process.exit(0);
}
if (command.kind === 'error') {
  console.error(`${command.message}\n${USAGE}`);
  process.exit(2);
}
const { what, rest } = command;
process.exit(what === 'check' ? check() : what === 'all' ? all(rest) : bench(what, rest));
