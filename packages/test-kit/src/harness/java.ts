import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptInstall } from './debian.ts';
import { cacheRoot } from './kafka-local.ts';
import { run } from './process.ts';

/**
 * Java for tests that run a peer written in Java (the other-language interop tests): a JDK located
 * (or installed with apt-get, like the Debian brokers) and single jars from Maven Central, pinned and
 * checked. Kafka's own jars come with their dependencies through Maven instead ({@link ensureKafkaJars}
 * in `kafka-local.ts`); a peer's client library is one jar with no dependency to resolve.
 */

/** The oldest Java accepted: the version the Kafka broker is run with (see the root README). */
export const MIN_JAVA_VERSION = 17;

/** The Debian package installed when no usable JDK is found (root only). */
export const JAVA_PACKAGE = 'default-jdk-headless';

/** Maven Central, where {@link ensureMavenJar} downloads from by default. */
export const MAVEN_CENTRAL = 'https://repo1.maven.org/maven2';

/** Why a `java` binary cannot run a single-file source program, or undefined when it can. */
async function javaProblem(java: string): Promise<string | undefined> {
  let modules: string;
  try {
    modules = await run(java, ['--list-modules'], { timeoutMs: 60_000, stdoutOnly: true });
  } catch (error) {
    return `${java}: ${(error as Error).message.split('\n')[0]}`;
  }
  const base = /^java\.base@(\d+)/m.exec(modules);
  const major = Number(base?.[1] ?? 0);
  if (major < MIN_JAVA_VERSION)
    return `${java} is Java ${major || '(unknown)'}, older than ${MIN_JAVA_VERSION}`;
  // The single-file source launcher compiles in memory with javac's module: a JRE does not have it.
  if (!/^jdk\.compiler@/m.test(modules))
    return `${java} is a JRE without the jdk.compiler module (needs a JDK)`;
  return undefined;
}

async function locateJava(log: (line: string) => void): Promise<string> {
  const candidates = [...(process.env.JAVA_HOME ? [join(process.env.JAVA_HOME, 'bin', 'java')] : []), 'java'];
  const problems: string[] = [];
  for (const java of candidates) {
    const problem = await javaProblem(java);
    if (!problem) return java;
    problems.push(problem);
  }
  const missing = `no usable JDK ${MIN_JAVA_VERSION}+ (${problems.join('; ')})`;
  log(`${missing}: installing ${JAVA_PACKAGE} with apt-get`);
  await aptInstall(JAVA_PACKAGE, missing);
  const problem = await javaProblem('java');
  if (problem) throw new Error(`installed ${JAVA_PACKAGE}, but ${problem}`);
  return 'java';
}

let located: Promise<string> | undefined;

/**
 * The `java` command of a JDK {@link MIN_JAVA_VERSION}+ that can run a single-file source program
 * (`java Peer.java`): `$JAVA_HOME/bin/java`, else `java` on PATH, else (as root on Debian) the one
 * {@link JAVA_PACKAGE} installs. Throws an error naming every candidate and the fix otherwise; never
 * skips. Located once per process.
 */
export function ensureJava(log: (line: string) => void = () => undefined): Promise<string> {
  located ??= locateJava(log).catch((error: unknown) => {
    located = undefined;
    throw new Error(
      `Java peers need a JDK ${MIN_JAVA_VERSION}+: ${(error as Error).message}\nFix: apt-get install -y ${JAVA_PACKAGE}   (or set JAVA_HOME to a JDK ${MIN_JAVA_VERSION}+)`,
    );
  });
  return located;
}

/** One jar on Maven Central, pinned by version and, optionally, by its SHA-1. */
export interface MavenJar {
  groupId: string;
  artifactId: string;
  version: string;
  /** The expected SHA-1 (hex); when given, Central's `.sha1` file and the download must both match it. */
  sha1?: string;
}

/** The jar's URL under a Maven repository (Maven Central by default). */
export function mavenJarUrl(jar: MavenJar, repository: string = MAVEN_CENTRAL): string {
  const { groupId, artifactId, version } = jar;
  return `${repository}/${groupId.replaceAll('.', '/')}/${artifactId}/${version}/${artifactId}-${version}.jar`;
}

const sha1Of = (bytes: Uint8Array) => createHash('sha1').update(bytes).digest('hex');

async function download(url: string): Promise<Buffer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/**
 * Downloads a pinned jar into `<cache>/java/<groupId>/` once (the cache is `~/.cache/hoptrace`, see
 * `cacheRoot`) and returns its path. The download is checked against the repository's `.sha1` file
 * (and against `jar.sha1` when pinned) before it is moved into place, with its checksum beside it; a
 * cached jar is re-checked against that checksum on every call and downloaded again if it differs.
 * Throws when the download or a check fails.
 */
export async function ensureMavenJar(
  jar: MavenJar,
  options: { repository?: string; log?: (line: string) => void } = {},
): Promise<string> {
  const dir = join(cacheRoot(), 'java', jar.groupId);
  const file = join(dir, `${jar.artifactId}-${jar.version}.jar`);
  const checksumFile = `${file}.sha1`;
  const pinned = jar.sha1?.toLowerCase();
  if (existsSync(file) && existsSync(checksumFile)) {
    const recorded = readFileSync(checksumFile, 'utf8').trim();
    if (sha1Of(readFileSync(file)) === recorded && (!pinned || pinned === recorded)) return file;
  }
  const url = mavenJarUrl(jar, options.repository);
  options.log?.(`downloading ${url} into ${dir} (once)`);
  const [bytes, published] = await Promise.all([download(url), download(`${url}.sha1`)]);
  // A .sha1 file holds the hex digest, sometimes followed by the file name.
  const expected = published.toString('utf8').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  if (!/^[0-9a-f]{40}$/.test(expected))
    throw new Error(`${url}.sha1 holds no SHA-1: ${JSON.stringify(expected)}`);
  if (pinned && pinned !== expected) {
    throw new Error(`${url}.sha1 is ${expected}, but the pinned SHA-1 is ${pinned}`);
  }
  const actual = sha1Of(bytes);
  if (actual !== expected) throw new Error(`${url}: downloaded SHA-1 ${actual} does not match ${expected}`);
  mkdirSync(dir, { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  try {
    writeFileSync(partial, bytes);
    renameSync(partial, file);
  } finally {
    rmSync(partial, { force: true });
  }
  writeFileSync(checksumFile, `${actual}\n`);
  return file;
}
