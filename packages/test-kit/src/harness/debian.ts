import { hasCommand, isRoot, run } from './process.ts';

/**
 * Redis and RabbitMQ as this machine kind has them: Debian's packages, started with the same commands
 * the machine uses at boot. Installs the package when the binary is missing (root only).
 */
async function ensurePackage(binary: string, pkg: string): Promise<void> {
  if (hasCommand(binary)) return;
  await aptInstall(pkg, `${binary} is not installed`);
}

/**
 * Installs a Debian package with apt-get (root only); `missing` says what is missing, for the error
 * thrown when apt-get cannot be used here.
 */
export async function aptInstall(pkg: string, missing: string): Promise<void> {
  if (!isRoot() || !hasCommand('apt-get')) {
    throw new Error(`${missing} and apt-get is not usable here (needs root on Debian)`);
  }
  await run('apt-get', ['update'], { timeoutMs: 300_000 });
  await run('apt-get', ['install', '-y', pkg], { timeoutMs: 600_000 });
}

/** Starts redis-server on 127.0.0.1:port without persistence; returns its stopper. */
export async function startDebianRedis(port: number): Promise<() => Promise<void>> {
  await ensurePackage('redis-server', 'redis-server');
  await run(
    'redis-server',
    [
      '--daemonize',
      'yes',
      '--bind',
      '127.0.0.1',
      '-::1',
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      '/tmp',
      '--logfile',
      `/tmp/hoptrace-redis-${port}.log`,
    ],
    { timeoutMs: 30_000 },
  );
  return async () => {
    await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'shutdown', 'nosave'], {
      timeoutMs: 30_000,
    }).catch(() => undefined);
  };
}

/** Starts the Debian RabbitMQ node (default port 5672) and waits until it is up; returns its stopper. */
export async function startDebianRabbit(): Promise<() => Promise<void>> {
  await ensurePackage('rabbitmq-server', 'rabbitmq-server');
  await run('rabbitmq-server', ['-detached'], { timeoutMs: 60_000 });
  await run('rabbitmqctl', ['await_startup', '--timeout', '120'], { timeoutMs: 130_000 });
  return async () => {
    await run('rabbitmqctl', ['stop'], { timeoutMs: 60_000 }).catch(() => undefined);
  };
}
