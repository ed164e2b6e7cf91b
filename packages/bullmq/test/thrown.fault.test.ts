import {
  brokerEndpoint,
  deferred,
  onlySpan,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { traceProcessor } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

function throwing(key: string): object {
  return Object.defineProperty({}, key, {
    get() {
      throw new Error(`${key} getter`);
    },
    enumerable: true,
  });
}

/** Every kind of value a processor may throw. */
const THROWN: ReadonlyArray<readonly [string, () => unknown]> = [
  ['null', () => null],
  ['undefined', () => undefined],
  ['a number', () => 42],
  ['a string', () => 'plain string'],
  ['a plain object', () => ({ code: 'E_PLAIN', message: 'plain object' })],
  [
    'a null-prototype object',
    () => Object.assign(Object.create(null) as object, { message: 'no prototype' }),
  ],
  ['an object whose message getter throws', () => throwing('message')],
  ['an object whose name getter throws', () => Object.assign(throwing('name'), { message: 'named' })],
  [
    'an object whose toString throws',
    () => ({
      message: 'to string',
      toString() {
        throw new Error('toString');
      },
    }),
  ],
];

interface Outcome {
  state: string;
  failedReason: unknown;
  received: unknown;
}

describe.each(BULLMQ_VERSIONS)('BullMQ %s: any thrown value on real Redis', (_label, bullmq) => {
  const workers: WorkerHandle[] = [];
  const queues: QueueHandle[] = [];
  afterEach(async () => cleanup(workers, queues));

  /** Runs one job whose processor throws `value`; what BullMQ made of it. */
  async function run(value: unknown, wrap: boolean): Promise<Outcome & { queue: string }> {
    const connection = brokerEndpoint('redis');
    const name = uniqueQueueName(wrap ? 'thrown-traced' : 'thrown-raw');
    const queue = new bullmq.Queue(name, { connection });
    queues.push(queue);
    const processor = async () => {
      throw value;
    };
    const worker = new bullmq.Worker(name, wrap ? traceProcessor(processor) : processor, { connection });
    workers.push(worker);
    const settled = deferred<unknown>();
    // BullMQ itself may fail to record some values (it reads `err.message`): it reports an error.
    worker.on('failed', (_job, err) => settled.resolve(err));
    worker.on('error', (err) => settled.resolve(err));
    const job = await queue.add('x', {}, { attempts: 1 });
    const received = await settled.promise;
    const stored = await bullmq.Job.fromId(queue, job.id as string);
    return {
      queue: name,
      state: await queue.getJobState(job.id as string),
      failedReason: stored?.failedReason,
      received: received === value ? 'the thrown value' : String((received as Error)?.message),
    };
  }

  it.each(THROWN)(
    '%s: rethrown unchanged (BullMQ records what it records without hoptrace), span ERROR',
    async (_what, make) => {
      const value = make();
      const raw = await run(value, false);
      const traced = await run(value, true);
      expect({ ...traced, queue: '' }).toEqual({ ...raw, queue: '' });
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${traced.queue}`).length === 1,
      );
      const span = onlySpan(spans, `process ${traced.queue}`);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(typeof span.attributes['error.type']).toBe('string');
      expect(tracing.current.openSpans()).toHaveLength(0);
    },
  );
});
