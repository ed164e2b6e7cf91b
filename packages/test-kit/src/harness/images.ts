import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KAFKA_VERSION_LABEL, LOCAL_KAFKA_ADVERTISED_FILE, LOCAL_KAFKA_WAITING_LINE } from './containers.ts';
import {
  advertisedListeners,
  cacheRoot,
  ensureKafkaJars,
  kafkaLog4j2Properties,
  kafkaLog4jProperties,
  kafkaVersion,
  kraftServerProperties,
} from './kafka-local.ts';
import { run } from './process.ts';
import type { BrokerKind } from './types.ts';

/**
 * Broker images built on this machine, for the Testcontainers route where no registry can be reached
 * (`./dev containers setup`). One Debian root filesystem is made with debootstrap from the mirror apt
 * already uses and imported into podman once; Redis, RabbitMQ and Kafka are each one `podman build`
 * on top of it (Debian's redis-server and rabbitmq-server; Debian's JRE plus the Kafka jars the
 * harness caches from Maven Central). Every image is tagged with a hash of its recipe (the
 * Containerfile and every file it copies, jars included), so an unchanged recipe is never rebuilt and
 * a changed one always is.
 */

/** The label that records an image's recipe hash. */
export const RECIPE_LABEL = 'dev.hoptrace.recipe';

/** What goes into one image: its Containerfile and the files of its build context. */
export interface ImageRecipe {
  /** `localhost/hoptrace-<name>`. */
  repository: string;
  /** `<prefix><hash>`; the hash covers everything below. */
  tag: string;
  containerfile: string;
  /** Context files written from memory: path -> content (mode 0755 when the path ends in `.sh`). */
  files: Record<string, string>;
  /** Context directories copied from disk: path in the context -> source directory. */
  dirs: Record<string, string>;
}

/** `repository:tag`. */
export const imageRef = (recipe: Pick<ImageRecipe, 'repository' | 'tag'>) =>
  `${recipe.repository}:${recipe.tag}`;

/** Hashes a recipe: Containerfile, files and the content of every file under the copied directories. */
export function recipeHash(recipe: Omit<ImageRecipe, 'tag' | 'repository'>): string {
  const hash = createHash('sha256');
  const feed = (name: string, content: string | Buffer) => {
    hash.update(`${name}\0${content.length}\0`);
    hash.update(content);
  };
  feed('Containerfile', recipe.containerfile);
  for (const name of Object.keys(recipe.files).sort()) feed(`file:${name}`, recipe.files[name] ?? '');
  for (const target of Object.keys(recipe.dirs).sort()) {
    const source = recipe.dirs[target] ?? '';
    for (const entry of readdirSync(source, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name))
      .sort()) {
      feed(`dir:${target}/${entry.slice(source.length + 1)}`, readFileSync(entry));
    }
  }
  return hash.digest('hex').slice(0, 12);
}

function withTag(prefix: string, recipe: Omit<ImageRecipe, 'tag'>): ImageRecipe {
  return { ...recipe, tag: `${prefix}${recipeHash(recipe)}` };
}

/**
 * The base root filesystem's recipe: not a Containerfile (debootstrap runs on the host) but this
 * shell script, which is what runs, and what is hashed. The mirror is an input, not part of the
 * recipe: any mirror serves the same suite.
 */
export function baseRecipe(suite: string): ImageRecipe {
  const script = [
    'set -eu',
    'debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"',
    '# Package lists and downloaded .debs would only bloat every image built on top.',
    'rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb',
    '# No init system runs in these containers: package scripts must not try to start services.',
    'printf \'#!/bin/sh\\nexit 101\\n\' > "$ROOTFS/usr/sbin/policy-rc.d"',
    'chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"',
    `printf 'APT::Install-Recommends "false";\\nAPT::Install-Suggests "false";\\n' > "$ROOTFS/etc/apt/apt.conf.d/90hoptrace"`,
    `tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' --change "LABEL $RECIPE_LABEL=$TAG" - "$IMAGE"`,
    '',
  ].join('\n');
  return withTag(`${suite}-`, {
    repository: 'localhost/hoptrace-base',
    containerfile: script,
    files: {},
    dirs: {},
  });
}

