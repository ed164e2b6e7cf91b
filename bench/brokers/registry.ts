// The registration point for benchmark suites: every `bench/suites/<name>.ts` that exports a
// `suite: BenchSuite` named `<name>` is a suite (`./dev bench <name>`), and `./dev bench brokers` runs
// them all in their `order`. Adding a client to the benchmark is adding one file there; nothing else
// changes. A suite file must not load its client when imported (require it in `prepare` through
// `env.require`, or import it dynamically), so an incumbent can patch the client first.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchSuite } from './types.ts';

const suitesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'suites');

/** Every suite in `bench/suites/`, in `order` (then name). Throws on a file without a valid `suite`. */
export async function loadSuites(): Promise<BenchSuite[]> {
  const suites: BenchSuite[] = [];
  for (const name of suiteNames()) suites.push(await importSuite(name));
  return suites.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}

/** Imports `bench/suites/<name>.ts` alone (a child process loads only its own suite). */
export async function importSuite(name: string): Promise<BenchSuite> {
  const file = `${name}.ts`;
  const module = (await import(pathToFileURL(join(suitesDir, file)).href)) as { suite?: BenchSuite };
  const suite = module.suite;
  if (!suite || typeof suite.prepare !== 'function' || typeof suite.scenarios !== 'function') {
    throw new Error(`bench/suites/${file} must export \`suite\` (a BenchSuite, see bench/brokers/types.ts)`);
  }
  if (suite.name !== name) throw new Error(`bench/suites/${file} exports a suite named "${suite.name}"`);
  return suite;
}

/** Names of the suites in `bench/suites/` (without importing them). */
export function suiteNames(): string[] {
  return readdirSync(suitesDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}
