import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The machine a benchmark ran on, for the results table. */
export function machine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}/${process.arch}`;
}

/** Today's date, YYYY-MM-DD. */
export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/**
 * Writes `bench/results/<date>-<name>.md` and `.json` (under `bench/results/<subdir>/` when given:
 * quick and smoke runs go to the git-ignored `scratch/`); returns the markdown path.
 */
export function writeResults(name: string, markdown: string, json: unknown, subdir?: string): string {
  const dir = subdir ? join(resultsDir, subdir) : resultsDir;
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${today()}-${name}`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  return `${base}.md`;
}

/** Formats a number with a fixed number of decimals. */
export function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}

/** A duration given in nanoseconds, in the unit that reads best: `850 ns`, `2.1 µs`, `15.9 ms`, `1.43 s`. */
export function duration(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}
