import { traceConsumer } from '@hoptrace/platformatic-kafka';
import { useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { MessagesStream } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { createTopics, runCleanup, streamOf, stringConsumer, stringProducer } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

type Mode = 'raw' | 'traced';
type StringStream = MessagesStream<string, string, string, string>;

/** When the application calls `close()` after the read failed. */
const WHEN = {
  // in the rejection handler itself
  immediately: (close: () => Promise<unknown>) => close(),
  'after 1 microtask': async (close: () => Promise<unknown>) => {
    await null;
    return close();
  },
  'after 2 microtasks': async (close: () => Promise<unknown>) => {
    await null;
    await null;
    return close();
  },
  'after a setImmediate': async (close: () => Promise<unknown>) => {
    await new Promise((resolve) => setImmediate(resolve));
    return close();
  },
} as const;

/** How the application reads the stream until its per-message code throws. */
const READ = {
  'forEach, sync throw': (stream: StringStream) =>
    stream.forEach(() => {
      startClock(stream);
      throw new Error('boom');
    }),
  'forEach, async rejection': (stream: StringStream) =>
    stream.forEach(async () => {
      startClock(stream);
      throw new Error('boom');
    }),
  'reduce, async rejection': (stream: StringStream) =>
    stream.reduce(
      async (): Promise<never> => {
        startClock(stream);
        throw new Error('boom');
      },
      0 as never, // Node's types make the accumulator the reducer's (async) return type
    ),
  'some, async rejection': (stream: StringStream) =>
    stream.some(async () => {
      startClock(stream);
      throw new Error('boom');
    }),
  'for await, body throws': async (stream: StringStream) => {
    for await (const _message of stream) {
      startClock(stream);
      throw new Error('boom');
    }
  },
  'for await, body throws after an await': async (stream: StringStream) => {
    for await (const _message of stream) {
      await null;
      startClock(stream);
      throw new Error('boom');
    }
  },
  'for await, break': async (stream: StringStream) => {
    for await (const _message of stream) {
      startClock(stream);
      break;
    }
    throw new Error('boom');
  },
} as const;

/**
 * A microtask clock started where the application's code throws: `ticks` counts microtask turns since,
 * `destroyedAt` the turn at which the stream was first seen destroyed.
 */
const clock = { ticks: -1, destroyedAt: -1, stream: undefined as StringStream | undefined };
function startClock(stream: StringStream): void {
  clock.ticks = 0;
  clock.destroyedAt = -1;
  const tick = () => {
    if (clock.destroyedAt < 0 && stream.destroyed) clock.destroyedAt = clock.ticks;
    if (++clock.ticks < 30) queueMicrotask(tick);
  };
  queueMicrotask(tick);
}

const settled = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: Error) => `rejected ${error?.name}`,
  );

/** Reads `topic` with `read` and closes the stream `when` the read failed; how each settled. */
async function run(mode: Mode, topic: string, read: keyof typeof READ, when: keyof typeof WHEN | 'in catch') {
  const consumer = stringConsumer();
  const stream = (await streamOf(mode === 'raw' ? consumer : traceConsumer(consumer), [
    topic,
  ])) as StringStream;
  let closing: Promise<string> | undefined;
  let reading: string;
  let seenAt = -1;
  if (when === 'in catch') {
    try {
      await READ[read](stream);
      reading = 'resolved';
    } catch (error) {
      reading = `rejected ${(error as Error).message}`;
      seenAt = clock.ticks;
      closing = settled(stream.close());
    }
  } else {
    reading = await READ[read](stream).then(
      () => 'resolved',
      (error: Error) => {
        seenAt = clock.ticks;
        closing = settled(WHEN[when](() => stream.close()));
        return `rejected ${error.message}`;
      },
    );
  }
  const close = await closing;
  // microtask turns from the throw to the caller seeing the failure, and to the stream's destroy()
  const turns = { seenAt, destroyedAt: clock.destroyedAt };
  return { reading, close, destroyed: stream.destroyed, turns };
}

describe('close() right after a read of a consumer stream failed: raw vs traced', () => {
  it('settles the same whenever close() is called, for forEach, reduce, some and for await', async () => {
    const [topic] = (await createTopics()) as [string];
    await stringProducer().send({ messages: ['a', 'b', 'c'].map((value) => ({ topic, value })) });
    const outcomes: Record<string, unknown> = {};
    for (const read of Object.keys(READ) as (keyof typeof READ)[]) {
      for (const when of [...(Object.keys(WHEN) as (keyof typeof WHEN)[]), 'in catch' as const]) {
        const raw = await run('raw', topic, read, when);
        const traced = await run('traced', topic, read, when);
        outcomes[`${read} / close ${when}`] = { raw, traced };
      }
    }
    for (const [name, { raw, traced }] of Object.entries(outcomes) as [
      string,
      { raw: unknown; traced: unknown },
    ][])
      expect({ name, outcome: traced }).toEqual({ name, outcome: raw });
    // Each traced read started a process span for the message the code threw on or broke at, and
    // `forEach` and `some` (built on `map`) one more for the message their pull had already taken
    // from the stream when they stopped (as they do without hoptrace); each ended once (the harness
    // fails a second end), ERROR with the error where a helper's function threw. Per close timing:
    const perTiming = 2 + 2 + 1 + 2 + 3;
    const processes = tracing.current.spans().filter((s) => s.name === `process ${topic}`);
    expect(processes).toHaveLength(perTiming * 5);
    const failed = processes.filter((s) => s.status.code === SpanStatusCode.ERROR);
    expect(failed).toHaveLength(4 * 5);
    expect(failed.every((s) => s.events.some((e) => e.name === 'exception'))).toBe(true);
    expect(tracing.current.openSpans()).toHaveLength(0);
  }, 120_000);
});
