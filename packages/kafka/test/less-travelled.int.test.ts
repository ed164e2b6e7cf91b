/**
 * Less-travelled kafkajs paths, raw against traced (kjsmisc): transactions that commit offsets, fail a
 * send and abort, commit twice; seek and resume from inside handlers; concurrent partitions with a
 * failing message; eachBatch crashes; stop while a manual batch waits. The traced run must observe
 * what the raw run observes, every span must end, and nothing may stay in hoptrace's registries.
 */
import { randomUUID } from 'node:crypto';
import { endOpenSpans } from '@hoptrace/core';
import { traceKafka } from '@hoptrace/kafka';
import { deferred, parentSpanId, sleep, until, useTestTracing } from '@hoptrace/test-kit';
import { CompressionTypes, type ConsumerConfig, type Kafka } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { committedOffsets, createTopics, newKafka, produceValues } from './helpers.ts';

const tracing = useTestTracing();

type Mode = 'raw' | 'traced';

afterEach(() => {
  expect(endOpenSpans()).toBe(0);
});

const name = (what: string) => `kjsmisc-${what}-${randomUUID()}`;

function kafkaOf(mode: Mode): Kafka {
  const base = newKafka(`kjsmisc-${mode}`);
  return mode === 'traced' ? traceKafka(base) : base;
}

async function both<T>(workload: (mode: Mode) => Promise<T>): Promise<T> {
  const raw = await workload('raw');
  const traced = await workload('traced');
  expect(traced).toEqual(raw);
  return raw;
}

/** One new topic (see `createTopics`). */
async function createTopic(
  partitions = 1,
  configEntries?: { name: string; value: string }[],
): Promise<string> {
  return (await createTopics(newKafka(), 1, partitions, configEntries))[0] as string;
}

/**
 * Everything on `topic` as a read-committed (or uncommitted) reader sees it, values only, sorted:
 * at least `expected` messages, and then whatever else the reader finds when it fetches again.
 */
async function readAll(topic: string, expected: number, readUncommitted = false): Promise<string[]> {
  const consumer = newKafka().consumer({ groupId: name('reader'), maxWaitTimeInMs: 100, readUncommitted });
  let fetches = 0;
  consumer.on(consumer.events.FETCH, () => void fetches++);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got: string[] = [];
  await consumer.run({
    eachMessage: async ({ partition, message }) =>
      void got.push(`${partition}:${message.offset}:${message.value?.toString()}`),
  });
  if (expected > 0) await until(() => got.length >= expected, `${expected} messages on ${topic}`);
  // Two more fetches: kafkajs hands a fetch's messages to eachMessage before it fetches again, so
  // once the second has returned the reader has seen everything a reader can see on the topic
  // (with expected 0, it has joined and read it all rather than not read yet).
  const before = fetches;
  await until(() => fetches >= before + 2, `the reader of ${topic} to fetch to the end`);
  await consumer.disconnect();
  return got.sort();
}

function describeError(error: unknown): unknown {
  if (!(error instanceof Error)) return { thrown: error };
  const e = error as Error & { retriable?: unknown; type?: unknown };
  return {
    name: e.name,
    message: e.message.replace(/kjsmisc-[\w-]+/g, 'T'),
    retriable: e.retriable,
    type: e.type,
  };
}

async function outcome<T>(call: () => Promise<T>): Promise<unknown> {
  try {
    await call();
    return 'ok';
  } catch (error) {
    return describeError(error);
  }
}

async function subscribed(mode: Mode, topic: string, config: Partial<ConsumerConfig> = {}) {
  const group = name('group');
  const consumer = kafkaOf(mode).consumer({ groupId: group, maxWaitTimeInMs: 100, ...config });
  const crashes: unknown[] = [];
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    crashes.push([describeError(payload.error), payload.restart, payload.error === lastThrown]),
  );
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  return { group, consumer, crashes };
}

let lastThrown: unknown;
function throwing(value: unknown): never {
  lastThrown = value;
  throw value;
}

