import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * Who owns a container the harness started, and how it is cleaned up without Ryuk.
 *
 * On machines like CI's, Testcontainers runs with `TESTCONTAINERS_RYUK_DISABLED=true` (Ryuk's image
 * cannot be pulled without a registry), so nothing outside this process would remove a container the
 * run left behind. The harness therefore labels every container with its owner (host, pid and the
 * pid's start time, so a recycled pid is not mistaken for the owner), removes its containers when the
 * run ends, also on SIGINT/SIGTERM and on `process.exit`, and at the start of the next run removes
 * labelled containers whose owner is gone (a run killed with SIGKILL cannot clean up after itself).
 */

/** Every container the harness starts carries this label (value `true`). */
export const HARNESS_LABEL = 'dev.hoptrace.harness';
/** The owning process: `host/pid/starttime`. */
export const OWNER_LABEL = 'dev.hoptrace.owner';

/** The process start time from `/proc` (clock ticks since boot), or '' where there is no `/proc`. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may contain spaces, so count from its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** This process as an owner label value. */
export function ownerId(pid: number = process.pid): string {
  return `${hostname()}/${pid}/${startTime(pid)}`;
}

/** The labels to put on a container this process starts. */
export function ownerLabels(): Record<string, string> {
  return { [HARNESS_LABEL]: 'true', [OWNER_LABEL]: ownerId() };
}

/**
 * True when the owner named by a label value is gone: same host, and its pid is no longer running or
 * now belongs to a process that started at another time. Containers of another host are never judged
 * stale (a shared remote engine may serve several machines).
 */
export function ownerIsGone(owner: string | undefined): boolean {
  if (!owner) return false;
  const [host, pidText, started = ''] = owner.split('/');
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: the pid exists but belongs to someone else, so it is alive.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return true;
  }
  return started !== '' && startTime(pid) !== started;
}

const live = new Set<string>();
let handlersInstalled = false;
const remover = fileURLToPath(new URL('./remove-containers.ts', import.meta.url));

/**
 * Removes the given containers synchronously, through a child Node process that talks to the same
 * runtime. Synchronous because it must also work inside `process.on('exit')` and while vitest's own
 * SIGINT handler is about to call `process.exit()`: an async removal would never get to run.
 */
export function removeContainersSync(ids: string[]): void {
  if (ids.length === 0) return;
  const result = spawnSync(process.execPath, [remover, ...ids], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 60_000,
  });
  if (result.status !== 0) {
    process.stderr.write(
      `[harness] could not remove containers ${ids.join(', ')} (status ${result.status}); they will be removed at the next run's start, or with ./dev containers stop\n`,
    );
  }
}

function removeLiveSync(): void {
  const ids = [...live];
  live.clear();
  removeContainersSync(ids);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', removeLiveSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      removeLiveSync();
      // When nobody else handles the signal (vitest does, and exits), end the process as the signal
      // would have: our listener alone would otherwise keep it alive.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Records a started container so that it is removed if the run ends before its normal stop. */
export function trackContainer(id: string): void {
  live.add(id);
  installHandlers();
}

/** Forgets a container once its normal stop has removed it. */
export function untrackContainer(id: string): void {
  live.delete(id);
}
