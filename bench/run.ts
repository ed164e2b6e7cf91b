// `./dev bench <what>`: core micro-benchmarks, or broker benchmarks on real brokers
// (kafka, amqp, bullmq, or brokers for all three; add --quick for a smoke run, --soak for the soak).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const brokers = join(here, 'brokers', 'main.ts');
const suites: Record<string, { file: string; args: string[] }> = {
  core: { file: join(here, 'core', 'micro.ts'), args: [] },
  kafka: { file: brokers, args: ['kafka'] },
  amqp: { file: brokers, args: ['amqp'] },
  bullmq: { file: brokers, args: ['bullmq'] },
  brokers: { file: brokers, args: ['brokers'] },
};
const [what = 'core', ...rest] = process.argv.slice(2);
const suite = suites[what];
if (!suite) {
  console.error(`usage: ./dev bench <${Object.keys(suites).join('|')}> [--quick | --soak]`);
  process.exit(2);
}
const result = spawnSync(
  process.execPath,
  ['--expose-gc', '--disable-warning=TimeoutNegativeWarning', suite.file, ...suite.args, ...rest],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