const spans = () => tracing.current.spans();

describe('kjsmisc transactions: raw vs traced', () => {
  it('consume-transform-produce: sendBatch (GZIP, two topics) + sendOffsets + commit from eachMessage', async () => {
    await both(async (mode) => {
      const input = await createTopic();
      const outA = await createTopic();
      const outB = await createTopic();
      await produceValues(input, 3);
      const kafka = kafkaOf(mode);
      const producer = kafka.producer({
        transactionalId: name('tx'),
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await producer.connect();
      const { group, consumer } = await subscribed(mode, input, { readUncommitted: false });
      const done: string[] = [];
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ topic, partition, message }) => {
          const tx = await producer.transaction();
          await tx.sendBatch({
            compression: CompressionTypes.GZIP,
            topicMessages: [
              { topic: outA, messages: [{ key: message.key, value: `a-${message.value}` }] },
              { topic: outB, messages: [{ value: `b-${message.value}` }, { value: `b2-${message.value}` }] },
            ],
          });
          await tx.sendOffsets({
            consumerGroupId: group,
            topics: [{ topic, partitions: [{ partition, offset: String(Number(message.offset) + 1) }] }],
          });
          if (message.offset === '1') await tx.abort();
          else await tx.commit();
          done.push(message.offset);
        },
      });
      await until(() => done.length >= 3, 'three transactions');
      await sleep(200);
      await consumer.disconnect();
      await producer.disconnect();
      return {
        done,
        committed: await committedOffsets(group, input),
        a: await readAll(outA, 2),
        b: await readAll(outB, 4),
      };
    });
    const sends = spans().filter((s) => s.name === 'send');
    expect(sends.map((s) => s.attributes['hoptrace.kafka.transaction.outcome'])).toEqual([
      'committed',
      'aborted',
      'committed',
    ]);
    const offsets = spans().filter((s) => s.name.startsWith('send_offsets'));
    expect(offsets.map((s) => s.attributes['hoptrace.kafka.transaction.outcome'])).toEqual([
      'committed',
      'aborted',
      'committed',
    ]);
    // Each transaction's spans are under the process span of the message it consumed.
    const processes = spans().filter((s) => s.name.startsWith('process '));
    expect(processes).toHaveLength(3);
    for (const send of sends)
      expect(processes.map((p) => p.spanContext().spanId)).toContain(parentSpanId(send));
  });

  it('a send that fails inside a transaction (message too large), then abort; then a new transaction commits', async () => {
    await both(async (mode) => {
      const topic = await createTopic(1, [{ name: 'max.message.bytes', value: '2000' }]);
      const kafka = kafkaOf(mode);
      const producer = kafka.producer({
        transactionalId: name('tx'),
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 1, initialRetryTime: 50 },
      });
      await producer.connect();
      const tx = await producer.transaction();
      const first = await outcome(() => tx.send({ topic, messages: [{ value: 'small' }] }));
      const big = await outcome(() => tx.send({ topic, messages: [{ value: 'x'.repeat(10_000) }] }));
      const active = tx.isActive();
      const abort = await outcome(() => tx.abort());
      const again = await outcome(() => tx.abort());
      const tx2 = await producer.transaction();
      const kept = await outcome(() => tx2.send({ topic, messages: [{ value: 'kept' }] }));
      const commit = await outcome(() => tx2.commit());
      const commit2 = await outcome(() => tx2.commit());
      await producer.disconnect();
      return { first, big, active, abort, again, kept, commit, commit2, read: await readAll(topic, 1) };
    });
    const sends = spans().filter((s) => s.name.startsWith('send '));
    expect(
      sends
        .map((s) => [s.attributes['hoptrace.kafka.transaction.outcome'], s.attributes['error.type']])
        .sort(),
    ).toEqual([
      [undefined, 'MESSAGE_TOO_LARGE'],
      ['aborted', 'transaction_aborted'],
      ['committed', undefined],
    ]);
    const settles = spans().filter((s) => s.name.endsWith('_transaction'));
    expect(settles.map((s) => [s.name, s.status.code])).toEqual([
      ['abort_transaction', 0],
      ['abort_transaction', 2],
      ['commit_transaction', 0],
      ['commit_transaction', 2],
    ]);
  });

  it('producer.disconnect() with a transaction open: sends end unknown; sendBatch across topics with acks 0 outside it', async () => {
    await both(async (mode) => {
      const t1 = await createTopic();
      const t2 = await createTopic();
      const kafka = kafkaOf(mode);
      const plain = kafka.producer();
      await plain.connect();
      const reply = await plain.sendBatch({
        acks: 0,
        compression: CompressionTypes.GZIP,
        topicMessages: [
          { topic: t1, messages: [{ value: 'one' }] },
          { topic: t2, messages: [{ value: 'two' }, { value: 'three' }] },
        ],
      });
      await plain.disconnect();
      const producer = kafka.producer({
        transactionalId: name('tx'),
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await producer.connect();
      const tx = await producer.transaction();
      await tx.send({ topic: t1, messages: [{ value: 'open' }] });
      await producer.disconnect();
      return { reply: reply.length, t1: await readAll(t1, 1), t2: await readAll(t2, 2) };
    });
    const open = spans().filter((s) => s.attributes['hoptrace.kafka.transaction.outcome'] === 'unknown');
    expect(open).toHaveLength(1);
  });
});

