// Versions of the packages bench/ depends on, for the results.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The installed version of `pkg` as bench/ resolves it (`?` when it is not installed). */
export function packageVersion(pkg: string): string {
  try {
    const path = join(benchDir, 'node_modules', pkg, 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}
