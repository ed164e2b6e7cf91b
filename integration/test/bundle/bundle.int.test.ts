import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokerEndpoint } from '@hoptrace/test-kit';
import { SpanKind } from '@opentelemetry/api';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

// "Works under bundlers" is a promise the README makes: each adapter is bundled into a small app
// with a real bundler (esbuild, from the packages' published dist), the bundle runs against the real
// broker in its own process, and the spans it reports must form one trace.
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
// Inside the workspace, so a bundle's external packages resolve from integration's node_modules.
const out = mkdtempSync(join(fixtures, '..', '.out-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface ReportedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

function run(file: string, env: Record<string, string>): Promise<ReportedSpan[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += String(d);
    });
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    child.on('exit', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('SPANS '));
      if (code !== 0 || !line) reject(new Error(`bundle exited ${code}\n${stdout}\n${stderr}`));
      else resolve(JSON.parse(line.slice(6)) as ReportedSpan[]);
    });
  });
}

const cases = [
  {
    adapter: 'kafka',
    entry: 'kafka-app.ts',
    format: 'esm' as const,
    external: [] as string[],
    env: () => ({ BUNDLE_KAFKA: brokerEndpoint('kafka').brokers.join(',') }),
    send: /^send bundle-/,
    process: /^process bundle-/,
  },
  {
    adapter: 'amqp',
    entry: 'amqp-app.cjs',
    format: 'cjs' as const,
    external: [] as string[],
    env: () => ({ BUNDLE_RABBITMQ: brokerEndpoint('rabbitmq').url }),
    send: /^send bundle-/,
    process: /^process bundle-/,
  },
  {
    adapter: 'bullmq',
    entry: 'bullmq-app.ts',
    format: 'esm' as const,
    external: ['bullmq', 'ioredis'],
    env: () => {
      const { host, port } = brokerEndpoint('redis');
      return { BUNDLE_REDIS: `${host}:${port}` };
    },
    send: /^send bundle-/,
    process: /^process bundle-/,
  },
];

describe('adapters bundled with esbuild', () => {
  it.each(cases)(
    '$adapter ($format): the bundled app keeps one trace from the app span through send to process',
    async (c) => {
      const outfile = join(out, `${c.adapter}-app.${c.format === 'esm' ? 'mjs' : 'cjs'}`);
      const result = await build({
        entryPoints: [join(fixtures, c.entry)],
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: c.format,
        outfile,
        external: c.external,
        // An ESM bundle of CommonJS clients (kafkajs) needs `require`, as any such app sets up.
        ...(c.format === 'esm'
          ? {
              banner: {
                js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
              },
            }
          : {}),
        logLevel: 'silent',
        metafile: true,
        // Not the repository's tsconfig `paths` (they point at sources): resolve like an app does.
        tsconfigRaw: {},
      });
      // hoptrace came from the package's published build, inside the bundle.
      const inputs = Object.keys(result.metafile.inputs).filter((i) => i.includes('packages/'));
      const entry = `packages/${c.adapter}/dist/index.${c.format === 'esm' ? 'mjs' : 'cjs'}`;
      expect(inputs, 'bundled from the published dist').toContain(entry);
      expect(
        inputs.some((i) => i.startsWith('packages/core/dist/')),
        inputs.join(', '),
      ).toBe(true);
      expect(readFileSync(outfile, 'utf8')).not.toMatch(/require-in-the-middle|import-in-the-middle/);

      const spans = await run(outfile, c.env());
      const app = spans.find((s) => s.name === 'app');
      const send = spans.find((s) => c.send.test(s.name));
      const process = spans.find((s) => c.process.test(s.name));
      expect(app && send && process, JSON.stringify(spans)).toBeTruthy();
      expect(send?.kind).toBe(SpanKind.PRODUCER);
      expect(process?.kind).toBe(SpanKind.CONSUMER);
      expect(send?.parentSpanId).toBe(app?.spanId);
      expect(process?.parentSpanId).toBe(send?.spanId);
      expect(new Set([app?.traceId, send?.traceId, process?.traceId]).size).toBe(1);
    },
  );
});
