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

/** Writes `bench/results/<date>-<name>.md` and `.json`; returns the markdown path. */
export function writeResults(name: string, markdown: string, json: unknown): string {
  mkdirSync(resultsDir, { recursive: true });
  const base = join(resultsDir, `${today()}-${name}`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  return `${base}.md`;
}

/** Formats a number with a fixed number of decimals. */
export function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}
