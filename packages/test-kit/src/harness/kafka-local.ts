import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isListening, waitFor } from './net.ts';
import { probeKafka } from './probes.ts';
import { hasCommand, run } from './process.ts';

/**
 * Kafka from Maven Central jars, single node in KRaft mode (no ZooKeeper, no Docker).
 *
 * The jars are cached under `~/.cache/hoptrace/kafka/<version>/lib`, keyed by version. Every start
 * uses a fresh data directory, so each run begins from an empty cluster.
 */

/** The default broker version: the newest 3.9.x, which kafkajs 2.2.4 fully works with (see README). */
export const DEFAULT_KAFKA_VERSION = '3.9.2';

/** The version used, from `HOPTRACE_KAFKA_VERSION` or the default. */
export function kafkaVersion(): string {
  return process.env.HOPTRACE_KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
}

/** Where hoptrace caches what it downloads or builds (`HOPTRACE_CACHE`, else `~/.cache/hoptrace`). */
export function cacheRoot(): string {
  return (
    process.env.HOPTRACE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hoptrace')
  );
}

function logDependencies(version: string): string {
  const major = Number(version.split('.')[0]);
  const dep = (g: string, a: string, v: string) =>
    `<dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`;
  return major >= 4
    ? [
        dep('org.apache.logging.log4j', 'log4j-slf4j-impl', '2.24.3'),
        dep('org.apache.logging.log4j', 'log4j-core', '2.24.3'),
        dep('org.slf4j', 'slf4j-api', '1.7.36'),
      ].join('\n    ')
    : [dep('org.slf4j', 'slf4j-reload4j', '1.7.36'), dep('ch.qos.reload4j', 'reload4j', '1.2.25')].join(
        '\n    ',
      );
}

/** Downloads the broker's runtime classpath with Maven unless it is cached; returns the lib dir. */
export async function ensureKafkaJars(
  version: string,
  log: (line: string) => void = () => undefined,
): Promise<string> {
  const dir = join(cacheRoot(), 'kafka', version);
  const lib = join(dir, 'lib');
  const marker = join(lib, `kafka_2.13-${version}.jar`);
  if (existsSync(marker)) return lib;
  if (!hasCommand('mvn') || !hasCommand('java')) {
    throw new Error('Kafka from Maven Central needs `java` (17+) and `mvn` on PATH');
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.hoptrace</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${version}</version></dependency>
    ${logDependencies(version)}
  </dependencies>
</project>
`,
  );
  log(`downloading Kafka ${version} jars from Maven Central into ${lib} (once)`);
  rmSync(lib, { recursive: true, force: true });
  await run(
    'mvn',
    ['-q', '-B', 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${lib}`],
    {
      cwd: dir,
      timeoutMs: 600_000,
    },
  );
  if (!existsSync(marker)) throw new Error(`Maven finished but ${marker} is missing`);
  return lib;
}

/**
 * The properties of a single combined broker+controller KRaft node (static quorum), shared by the
 * local process and the container image so that both run the same broker configuration.
 *
 * With `internalPort`, brokers talk to each other over their own `BROKER` listener on 127.0.0.1
 * instead of the client listener. A container needs that: its client listener is advertised at the
 * host's mapped port, which does not exist inside the container, and the broker does connect to
 * itself (transaction markers, and the partition verification of transactional produces, which
 * otherwise fails with NOT_ENOUGH_REPLICAS). `advertised` is omitted when the address is only known
 * later: the container's start script appends it, see {@link advertisedListeners}.
 */
export function kraftServerProperties(options: {
  listenHost: string;
  port: number;
  controllerPort: number;
  internalPort?: number;
  advertised?: string;
  dataDir: string;
}): string {
  const { listenHost, port, controllerPort, internalPort, advertised, dataDir } = options;
  const internal = internalPort ? [`BROKER://127.0.0.1:${internalPort}`] : [];
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=${[`PLAINTEXT://${listenHost}:${port}`, ...internal, `CONTROLLER://127.0.0.1:${controllerPort}`].join(',')}`,
    ...(advertised ? [`advertised.listeners=${advertisedListeners(advertised, internalPort)}`] : []),
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${internalPort ? ',BROKER:PLAINTEXT' : ''}`,
    'controller.listener.names=CONTROLLER',
    `inter.broker.listener.name=${internalPort ? 'BROKER' : 'PLAINTEXT'}`,
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'group.initial.rebalance.delay.ms=0',
    'log.cleaner.dedupe.buffer.size=2097152',
    '',
  ].join('\n');
}

/** The `advertised.listeners` value: clients at `advertised`, and the internal listener if any. */
export function advertisedListeners(advertised: string, internalPort?: number): string {
  return [`PLAINTEXT://${advertised}`, ...(internalPort ? [`BROKER://127.0.0.1:${internalPort}`] : [])].join(
    ',',
  );
}

/** A Kafka process the harness started. */
export interface LocalKafka {
  version: string;
  brokers: string[];
  pid: number;
  dataDir: string;
  stop(): Promise<void>;
}

/** Where a started broker records its pid and version, one file per port. */
export const kafkaStateFile = (port: number) => join(cacheRoot(), 'kafka', `running-${port}.json`);

/** The version of a Kafka the harness started earlier and left running on `port`, if any. */
export function runningLocalKafkaVersion(port: number): string | undefined {
  try {
    const state = JSON.parse(readFileSync(kafkaStateFile(port), 'utf8')) as {
      pid: number;
      port: number;
      version: string;
    };
    if (state.port !== port) return undefined;
    process.kill(state.pid, 0);
    return state.version;
  } catch {
    return undefined;
  }
}