const aptInstall = (packages: string) =>
  [
    'RUN apt-get update \\',
    ` && DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages} \\`,
    ' && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb',
  ].join('\n');

/** Redis from Debian, started the way Testcontainers' RedisContainer starts it (`redis-server`). */
export function redisRecipe(base: string): ImageRecipe {
  return withTag('', {
    repository: 'localhost/hoptrace-redis',
    containerfile: [
      `FROM ${base}`,
      aptInstall('redis-server'),
      'COPY hoptrace.conf /etc/redis/hoptrace.conf',
      'COPY entrypoint.sh /usr/local/bin/hoptrace-redis',
      'USER redis',
      'EXPOSE 6379',
      'ENTRYPOINT ["/usr/local/bin/hoptrace-redis"]',
      'CMD ["redis-server"]',
      '',
    ].join('\n'),
    files: {
      'hoptrace.conf': [
        '# Clients reach the server through a published port, from outside the container: protected',
        '# mode would refuse them. Nothing persists: every container starts empty.',
        'bind * -::*',
        'protected-mode no',
        'port 6379',
        'save ""',
        'appendonly no',
        'dir /tmp',
        'logfile ""',
        'daemonize no',
        '',
      ].join('\n'),
      'entrypoint.sh': [
        '#!/bin/sh',
        '# RedisContainer runs `redis-server [args]`; give it the container configuration first.',
        `if [ "\${1:-}" = redis-server ]; then shift; exec redis-server /etc/redis/hoptrace.conf "$@"; fi`,
        'exec "$@"',
        '',
      ].join('\n'),
    },
    dirs: {},
  });
}

/** RabbitMQ from Debian, logging to stdout so that RabbitMQContainer's log wait sees it start. */
export function rabbitmqRecipe(base: string): ImageRecipe {
  return withTag('', {
    repository: 'localhost/hoptrace-rabbitmq',
    containerfile: [
      `FROM ${base}`,
      aptInstall('rabbitmq-server'),
      'COPY rabbitmq.conf /etc/rabbitmq/rabbitmq.conf',
      'ENV RABBITMQ_LOGS=-',
      'USER rabbitmq',
      'EXPOSE 5672',
      // The server script itself, not Debian's wrapper: the wrapper switches user through su and
      // does not pass SIGTERM on.
      'CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]',
      '',
    ].join('\n'),
    files: {
      'rabbitmq.conf': [
        '# guest/guest from any address: clients come through a published port, never from the',
        "# container's own loopback, which is all guest may use by default.",
        'loopback_users = none',
        'listeners.tcp.default = 5672',
        '',
      ].join('\n'),
    },
    dirs: {},
  });
}

/** The broker's own listener inside the Kafka container, for its connections to itself. */
const KAFKA_INTERNAL_PORT = 9094;

/**
 * Kafka in KRaft mode from Debian's JRE and the Maven Central jars of `version`, with the same broker
 * properties as the local provisioning ({@link kraftServerProperties}). The data directory is
 * formatted at build time, so a container starts straight into the broker.
 */
