import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The layout's promises, checked on the sources: dependencies point one way (adapters -> core ->
// @opentelemetry/api), no adapter imports another, the test kit depends on no @hoptrace package,
// no import cycle inside any package, curated entry points, a declared test kit everywhere.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const packagesDir = join(root, 'packages');
const packages = readdirSync(packagesDir).filter((p) => statSync(join(packagesDir, p)).isDirectory());
const adapters = packages.filter((p) => p !== 'core' && p !== 'test-kit');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every module specifier a file imports or re-exports (static and dynamic, type-only included). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g))
    out.push(m[1] as string);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push(m[1] as string);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1] as string);
  return out;
}

const manifest = (pkg: string) =>
  JSON.parse(readFileSync(join(packagesDir, pkg, 'package.json'), 'utf8')) as {
    name: string;
    private?: boolean;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };

describe('architecture', () => {
  it('finds the packages it checks', () => {
    expect(packages).toEqual(expect.arrayContaining(['core', 'kafka', 'amqp', 'bullmq', 'test-kit']));
  });

  it.each(packages)('%s: no import cycle among its source files', (pkg) => {
    const src = join(packagesDir, pkg, 'src');
    const graph = new Map<string, string[]>();
    for (const file of files(src)) {
      graph.set(
        file,
        specifiers(file)
          .filter((s) => s.startsWith('.'))
          .map((s) => resolve(dirname(file), s))
          .filter((target) => target.startsWith(src)),
      );
    }
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(src, f)).join(' -> '));
        return;
      }
      state.set(file, 'visiting');
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('core depends on @opentelemetry/api and Node built-ins only', () => {
    const foreign = files(join(packagesDir, 'core', 'src'))
      .flatMap((f) => specifiers(f).map((s) => [relative(root, f), s] as const))
      .filter(([, s]) => !s.startsWith('.') && !s.startsWith('node:') && s !== '@opentelemetry/api');
    expect(foreign).toEqual([]);
  });

  it.each(adapters)(
    '%s: imports core, the OpenTelemetry API and its own client, never another adapter',
    (pkg) => {
      const { peerDependencies = {} } = manifest(pkg);
      const allowed = new Set([
        '@hoptrace/core',
        '@hoptrace/core/adapter',
        '@opentelemetry/api',
        ...Object.keys(peerDependencies),
      ]);
      const foreign = files(join(packagesDir, pkg, 'src'))
        .flatMap((f) => specifiers(f).map((s) => [relative(root, f), s] as const))
        .filter(([, s]) => !s.startsWith('.') && !s.startsWith('node:'))
        .filter(([, s]) => ![...allowed].some((a) => s === a || s.startsWith(`${a}/`)));
      expect(foreign).toEqual([]);
    },
  );

  it('the test kit depends on no @hoptrace package', () => {
    const { dependencies = {}, devDependencies = {} } = manifest('test-kit');
    expect(
      Object.keys({ ...dependencies, ...devDependencies }).filter((d) => d.startsWith('@hoptrace/')),
    ).toEqual([]);
    const imports = files(join(packagesDir, 'test-kit', 'src')).flatMap(specifiers);
    expect(imports.filter((s) => s.startsWith('@hoptrace/'))).toEqual([]);
  });

  it('every package, integration and bench declare the test kit as a devDependency', () => {
    const dirs = [
      ...packages.filter((p) => p !== 'test-kit').map((p) => join('packages', p)),
      'integration',
      'bench',
    ];
    for (const dir of dirs) {
      const json = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as {
        devDependencies?: Record<string, string>;
      };
      expect(json.devDependencies?.['@hoptrace/test-kit'], dir).toBe('workspace:*');
    }
  });

  it('published packages keep the API and their broker client as peers, and curate their entry points', () => {
    for (const pkg of [...adapters, 'core']) {
      const json = manifest(pkg);
      if (json.private) continue;
      expect(json.peerDependencies?.['@opentelemetry/api'], pkg).toBeDefined();
      expect(
        Object.keys(json.dependencies ?? {}).filter((d) => !d.startsWith('@hoptrace/')),
        pkg,
      ).toEqual([]);
      for (const entry of files(join(packagesDir, pkg, 'src')).filter((f) =>
        /\/(index|adapter)\.ts$/.test(f),
      )) {
        expect(readFileSync(entry, 'utf8'), entry).not.toMatch(/^\s*export \* from/m);
      }
    }
  });
});