describe('kjsmisc transactions with sends in flight at commit/abort', () => {
  for (const end of ['commit', 'abort'] as const) {
    it(`${end}() while a send and a sendOffsets are still in flight`, async () => {
      const raw = await both(async (mode) => {
        const topic = await createTopic();
        const group = name('group');
        const kafka = kafkaOf(mode);
        const producer = kafka.producer({
          transactionalId: name('tx'),
          idempotent: true,
          maxInFlightRequests: 1,
        });
        await producer.connect();
        const tx = await producer.transaction();
        await tx.send({ topic, messages: [{ value: 'first' }] });
        const order: unknown[] = [];
        const sent = tx.send({ topic, messages: [{ value: 'late' }] }).then(
          () => order.push('send ok'),
          () => order.push('send failed'),
        );
        const offsets = tx
          .sendOffsets({
            consumerGroupId: group,
            topics: [{ topic, partitions: [{ partition: 0, offset: '5' }] }],
          })
          .then(
            () => order.push('offsets ok'),
            () => order.push('offsets failed'),
          );
        const ended = (end === 'commit' ? tx.commit() : tx.abort()).then(
          () => order.push(`${end} ok`),
          () => order.push(`${end} failed`),
        );
        await Promise.all([sent, offsets, ended]);
        await producer.disconnect();
        const committed = await readAll(topic, end === 'commit' ? 1 : 0);
        return {
          order: order.map((x) => JSON.stringify(x)).sort(),
          committed,
          offsets: await committedOffsets(group, topic),
        };
      });
      const sends = spans().filter((s) => s.name.startsWith('send '));
      // What the spans claim agrees with what a read-committed reader saw.
      const delivered = sends.filter((s) => s.status.code !== 2).length;
      expect({ delivered, raw }).toEqual({ delivered: raw.committed.length, raw });
    });
  }
});

