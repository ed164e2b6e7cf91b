import { type Context, context as contextApi } from '@opentelemetry/api';
import { type ContextSnapshot, fillSnapshot } from './snapshot.ts';

/** Counters that show whether a {@link SnapshotPool} is earning its place. */
export interface SnapshotPoolStats {
  /** Snapshots waiting in the pool now. */
  free: number;
  /** The most snapshots the pool keeps. */
  capacity: number;
  /** Snapshots allocated because the pool was empty. */
  created: number;
  /** Acquisitions served from the pool. */
  reused: number;
  /** Snapshots handed back. */
  released: number;
  /** Releases of a snapshot already in the pool (ignored). */
  doubleReleases: number;
  /** Releases dropped because the pool was full. */
  dropped: number;
}

/**
 * A bounded pool of {@link ContextSnapshot} objects for hot paths that capture a context per message
 * and let go of it soon after. Released snapshots are cleared before they are reused; releasing one
 * twice is harmless. The benchmark in `bench/core` decides whether pooling pays on a given runtime;
 * {@link captureSnapshot} (no pool) is the default everywhere in hoptrace.
 */
export class SnapshotPool {
  readonly #free: ContextSnapshot[] = [];
  /** Snapshots this pool handed out, and whether each is back in the pool now. */
  readonly #inPool = new WeakMap<ContextSnapshot, boolean>();
  readonly #capacity: number;
  #created = 0;
  #reused = 0;
  #released = 0;
  #doubleReleases = 0;
  #dropped = 0;

  /**
   * @param capacity - how many released snapshots to keep (default 1024). An integer >= 0.
   * @throws TypeError when `capacity` is not an integer >= 0.
   */
  constructor(capacity = 1024) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new TypeError(`Expected \`capacity\` to be an integer >= 0, got ${String(capacity)}`);
    }
    this.#capacity = capacity;
  }

  /**
   * Captures `context` (default: the active one) into a pooled snapshot.
   *
   * @returns the snapshot, or `undefined` when there was nothing to capture (nothing is taken from
   * the pool then).
   */
  acquire(context: Context = contextApi.active()): ContextSnapshot | undefined {
    let snapshot = this.#free.pop();
    if (snapshot) this.#reused += 1;
    else {
      snapshot = { traceId: '', spanId: '', traceFlags: 0 };
      this.#created += 1;
    }
    this.#inPool.set(snapshot, false);
    if (fillSnapshot(snapshot, context)) return snapshot;
    this.release(snapshot);
    return undefined;
  }

  /** Clears `snapshot` and keeps it for reuse. Releasing twice, or a foreign object, is harmless. */
  release(snapshot: ContextSnapshot | undefined): void {
    if (!snapshot) return;
    const inPool = this.#inPool.get(snapshot);
    if (inPool === undefined) return; // not one of ours
    if (inPool) {
      this.#doubleReleases += 1;
      return;
    }
    this.#released += 1;
    this.#inPool.set(snapshot, true);
    const pooled = snapshot;
    pooled.traceId = '';
    pooled.spanId = '';
    pooled.traceFlags = 0;
    delete pooled.traceState;
    delete pooled.baggage;
    if (this.#free.length < this.#capacity) this.#free.push(pooled);
    else this.#dropped += 1;
  }

  /** A copy of the pool's counters. */
  stats(): SnapshotPoolStats {
    return {
      free: this.#free.length,
      capacity: this.#capacity,
      created: this.#created,
      reused: this.#reused,
      released: this.#released,
      doubleReleases: this.#doubleReleases,
      dropped: this.#dropped,
    };
  }
}
