import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureMavenJar, type MavenJar, mavenJarUrl } from '@hoptrace/test-kit/harness';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const saved = { ...process.env };
let cache: string;
let server: Server | undefined;

beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'hoptrace-java-cache-'));
  process.env.HOPTRACE_CACHE = cache;
});
afterEach(async () => {
  process.env = { ...saved };
  rmSync(cache, { recursive: true, force: true });
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

const jar: MavenJar = { groupId: 'dev.hoptrace.test', artifactId: 'peer', version: '1.0.0' };
const bytes = Buffer.from('PK fake jar bytes');
const sha1 = createHash('sha1').update(bytes).digest('hex');

/** A Maven repository on loopback serving `files` (path -> body); returns its URL and the paths asked for. */
async function repository(files: Record<string, string | Buffer>): Promise<{ url: string; asked: string[] }> {
  const asked: string[] = [];
  server = createServer((request, response) => {
    const path = request.url ?? '';
    asked.push(path);
    const body = files[path];
    response.writeHead(body === undefined ? 404 : 200).end(body);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/maven2`, asked };
}

const jarPath = '/maven2/dev/hoptrace/test/peer/1.0.0/peer-1.0.0.jar';

describe('ensureMavenJar', () => {
  it('builds the Maven Central URL from the coordinates', () => {
    expect(mavenJarUrl({ groupId: 'com.rabbitmq', artifactId: 'amqp-client', version: '5.26.0' })).toBe(
      'https://repo1.maven.org/maven2/com/rabbitmq/amqp-client/5.26.0/amqp-client-5.26.0.jar',
    );
  });

  it('downloads once, checks the .sha1 file (digest and file name), then serves the cache', async () => {
    const repo = await repository({ [jarPath]: bytes, [`${jarPath}.sha1`]: `${sha1}  peer-1.0.0.jar\n` });
    const file = await ensureMavenJar({ ...jar, sha1 }, { repository: repo.url });
    expect(file).toBe(join(cache, 'java', 'dev.hoptrace.test', 'peer-1.0.0.jar'));
    expect(readFileSync(file)).toEqual(bytes);
    expect(await ensureMavenJar(jar, { repository: repo.url })).toBe(file);
    expect(repo.asked).toEqual([jarPath, `${jarPath}.sha1`]);
  });

  it('downloads again when the cached jar no longer matches its checksum', async () => {
    const repo = await repository({ [jarPath]: bytes, [`${jarPath}.sha1`]: sha1 });
    const file = await ensureMavenJar(jar, { repository: repo.url });
    writeFileSync(file, 'truncated');
    await ensureMavenJar(jar, { repository: repo.url });
    expect(readFileSync(file)).toEqual(bytes);
    expect(repo.asked).toHaveLength(4);
  });

  it('refuses a download that does not match the .sha1 file, and keeps nothing', async () => {
    const repo = await repository({ [jarPath]: Buffer.from('tampered'), [`${jarPath}.sha1`]: sha1 });
    await expect(ensureMavenJar(jar, { repository: repo.url })).rejects.toThrow(`does not match ${sha1}`);
    await expect(ensureMavenJar(jar, { repository: repo.url })).rejects.toThrow('does not match');
    expect(repo.asked).toHaveLength(4);
  });

  it('refuses a .sha1 file that differs from the pinned SHA-1', async () => {
    const other = '0'.repeat(40);
    const repo = await repository({ [jarPath]: bytes, [`${jarPath}.sha1`]: sha1 });
    await expect(ensureMavenJar({ ...jar, sha1: other }, { repository: repo.url })).rejects.toThrow(
      `is ${sha1}, but the pinned SHA-1 is ${other}`,
    );
  });

  it('fails on a missing jar or checksum, naming the URL', async () => {
    const repo = await repository({ [jarPath]: bytes });
    await expect(ensureMavenJar(jar, { repository: repo.url })).rejects.toThrow(
      `GET ${repo.url}/dev/hoptrace/test/peer/1.0.0/peer-1.0.0.jar.sha1: HTTP 404`,
    );
  });
});