describe('kjsmisc consumer paths: raw vs traced', () => {
  it('consumer.seek back from inside eachMessage; pause and resume in the same handler', async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 4);
      const { group, consumer, crashes } = await subscribed(mode, topic);
      const seen: string[] = [];
      let sought = false;
      let paused = false;
      await consumer.run({
        eachMessage: async ({ topic: t, partition, message }) => {
          seen.push(message.offset);
          if (message.offset === '2' && !sought) {
            sought = true;
            consumer.seek({ topic: t, partition, offset: '0' });
          }
          if (message.offset === '1' && !paused) {
            paused = true;
            consumer.pause([{ topic: t }]);
            await sleep(50);
            consumer.resume([{ topic: t }]);
          }
        },
      });
      await until(() => seen.filter((o) => o === '3').length >= 1 && sought, 'past the seek');
      await sleep(500);
      await consumer.disconnect();
      return { seen: [...new Set(seen)].sort(), crashes, committed: await committedOffsets(group, topic) };
    });
  });

  it('seek from inside eachBatch (autoResolve false), resolve, heartbeat, commitOffsetsIfNecessary', async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 4);
      const { group, consumer } = await subscribed(mode, topic);
      const calls: unknown[] = [];
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isStale }) => {
          const offsets = batch.messages.map((m) => m.offset);
          calls.push(offsets);
          if (calls.length === 1) {
            resolveOffset(offsets[0] as string);
            consumer.seek({ topic: batch.topic, partition: batch.partition, offset: '1' });
            await heartbeat();
            calls.push(['stale', isStale()]);
            await commitOffsetsIfNecessary();
            return;
          }
          for (const o of offsets) resolveOffset(o);
          await heartbeat();
          await commitOffsetsIfNecessary();
        },
      });
      await until(() => calls.length >= 3, 'the batch after the seek');
      await sleep(400);
      await consumer.disconnect();
      return { calls, committed: await committedOffsets(group, topic) };
    });
  });

  it('partitionsConsumedConcurrently 3, one message throws once: the retry is a sibling, offsets as raw', async () => {
    await both(async (mode) => {
      const topic = await createTopic(3);
      const kafka = kafkaOf(mode);
      const producer = kafka.producer();
      await producer.connect();
      for (let p = 0; p < 3; p++)
        await producer.send({
          topic,
          messages: [0, 1, 2].map((i) => ({ partition: p, value: `p${p}-${i}` })),
        });
      await producer.disconnect();
      const { group, consumer, crashes } = await subscribed(mode, topic, {
        retry: { retries: 3, initialRetryTime: 30, maxRetryTime: 60 },
      });
      const seen: string[] = [];
      let failed = false;
      await consumer.run({
        partitionsConsumedConcurrently: 3,
        eachMessage: async ({ message }) => {
          seen.push(String(message.value));
          await sleep(5);
          if (String(message.value) === 'p1-1' && !failed) {
            failed = true;
            throwing(new Error('once'));
          }
        },
      });
      await until(() => new Set(seen).size >= 9, 'all nine');
      await sleep(500);
      await consumer.disconnect();
      return {
        seen: [...new Set(seen)].sort(),
        p11: seen.filter((v) => v === 'p1-1').length,
        crashes: crashes.length,
        committed: await committedOffsets(group, topic),
      };
    });
    const p11 = spans().filter(
      (s) =>
        s.name.startsWith('process ') &&
        s.attributes['messaging.destination.partition.id'] === '1' &&
        s.attributes['kafka.offset'] === 1,
    );
    expect(p11).toHaveLength(2);
    const [a, b] = p11 as [(typeof p11)[0], (typeof p11)[0]];
    expect(parentSpanId(a)).toBe(parentSpanId(b));
    expect(a.spanContext().traceId).toBe(b.spanContext().traceId);
    expect(parentSpanId(b)).not.toBe(a.spanContext().spanId);
  });

  it('eachBatch throws a non-retriable error: CRASH carries it, restart false; spans end', async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 3);
      const { group, consumer, crashes } = await subscribed(mode, topic, {
        retry: { retries: 0, initialRetryTime: 30, restartOnFailure: async () => false },
      });
      const calls: string[][] = [];
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset }) => {
          calls.push(batch.messages.map((m) => m.offset));
          resolveOffset(batch.messages[0]?.offset as string);
          throwing(Object.assign(new TypeError('fatal'), { retriable: false }));
        },
      });
      await until(() => crashes.length > 0, 'the crash');
      await sleep(300);
      await consumer.disconnect();
      return { calls, crashes, committed: await committedOffsets(group, topic) };
    });
    const batches = spans().filter((s) => s.attributes['messaging.batch.message_count'] !== undefined);
    expect(batches).toHaveLength(1);
    expect(batches[0]?.status.code).toBe(2);
  });

  it('eachBatch throws a retriable error once: kafkajs restarts the consumer, the batch comes again', async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 3);
      const { group, consumer, crashes } = await subscribed(mode, topic, {
        retry: { retries: 0, initialRetryTime: 30, maxRetryTime: 60 },
      });
      const calls: string[][] = [];
      await consumer.run({
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset }) => {
          calls.push(batch.messages.map((m) => m.offset));
          resolveOffset(batch.messages[0]?.offset as string);
          if (calls.length === 1) throwing(new Error('transient'));
          for (const m of batch.messages) resolveOffset(m.offset);
        },
      });
      await until(() => calls.length >= 2, 'the retry');
      await sleep(500);
      await consumer.disconnect();
      return { calls, crashes: crashes.length, committed: await committedOffsets(group, topic) };
    });
    // The redelivered messages' spans are siblings under their send span, not nested in the first try.
    const perMessage = spans().filter(
      (s) => s.name.startsWith('process ') && s.attributes['messaging.batch.message_count'] === undefined,
    );
    const second = perMessage.filter((s) => s.attributes['kafka.offset'] === 1);
    expect(second.length).toBeGreaterThanOrEqual(2);
    expect(new Set(second.map((s) => parentSpanId(s))).size).toBe(1);
    expect(second.map((s) => s.spanContext().spanId)).not.toContain(
      parentSpanId(second[0] as (typeof second)[0]),
    );
  });

  it('eachBatch over a transactional topic (committed and aborted), read committed and uncommitted, autoResolve false', async () => {
    const topic = await createTopic();
    const producer = traceKafka(newKafka()).producer({
      transactionalId: name('tx'),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    for (const [i, end] of [
      [0, 'commit'],
      [1, 'abort'],
      [2, 'commit'],
    ] as const) {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: [{ value: `t${i}a` }, { value: `t${i}b` }] });
      await (end === 'commit' ? tx.commit() : tx.abort());
    }
    await producer.disconnect();
    for (const readUncommitted of [false, true]) {
      await both(async (mode) => {
        const { group, consumer } = await subscribed(mode, topic, { readUncommitted });
        const calls: string[][] = [];
        await consumer.run({
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
            calls.push(batch.messages.map((m) => `${m.offset}:${m.value}`));
            for (const m of batch.messages) {
              resolveOffset(m.offset);
              await heartbeat();
            }
          },
        });
        await until(() => calls.flat().some((c) => c.endsWith('t2b')), 'the last');
        await sleep(500);
        await consumer.disconnect();
        return { calls, committed: await committedOffsets(group, topic) };
      });
    }
  });

  it("eachMessage: the payload's pause() and its resume from a timer; heartbeat; commitOffsets from outside while a handler waits", async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 5);
      const { group, consumer } = await subscribed(mode, topic);
      const order: unknown[] = [];
      const gate = deferred();
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message, pause, heartbeat }) => {
          order.push(message.offset);
          await heartbeat();
          if (message.offset === '1') {
            const resume = pause();
            setTimeout(resume, 150);
          }
          if (message.offset === '3') await gate.promise;
        },
      });
      await until(() => order.includes('3'), 'the held one');
      await consumer.commitOffsets([{ topic, partition: 0, offset: '2' }]);
      order.push('committed');
      gate.resolve();
      await until(() => order.includes('4'), 'the last');
      await sleep(300);
      await consumer.disconnect();
      return { order, committed: await committedOffsets(group, topic) };
    });
  });

  it("disconnect() while a 'batch' mode withMessageContext call waits; the call then fails", async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 3);
      const group = name('group');
      const base = newKafka(`kjsmisc-${mode}`);
      const kafka = mode === 'traced' ? traceKafka(base, { batchSpans: 'batch' }) : base;
      const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const order: unknown[] = [];
      const gate = deferred();
      const { withMessageContext } = await import('@hoptrace/kafka');
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) {
            const got = await outcome(() =>
              withMessageContext(m, async () => {
                if (m.offset === '1') {
                  order.push('waiting');
                  await gate.promise;
                  throw new Error('late');
                }
              }),
            );
            order.push([m.offset, got]);
            if (m.offset === '1') throw new Error('batch fails');
            resolveOffset(m.offset);
          }
        },
      });
      await until(() => order.includes('waiting'), 'the call');
      const closed = consumer.disconnect().then(() => order.push('disconnected'));
      await sleep(200);
      gate.resolve();
      await closed;
      return { order, committed: await committedOffsets(group, topic) };
    });
  });

  it('partitionsConsumedConcurrently 3 with eachBatch: one partition throws once while the others wait; then stop() while the other two are held (kafkajs retries the failed one only after they finish)', async () => {
    await both(async (mode) => {
      const topic = await createTopic(3);
      const kafka = kafkaOf(mode);
      const producer = kafka.producer();
      await producer.connect();
      for (let p = 0; p < 3; p++)
        await producer.send({ topic, messages: [0, 1].map((i) => ({ partition: p, value: `p${p}-${i}` })) });
      await producer.disconnect();
      const { group, consumer, crashes } = await subscribed(mode, topic, {
        retry: { retries: 2, initialRetryTime: 30, maxRetryTime: 60 },
      });
      const seen: string[] = [];
      const gate = deferred();
      let failed = false;
      await consumer.run({
        partitionsConsumedConcurrently: 3,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) seen.push(String(m.value));
          if (batch.partition === 2 && !failed) {
            failed = true;
            throwing(new Error('p2 once'));
          }
          resolveOffset(batch.messages[0]?.offset as string);
          await gate.promise;
          resolveOffset(batch.messages[1]?.offset as string);
        },
      });
      await until(() => new Set(seen).size >= 6 && failed, 'all six');
      await sleep(300);
      const stopped = consumer.stop();
      await sleep(200);
      gate.resolve();
      await stopped;
      await consumer.disconnect();
      return {
        seen: [...new Set(seen)].sort(),
        crashes: crashes.length,
        committed: await committedOffsets(group, topic),
      };
    });
  });

  it('stop() called (not awaited) from inside eachBatch, which goes on resolving and committing', async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 4);
      const { group, consumer } = await subscribed(mode, topic);
      const order: unknown[] = [];
      let stopped: Promise<unknown> | undefined;
      await consumer.run({
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, isRunning, commitOffsetsIfNecessary }) => {
          for (const m of batch.messages) {
            resolveOffset(m.offset);
            if (m.offset === '1') {
              stopped = consumer.stop().then(() => order.push('stopped'));
              await sleep(100);
              order.push(['running', isRunning()]);
              await commitOffsetsIfNecessary();
            }
          }
          order.push('returned');
        },
      });
      await until(() => stopped !== undefined, 'the stop');
      await stopped;
      await sleep(200);
      await consumer.disconnect();
      return { order, committed: await committedOffsets(group, topic) };
    });
  });

  it('stop() while a manual batch waits, then it resolves one more and heartbeats', async () => {
    await both(async (mode) => {
      const topic = await createTopic();
      await produceValues(topic, 4);
      const { group, consumer } = await subscribed(mode, topic);
      const order: unknown[] = [];
      const gate = deferred();
      await consumer.run({
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning }) => {
          resolveOffset(batch.messages[0]?.offset as string);
          order.push('waiting');
          await gate.promise;
          resolveOffset(batch.messages[1]?.offset as string);
          order.push(['heartbeat', await outcome(() => heartbeat()), isRunning()]);
        },
      });
      await until(() => order.includes('waiting'), 'the batch');
      const stopped = consumer.stop().then(() => order.push('stopped'));
      await sleep(200);
      gate.resolve();
      await stopped;
      await sleep(200);
      await consumer.disconnect();
      return { order, committed: await committedOffsets(group, topic) };
    });
  });
});