export function kafkaRecipe(base: string, version: string, lib: string): ImageRecipe {
  const major = Number(version.split('.')[0]);
  const logOption = (tool: boolean) =>
    major >= 4
      ? `-Dlog4j2.configurationFile=/opt/kafka/${tool ? 'tools-' : ''}log4j2.properties`
      : `-Dlog4j.configuration=file:/opt/kafka/${tool ? 'tools-' : ''}log4j.properties`;
  const logFiles: Record<string, string> =
    major >= 4
      ? {
          'log4j2.properties': kafkaLog4j2Properties(false),
          'tools-log4j2.properties': kafkaLog4j2Properties(true),
        }
      : {
          'log4j.properties': kafkaLog4jProperties(false),
          'tools-log4j.properties': kafkaLog4jProperties(true),
        };
  const start = [
    '#!/bin/sh',
    '# Starts the single-node KRaft broker of this image (built by `./dev containers setup`).',
    'set -eu',
    "classpath='/opt/kafka/lib/*'",
    `if [ "\${1:-}" = format ]; then`,
    '  # Build time. Formatting records only the cluster and node ids, but the config must be valid,',
    '  # and a listener on 0.0.0.0 cannot be advertised: any routable address will do here.',
    '  cp /opt/kafka/server.properties /tmp/format.properties',
    `  echo 'advertised.listeners=${advertisedListeners('127.0.0.1:9092', KAFKA_INTERNAL_PORT)}' >> /tmp/format.properties`,
    `  id=$(java ${logOption(true)} -cp "$classpath" kafka.tools.StorageTool random-uuid)`,
    `  java ${logOption(true)} -cp "$classpath" kafka.tools.StorageTool format -t "$id" -c /tmp/format.properties`,
    '  rm /tmp/format.properties',
    '  exit 0',
    'fi',
    '# Clients must be told the host port the runtime mapped, which is known only after the start:',
    '# wait until the harness copies it in (a complete line), unless it was given up front.',
    `advertised="\${KAFKA_ADVERTISED:-}"`,
    'if [ -z "$advertised" ]; then',
    `  echo '${LOCAL_KAFKA_WAITING_LINE}'`,
    `  until [ -f ${LOCAL_KAFKA_ADVERTISED_FILE} ] && [ "$(wc -l < ${LOCAL_KAFKA_ADVERTISED_FILE})" -ge 1 ]; do sleep 0.1; done`,
    `  advertised=$(head -n 1 ${LOCAL_KAFKA_ADVERTISED_FILE})`,
    'fi',
    'cp /opt/kafka/server.properties /tmp/server.properties',
    `echo "advertised.listeners=${advertisedListeners('$advertised', KAFKA_INTERNAL_PORT)}" >> /tmp/server.properties`,
    'echo "hoptrace-kafka: advertising PLAINTEXT://$advertised"',
    `exec java \${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} ${logOption(false)} -cp "$classpath" kafka.Kafka /tmp/server.properties`,
    '',
  ].join('\n');
  return withTag(`${version}-`, {
    repository: 'localhost/hoptrace-kafka',
    containerfile: [
      `FROM ${base}`,
      aptInstall('openjdk-17-jre-headless'),
      'RUN useradd --system --home-dir /opt/kafka --no-create-home kafka \\',
      ' && mkdir -p /var/lib/kafka/data && chown -R kafka /var/lib/kafka',
      'COPY lib /opt/kafka/lib',
      `COPY server.properties start.sh ${Object.keys(logFiles).join(' ')} /opt/kafka/`,
      // The harness copies the advertised address in as root; the broker only reads it.
      'USER kafka',
      'RUN /opt/kafka/start.sh format',
      `LABEL ${KAFKA_VERSION_LABEL}=${version}`,
      'EXPOSE 9092',
      'CMD ["/opt/kafka/start.sh"]',
      '',
    ].join('\n'),
    files: {
      'server.properties': kraftServerProperties({
        listenHost: '0.0.0.0',
        port: 9092,
        controllerPort: 9093,
        internalPort: KAFKA_INTERNAL_PORT,
        dataDir: '/var/lib/kafka/data',
      }),
      'start.sh': start,
      ...logFiles,
    },
    dirs: { lib },
  });
}

async function podman(args: string[], timeoutMs = 900_000): Promise<string> {
  return run('podman', args, { timeoutMs });
}

async function imageExists(ref: string): Promise<boolean> {
  return podman(['image', 'exists', ref], 60_000).then(
    () => true,
    () => false,
  );
}

/** The Debian suite of this machine and the mirror apt uses for it. */
export async function debianSource(): Promise<{ suite: string; mirror: string }> {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const suite = /^VERSION_CODENAME=(\S+)$/m.exec(osRelease)?.[1];
  if (!suite) throw new Error('local images need a Debian machine (no VERSION_CODENAME in /etc/os-release)');
  const uris = await run(
    'apt-get',
    ['indextargets', '--format', '$(REPO_URI)', `Release: ${suite}`, 'Identifier: Packages'],
    { timeoutMs: 60_000, stdoutOnly: true },
  );
  const mirror = uris.split('\n').find((line) => line.trim() !== '');
  if (!mirror) throw new Error(`apt has no package source for ${suite}: run apt-get update first`);
  return { suite, mirror: mirror.trim() };
}

