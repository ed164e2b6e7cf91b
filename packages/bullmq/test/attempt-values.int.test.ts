import { brokerEndpoint, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { traceProcessor, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

// A job hash is data anyone can write: `atm` (attempts made) and `opts.attempts` set straight in
// Redis with HSET reach the processor as whatever BullMQ parses them to (parseInt of `atm`: NaN,
// a negative number, a number past 2^53). A recorded attempt attribute is a count, so it is a
// non-negative safe integer or it is left out.

const tracing = useTestTracing();

describe.each(BULLMQ_VERSIONS)(
  'BullMQ %s: attempt counters written straight into Redis',
  (_label, bullmq) => {
    const { Queue, Worker } = bullmq;
    const workers: WorkerHandle[] = [];
    const queues: QueueHandle[] = [];
    const redis: Redis[] = [];
    afterEach(async () => {
      await cleanup(workers, queues);
      for (const r of redis.splice(0)) r.disconnect();
    });

    it('an atm or opts.attempts that is not a count leaves its attribute out; the processor still runs', async () => {
      const name = uniqueQueueName('harden-atm');
      const queue = new Queue(name, { connection: brokerEndpoint('redis') });
      queues.push(queue);
      const traced = traceQueue(queue);
      const client = new Redis(brokerEndpoint('redis'));
      redis.push(client);
      // [atm written with HSET, opts.attempts written with HSET, expected attempt, expected attempts]
      const cases = [
        ['abc', 3, undefined, 3],
        ['-3', 3, undefined, 3],
        ['99999999999999999999', 3, undefined, 3],
        ['2', 2.5, 3, undefined],
        ['1', 1e300, 2, undefined],
        ['0', 4, 1, 4],
      ] as const;
      const ids: string[] = [];
      for (const [atm, attempts] of cases) {
        const job = await traced.add('j', { atm }, { attempts: 3 });
        const key = `bull:${name}:${job.id}`;
        const opts = JSON.parse((await client.hget(key, 'opts')) ?? '{}') as Record<string, unknown>;
        await client.hset(key, 'atm', atm, 'opts', JSON.stringify({ ...opts, attempts }));
        ids.push(job.id as string);
      }
      const seen: unknown[] = [];
      const worker = new Worker(
        name,
        traceProcessor(async (job) => {
          seen.push(job.attemptsMade);
        }),
        { connection: brokerEndpoint('redis') },
      );
      // BullMQ itself cannot finish a job whose atm is not an integer (its HINCRBY fails): its errors.
      worker.on('error', () => undefined);
      workers.push(worker);
      await until(() => spansNamed(tracing.current.spans(), `process ${name}`).length === cases.length);
      // What BullMQ hands the processor (the reason for the check): NaN, -3 and 1e20 among them.
      expect(seen).toEqual(expect.arrayContaining([Number.NaN, -3, 1e20]));
      const spans = spansNamed(tracing.current.spans(), `process ${name}`);
      cases.forEach(([atm, , attempt, attempts], i) => {
        const span = spans.find((s) => s.attributes['messaging.message.id'] === ids[i]);
        expect(span, atm).toBeDefined();
        expect(span?.attributes['bullmq.job.attempt'], atm).toBe(attempt);
        expect(span?.attributes['bullmq.job.attempts'], atm).toBe(attempts);
      });
    });

    it('a producer records opts.attempts only as a non-negative integer', async () => {
      const name = uniqueQueueName('harden-attempts');
      const queue = new Queue(name, { connection: brokerEndpoint('redis') });
      queues.push(queue);
      const traced = traceQueue(queue);
      await traced.add('fraction', {}, { attempts: 2.5 });
      await traced.add('whole', {}, { attempts: 4 });
      const sends = spansNamed(tracing.current.spans(), `send ${name}`);
      expect(sends.map((s) => s.attributes['bullmq.job.attempts'])).toEqual([undefined, 4]);
    });
  },
);
