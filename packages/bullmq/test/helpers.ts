import { randomUUID } from 'node:crypto';
import { brokerEndpoint, until } from '@hoptrace/test-kit';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import * as bullmqNewest from 'bullmq';
import * as bullmqOldest from 'bullmq-v5';
import { Redis } from 'ioredis';

/** The BullMQ module shape the tests use (the newest's types; the oldest is structurally the same). */
export type BullMQ = typeof bullmqNewest;

/** The oldest and newest supported BullMQ, for `describe.each`. */
export const BULLMQ_VERSIONS: ReadonlyArray<readonly [string, BullMQ]> = [
  ['newest (6.x)', bullmqNewest],
  ['oldest (5.34.0)', bullmqOldest as unknown as BullMQ],
];

/** A job of either BullMQ version tested. */
export type AnyJob = InstanceType<BullMQ['Job']>;

/** A Queue of `bullmq` (either version) on the test Redis. */
export const makeQueue = (bullmq: BullMQ, name: string) =>
  new bullmq.Queue(name, { connection: brokerEndpoint('redis') });

/** A Worker of `bullmq` (either version) on the test Redis; `fn` null: jobs are taken manually. */
export const makeWorker = (
  bullmq: BullMQ,
  name: string,
  fn: ((job: AnyJob, token?: string) => unknown) | null,
  opts: object = {},
) =>
  new bullmq.Worker(name, fn as ((job: AnyJob) => Promise<unknown>) | null, {
    connection: brokerEndpoint('redis'),
    ...opts,
  });

/** A Queue of either version, as {@link makeQueue} makes it. */
export type AnyQueue = ReturnType<typeof makeQueue>;

/**
 * Resolves once a QueueEvents delivered the last entry of `queue`'s event stream named in `names`,
 * as recorded by `lastDelivered` (the stream id of the last event its listeners got).
 */
export async function queueEventsCaughtUp(
  queue: AnyQueue,
  names: readonly string[],
  lastDelivered: () => string | undefined,
): Promise<void> {
  const client = new Redis(brokerEndpoint('redis'));
  const entries = await client
    .xrevrange(`${queue.opts.prefix ?? 'bull'}:${queue.name}:events`, '+', '-')
    .finally(() => client.disconnect());
  const last = entries.find(([, fields]) => names.includes(fields[fields.indexOf('event') + 1] as string));
  if (last) await until(() => lastDelivered() === last[0], `QueueEvents to deliver event ${last[0]}`, 20_000);
}
/** A Worker of either version, as {@link makeWorker} makes it. */
export type AnyWorker = ReturnType<typeof makeWorker>;

/**
 * A stand-in for a Queue that records what `add` and `addBulk` were given (`add` returns job `7`,
 * `addBulk` ids from 1), with connection options `server.*` can be read from.
 */
export function fakeQueue() {
  const calls: unknown[][] = [];
  return {
    calls,
    queue: {
      name: 'orders',
      opts: { connection: { host: 'redis.internal', port: 6380 } },
      extra: 42,
      async add(...args: unknown[]) {
        calls.push(args);
        return { id: '7', name: args[0] };
      },
      async addBulk(jobs: unknown[]) {
        calls.push([jobs]);
        return jobs.map((_, i) => ({ id: String(i + 1) }));
      },
    },
  };
}

/** A queue name no other test (or concurrent run) uses. */
export function uniqueQueueName(prefix: string): string {
  return `hoptrace-${prefix}-${randomUUID()}`;
}

/** Spans with this name, by message id. */
export function byMessageId(spans: readonly ReadableSpan[], name: string): Map<string, ReadableSpan[]> {
  const out = new Map<string, ReadableSpan[]>();
  for (const span of spans) {
    if (span.name !== name) continue;
    const id = String(span.attributes['messaging.message.id']);
    const list = out.get(id) ?? [];
    list.push(span);
    out.set(id, list);
  }
  return out;
}

/** What cleanup needs of a worker (any BullMQ version). */
export interface WorkerHandle {
  close(force?: boolean): Promise<void>;
}

/** What cleanup needs of a queue (any BullMQ version). */
export interface QueueHandle {
  obliterate(opts?: { force?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** Closes workers, obliterates and closes queues; never throws (cleanup must not hide a failure). */
export async function cleanup(workers: WorkerHandle[], queues: QueueHandle[]): Promise<void> {
  for (const w of workers.splice(0)) await w.close().catch(() => undefined);
  for (const q of queues.splice(0)) {
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close().catch(() => undefined);
  }
}