async function buildBase(recipe: ImageRecipe, suite: string, mirror: string, log: (line: string) => void) {
  const rootfs = join(cacheRoot(), 'containers', `rootfs-${recipe.tag}`);
  rmSync(rootfs, { recursive: true, force: true });
  try {
    log(`debootstrap --variant=minbase ${suite} from ${mirror} (once; the three images share it)`);
    await run('sh', ['-c', recipe.containerfile], {
      timeoutMs: 1_200_000,
      env: {
        ...process.env,
        SUITE: suite,
        ROOTFS: rootfs,
        MIRROR: mirror,
        RECIPE_LABEL,
        TAG: recipe.tag,
        IMAGE: imageRef(recipe),
      },
    });
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}

async function buildImage(recipe: ImageRecipe): Promise<void> {
  const context = mkdtempSync(join(cacheRoot(), 'containers', 'context-'));
  try {
    writeFileSync(join(context, 'Containerfile'), recipe.containerfile);
    for (const [name, content] of Object.entries(recipe.files)) {
      writeFileSync(join(context, name), content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
    }
    for (const [target, source] of Object.entries(recipe.dirs))
      cpSync(source, join(context, target), { recursive: true });
    await podman([
      'build',
      // RUN steps fetch packages from the host's mirror: share the host's network.
      '--network=host',
      '--pull=never',
      '--label',
      `${RECIPE_LABEL}=${recipe.tag}`,
      '-t',
      imageRef(recipe),
      '-f',
      join(context, 'Containerfile'),
      context,
    ]);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** Removes older tags of our own repositories (only those: other images on the machine are left alone). */
async function pruneOld(current: ImageRecipe[], log: (line: string) => void): Promise<void> {
  const keep = new Set(current.map(imageRef));
  const listed = await podman(['images', '--format', '{{.Repository}}:{{.Tag}}'], 60_000);
  const ours = new Map(current.map((r) => [r.repository, r]));
  for (const ref of listed.split('\n').map((l) => l.trim())) {
    const colon = ref.lastIndexOf(':');
    const repository = ref.slice(0, colon);
    const tag = ref.slice(colon + 1);
    const recipe = ours.get(repository);
    if (!recipe || keep.has(ref)) continue;
    // Kafka images of other versions stay: HOPTRACE_KAFKA_VERSION may switch between them.
    if (repository.endsWith('/hoptrace-kafka') && !tag.startsWith(`${recipe.tag.split('-')[0]}-`)) continue;
    await podman(['rmi', ref], 120_000).then(
      () => log(`removed the outdated image ${ref}`),
      () => undefined,
    );
  }
}

/** The image of each kind after {@link ensureImages}. */
export type LocalImages = Record<BrokerKind, string>;

/**
 * Builds whatever is missing of the base and the three broker images and returns their references.
 * Needs root, podman, debootstrap, and the Kafka jars (fetched from Maven Central when missing).
 */
export async function ensureImages(log: (line: string) => void = () => undefined): Promise<LocalImages> {
  const started = Date.now();
  const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
  mkdirSync(join(cacheRoot(), 'containers'), { recursive: true });
  const { suite, mirror } = await debianSource();
  const base = baseRecipe(suite);
  const version = kafkaVersion();
  const lib = await ensureKafkaJars(version, log);
  const recipes: Record<BrokerKind, ImageRecipe> = {
    redis: redisRecipe(imageRef(base)),
    rabbitmq: rabbitmqRecipe(imageRef(base)),
    kafka: kafkaRecipe(imageRef(base), version, lib),
  };
  let built = 0;
  if (!(await imageExists(imageRef(base)))) {
    const t = Date.now();
    await buildBase(base, suite, mirror, log);
    built += 1;
    log(`built ${imageRef(base)} in ${seconds(t)}`);
  }
  for (const recipe of Object.values(recipes)) {
    if (await imageExists(imageRef(recipe))) continue;
    const t = Date.now();
    log(`building ${imageRef(recipe)}`);
    await buildImage(recipe);
    built += 1;
    log(`built ${imageRef(recipe)} in ${seconds(t)}`);
  }
  await pruneOld([base, ...Object.values(recipes)], log);
  log(
    built === 0
      ? `images cached (recipes unchanged), checked in ${seconds(started)}`
      : `built ${built} image(s) in ${seconds(started)}`,
  );
  return {
    kafka: imageRef(recipes.kafka),
    rabbitmq: imageRef(recipes.rabbitmq),
    redis: imageRef(recipes.redis),
  };
}
