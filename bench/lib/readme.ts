// bench/README.md holds the latest full results between markers (`<!-- bench:NAME:start -->` and
// `<!-- bench:NAME:end -->`); the benchmark scripts rewrite what is between them, nothing else.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const readmePath = join(benchDir, 'README.md');
const biome = join(benchDir, '..', 'node_modules', '@biomejs', 'biome', 'bin', 'biome');

/** The markers around section `name`. */
export function markers(name: string): { start: string; end: string } {
  return { start: `<!-- bench:${name}:start -->`, end: `<!-- bench:${name}:end -->` };
}

/**
 * `text` with what lies between section `name`'s markers replaced by `content`. Throws when the
 * markers are missing or out of order (the README was edited by hand).
 */
export function replaceSection(text: string, name: string, content: string): string {
  const { start, end } = markers(name);
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from === -1 || to === -1 || to < from) {
    throw new Error(`bench/README.md: markers ${start} ... ${end} are missing`);
  }
  return `${text.slice(0, from + start.length)}\n${content.trim()}\n${text.slice(to)}`;
}

/**
 * Rewrites section `name` of bench/README.md, then formats the README with the repository's biome
 * (it aligns markdown tables), so the lint stays clean; returns the README's path.
 */
export function writeReadmeSection(name: string, content: string): string {
  writeFileSync(readmePath, replaceSection(readFileSync(readmePath, 'utf8'), name, content));
  const formatted = spawnSync(process.execPath, [biome, 'format', '--write', readmePath], {
    encoding: 'utf8',
  });
  if (formatted.status !== 0) {
    console.warn(
      `bench: could not format ${readmePath}; run \`pnpm exec biome format --write bench/README.md\``,
    );
  }
  return readmePath;
}