/**
 * Starts a single-node KRaft broker on 127.0.0.1:`port` (controller on `port + 1`) and waits until an
 * admin call succeeds. With `detached`, the broker outlives this process (for `./dev kafka start`).
 */
export async function startLocalKafka(
  options: { version?: string; port?: number; detached?: boolean; log?: (line: string) => void } = {},
): Promise<LocalKafka> {
  const version = options.version ?? kafkaVersion();
  const port = options.port ?? 9092;
  const log = options.log ?? (() => undefined);
  for (const p of [port, port + 1]) {
    if (await isListening('127.0.0.1', p))
      throw new Error(`port ${p} is taken; Kafka needs ${port} and ${port + 1} free`);
  }
  const lib = await ensureKafkaJars(version, log);
  const home = mkdtempSync(join(tmpdir(), `hoptrace-kafka-${version}-`));
  const dataDir = join(home, 'data');
  const props = join(home, 'server.properties');
  writeFileSync(
    props,
    kraftServerProperties({
      listenHost: '127.0.0.1',
      port,
      controllerPort: port + 1,
      advertised: `127.0.0.1:${port}`,
      dataDir,
    }),
  );
  const major = Number(version.split('.')[0]);
  // The storage tool gets a WARN-to-stderr config so that its stdout holds only the cluster id.
  const logProp = (tool: boolean) =>
    major >= 4
      ? `-Dlog4j2.configurationFile=${writeLog4j2(home, tool)}`
      : `-Dlog4j.configuration=file:${writeLog4j(home, tool)}`;
  const classpath = ['-cp', `${lib}/*`];
  const tools = [logProp(true), ...classpath];
  const clusterId = (
    await run('java', [...tools, 'kafka.tools.StorageTool', 'random-uuid'], {
      timeoutMs: 60_000,
      stdoutOnly: true,
    })
  ).trim();
  if (!/^[A-Za-z0-9_-]{22}$/.test(clusterId)) {
    throw new Error(`StorageTool random-uuid printed ${JSON.stringify(clusterId)}`);
  }
  await run(
    'java',
    [...tools, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, '--ignore-formatted'],
    {
      timeoutMs: 60_000,
    },
  );
  const java = ['-Xms512m', '-Xmx512m', logProp(false), ...classpath];
  const out = openSync(join(home, 'kafka.out'), 'a');
  const child = spawn('java', [...java, 'kafka.Kafka', props], {
    detached: options.detached ?? false,
    stdio: ['ignore', out, out],
  });
  if (options.detached) child.unref();
  const pid = child.pid!;
  const brokers = [`127.0.0.1:${port}`];
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  log(`started Kafka ${version} (pid ${pid}), logs in ${home}/kafka.out`);
  const ready = await waitFor(
    async () => !exited && (await probeKafka({ brokers }, 3000).then(() => true)),
    90_000,
    500,
  );
  if (!ready) {
    child.kill('SIGKILL');
    const tail = readFileSync(join(home, 'kafka.out'), 'utf8').slice(-3000);
    throw new Error(`Kafka ${version} did not become ready within 90 s; last log lines:\n${tail}`);
  }
  writeFileSync(kafkaStateFile(port), JSON.stringify({ pid, port, version, home }));
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const gone = await waitFor(async () => exited || !isAlive(pid), 20_000, 200);
    if (!gone) child.kill('SIGKILL');
    rmSync(kafkaStateFile(port), { force: true });
    rmSync(home, { recursive: true, force: true });
  };
  if (!options.detached) process.once('exit', () => !exited && child.kill('SIGKILL'));
  return { version, brokers, pid, dataDir, stop };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function writeLog4j(dir: string, tool: boolean): string {
  const file = join(dir, tool ? 'tools-log4j.properties' : 'log4j.properties');
  writeFileSync(file, kafkaLog4jProperties(tool));
  return file;
}

function writeLog4j2(dir: string, tool: boolean): string {
  const file = join(dir, tool ? 'tools-log4j2.properties' : 'log4j2.properties');
  writeFileSync(file, kafkaLog4j2Properties(tool));
  return file;
}

/**
 * The log4j 1 (reload4j) configuration for Kafka 3.x: the broker logs INFO to stdout (its readiness
 * line included), a tool logs WARN to stderr so that its stdout holds only what it prints.
 */
export function kafkaLog4jProperties(tool: boolean): string {
  return [
    tool ? 'log4j.rootLogger=WARN, stdout' : 'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    `log4j.appender.stdout.Target=${tool ? 'System.err' : 'System.out'}`,
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.kafka.request.logger=WARN',
    '',
  ].join('\n');
}

/** The log4j 2 configuration for Kafka 4.x, with the same split as {@link kafkaLog4jProperties}. */
export function kafkaLog4j2Properties(tool: boolean): string {
  return [
    'status = warn',
    'appender.console.type = Console',
    'appender.console.name = STDOUT',
    `appender.console.target = ${tool ? 'SYSTEM_ERR' : 'SYSTEM_OUT'}`,
    'appender.console.layout.type = PatternLayout',
    'appender.console.layout.pattern = [%d] %p %m (%c)%n',
    `rootLogger.level = ${tool ? 'warn' : 'info'}`,
    'rootLogger.appenderRef.stdout.ref = STDOUT',
    'logger.state.name = state.change.logger',
    'logger.state.level = warn',
    'logger.request.name = kafka.request.logger',
    'logger.request.level = warn',
    '',
  ].join('\n');
}
