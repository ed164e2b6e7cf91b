import { traceKafka } from '@hoptrace/kafka';
import { sleep, until, useTestTracing } from '@hoptrace/test-kit';
import type { EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { committedOffsets, createTopics, groupId, newKafka, produceValues } from './helpers.ts';

const tracing = useTestTracing();

type Mode = 'raw' | 'traced';

function client(mode: Mode): Kafka {
  const kafka = newKafka(`diff-${mode}`);
  return mode === 'raw' ? kafka : traceKafka(kafka);
}

/** A consumer of `kafka` in `group`, connected and subscribed to `topics` from the beginning. */
async function subscribed(kafka: Kafka, topics: string[], group = groupId(), extra: object = {}) {
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100, ...extra });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  return consumer;
}

/** Runs the same workload raw and traced; returns both observations. */
async function both<T>(workload: (mode: Mode) => Promise<T>): Promise<{ raw: T; traced: T }> {
  const raw = await workload('raw');
  const traced = await workload('traced');
  return { raw, traced };
}

function cleanHeaders(headers: IHeaders | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (k === 'traceparent' || k === 'tracestate' || k === 'baggage') continue;
    out[k] = Array.isArray(v) ? v.map((x) => x?.toString()) : v?.toString();
  }
  return out;
}

describe('kafkajs differential: raw vs traced', () => {
  it('eachBatch manual resolve + heartbeat + commitOffsetsIfNecessary, then throw; retry', async () => {
    const { raw, traced } = await both(async (mode) => {
      const kafka = client(mode);
      const [topic] = (await createTopics(kafka)) as [string];
      await produceValues(topic, 4);
      const group = groupId();
      const consumer = await subscribed(kafka, [topic], group, {
        retry: { initialRetryTime: 50, retries: 3 },
      });
      const calls: unknown[] = [];
      let done = false;
      await consumer.run({
        eachBatchAutoResolve: false,
        eachBatch: async (p: EachBatchPayload) => {
          const offsets = p.batch.messages.map((m) => m.offset);
          if (calls.length === 0) {
            p.resolveOffset(offsets[0] as string);
            p.resolveOffset(offsets[1] as string);
            const hb = await p.heartbeat();
            const c = await p.commitOffsetsIfNecessary();
            calls.push({
              offsets,
              hb,
              c,
              unc: p.uncommittedOffsets(),
              run: p.isRunning(),
              stale: p.isStale(),
            });
            throw new Error('after two');
          }
          for (const o of offsets) p.resolveOffset(o);
          calls.push({ offsets, unc: p.uncommittedOffsets() });
          done = true;
        },
      });
      await until(() => done, 'retry');
      await sleep(300);
      await consumer.disconnect();
      return {
        calls: JSON.parse(JSON.stringify(calls).replaceAll(topic, 'T')),
        committed: await committedOffsets(group, topic, kafka),
      };
    });
    expect(traced).toEqual(raw);
    const processes = tracing.current.spans().filter((s) => s.name.startsWith('process '));
    expect(processes).toHaveLength(2 + 4 + 2);
  });

  it('autoCommit false with consumer.commitOffsets from eachMessage; then a new member resumes there', async () => {
    const { raw, traced } = await both(async (mode) => {
      const kafka = client(mode);
      const [topic] = (await createTopics(kafka)) as [string];
      await produceValues(topic, 5);
      const group = groupId();
      const consumer = await subscribed(kafka, [topic], group);
      const seen: string[] = [];
      const results: unknown[] = [];
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message, partition }) => {
          seen.push(message.offset);
          if (message.offset === '1') {
            results.push(
              await consumer.commitOffsets([
                { topic, partition, offset: String(Number(message.offset) + 1) },
              ]),
            );
          }
        },
      });
      await until(() => seen.length === 5, 'five');
      await sleep(300);
      await consumer.disconnect();
      const after = await committedOffsets(group, topic, kafka);
      const second = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
      await second.connect();
      await second.subscribe({ topics: [topic], fromBeginning: true });
      const again: string[] = [];
      await second.run({ eachMessage: async ({ message }) => void again.push(message.offset) });
      await until(() => again.length === 3, 'three again');
      await sleep(300);
      await second.disconnect();
      return { seen, results, after, again };
    });
    expect(traced).toEqual(raw);
  });

  it('pause/resume from eachMessage and seek during eachBatch (isStale)', async () => {
    const { raw, traced } = await both(async (mode) => {
      const kafka = client(mode);
      const [topic] = (await createTopics(kafka)) as [string];
      await produceValues(topic, 4);
      const consumer = await subscribed(kafka, [topic]);
      const seen: string[] = [];
      await consumer.run({
        eachMessage: async ({ message, pause }) => {
          seen.push(message.offset);
          if (message.offset === '1' && seen.length === 2) {
            const resume = pause();
            setTimeout(resume, 200);
          }
        },
      });
      await until(() => seen.length === 4, 'four');
      await consumer.stop();
      await produceValues(topic, 4);
      // eachBatch now, seeking back once mid-batch.
      const log: unknown[] = [];
      let seeks = 0;
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset, isStale }) => {
          for (const m of batch.messages) {
            log.push(m.offset);
            resolveOffset(m.offset);
            if (m.offset === '6' && seeks === 0) {
              seeks++;
              consumer.seek({ topic, partition: 0, offset: '5' });
            }
            if (isStale()) {
              log.push('stale');
              break;
            }
          }
        },
      });
      await until(() => log.filter((x) => x === '7').length >= 1 && log.length >= 7, 'after seek').catch(
        (e) => {
          throw new Error(`${mode} ${JSON.stringify({ seen, log })} ${e}`);
        },
      );
      await sleep(300);
      await consumer.disconnect();
      return { seen, log, paused: consumer.paused() };
    });
    expect(traced).toEqual(raw);
  });

  it('stop() then run() again with another handler; committed offsets', async () => {
    const { raw, traced } = await both(async (mode) => {
      const kafka = client(mode);
      const [topic] = (await createTopics(kafka)) as [string];
      await produceValues(topic, 3);
      const group = groupId();
      const consumer = await subscribed(kafka, [topic], group);
      const first: string[] = [];
      await consumer.run({ eachMessage: async ({ message }) => void first.push(message.offset) });
      await until(() => first.length === 3, 'three');
      await consumer.stop();
      const c1 = await committedOffsets(group, topic, kafka);
      await produceValues(topic, 2);
      const second: string[] = [];
      await consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) second.push(m.offset);
        },
      });
      await until(() => second.length === 2, 'two');
      await consumer.stop();
      await consumer.stop();
      await consumer.disconnect();
      return { first, c1, second, c2: await committedOffsets(group, topic, kafka) };
    });
    expect(traced).toEqual(raw);
  });

  it('a handler returning a value whose then getter throws: kafkajs retries it as a failure, and the spans say so', async () => {
    const strict = () =>
      new Proxy({} as Record<string, unknown>, {
        get(_target, property) {
          if (property === 'then') throw new Error('strict: no then');
          return undefined;
        },
      });
    for (const mode of ['eachMessage', 'eachBatch'] as const) {
      tracing.current.reset();
      const { raw, traced } = await both(async (m) => {
        const kafka = client(m);
        const [topic] = (await createTopics(kafka)) as [string];
        await produceValues(topic, 1);
        const consumer = await subscribed(kafka, [topic], groupId(), { retry: { retries: 0 } });
        const calls: string[] = [];
        const handler = () => {
          // The first call returns the strict value (kafkajs's await throws), the second succeeds.
          calls.push(`call ${calls.length + 1}`);
          return (calls.length === 1 ? strict() : undefined) as unknown as Promise<void>;
        };
        await consumer.run(mode === 'eachMessage' ? { eachMessage: handler } : { eachBatch: handler });
        await until(() => calls.length >= 2, 'the retry');
        await consumer.disconnect();
        return { calls: calls.slice(0, 2), topic };
      });
      expect(traced.calls).toEqual(raw.calls);
      const processes = tracing.current.spans().filter((s) => s.name === `process ${traced.topic}`);
      // eachMessage: a span per call; eachBatch: the batch span and the message span of each call.
      expect(processes.length).toBe(mode === 'eachMessage' ? 2 : 4);
      // The failed call's span (eachBatch: its batch span; the message span there ends unresolved).
      const failed = processes.filter((s) => s.status.code === 2);
      expect(failed.length).toBe(1);
      expect(failed[0]?.events.some((e) => e.name === 'exception')).toBe(true);
      if (mode === 'eachBatch')
        expect(processes.filter((s) => s.attributes['hoptrace.message.unresolved'] === true)).toHaveLength(1);
    }
  });

  it('sendBatch over topics with array and Buffer headers; acks 0; reply shape', async () => {
    const { raw, traced } = await both(async (mode) => {
      const kafka = client(mode);
      const [a, b] = (await createTopics(kafka, 2, 2)) as [string, string];
      const producer = kafka.producer();
      await producer.connect();
      const headersA: IHeaders = { multi: ['x', Buffer.from('y')], buf: Buffer.from([1, 2, 3]) };
      const headersB: IHeaders = { traceparent: ['not-a-traceparent'], s: 'z' };
      const before = JSON.stringify([headersA, headersB]);
      const reply = await producer.sendBatch({
        topicMessages: [
          {
            topic: a,
            messages: [
              { value: 'a0', headers: headersA, partition: 1 },
              { value: 'a1', partition: 0 },
            ],
          },
          { topic: b, messages: [{ value: 'b0', headers: headersB, partition: 0 }] },
          { topic: a, messages: [{ value: 'a2', partition: 1 }] },
        ],
      });
      const acks0 = await producer.send({ topic: b, acks: 0, messages: [{ value: 'b1', partition: 1 }] });
      await producer.disconnect();
      const consumer = await subscribed(newKafka(), [a, b]);
      const got: unknown[] = [];
      await consumer.run({
        eachMessage: async ({
          topic,
          partition,
          message,
        }: {
          topic: string;
          partition: number;
          message: KafkaMessage;
        }) =>
          void got.push([
            topic === a ? 'a' : 'b',
            partition,
            message.value?.toString(),
            cleanHeaders(message.headers),
          ]),
      });
      await until(() => got.length === 5, 'five');
      await consumer.disconnect();
      got.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
      return {
        reply: reply
          .map((r) => ({ ...r, topicName: r.topicName === a ? 'a' : 'b' }))
          .sort((x, y) => `${x.topicName}${x.partition}`.localeCompare(`${y.topicName}${y.partition}`))
          .map(({ logAppendTime, ...r }) => r),
        acks0,
        got,
        unchanged: JSON.stringify([headersA, headersB]) === before,
      };
    });
    expect(traced).toEqual(raw);
  });

  it('send to a missing topic with allowAutoTopicCreation false', async () => {
    const { raw, traced } = await both(async (mode) => {
      const kafka = client(mode);
      const producer = kafka.producer({
        allowAutoTopicCreation: false,
        retry: { retries: 1, initialRetryTime: 50 },
      });
      await producer.connect();
      const error = await producer.send({ topic: `missing-${groupId()}`, messages: [{ value: 'x' }] }).then(
        () => undefined,
        (e: unknown) => e as Error & { retriable?: boolean; type?: string },
      );
      await producer.disconnect();
      return {
        name: error?.name,
        type: error?.type,
        retriable: error?.retriable,
        message: error?.message.replace(/missing-\S+/, ''),
      };
    });
    expect(traced).toEqual(raw);
    expect(raw.name).toBeDefined();
  });

  it('transaction: sendOffsets then abort; a read-committed consumer sees nothing, the group keeps no offset', async () => {
    const { raw, traced } = await both(async (mode) => {
      const kafka = client(mode);
      const [topic] = (await createTopics(kafka)) as [string];
      const producer = kafka.producer({
        transactionalId: `tx-${topic}`,
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await producer.connect();
      const group = groupId();
      const tx = await producer.transaction();
      await tx.send({ topic, messages: [{ value: 'aborted' }] });
      await tx.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }],
      });
      await tx.abort();
      const active = tx.isActive();
      const late = await tx.send({ topic, messages: [{ value: 'late' }] }).then(
        () => 'ok',
        (e: Error) => `${e.name}: ${e.message}`,
      );
      const tx2 = await producer.transaction();
      await tx2.send({ topic, messages: [{ value: 'kept' }] });
      await tx2.commit();
      await producer.disconnect();
      const consumer = await subscribed(newKafka(), [topic]);
      const got: string[] = [];
      await consumer.run({
        eachMessage: async ({ message }) => void got.push(`${message.offset}:${message.value}`),
      });
      await until(() => got.length === 1, 'one');
      await sleep(300);
      await consumer.disconnect();
      return { active, late, got, offsets: await committedOffsets(group, topic, kafka) };
    });
    expect(traced).toEqual(raw);
    const outcomes = tracing.current
      .spans()
      .filter((span) => span.name.startsWith('send ') && !span.name.startsWith('send_offsets'))
      .map((span) => [span.attributes['hoptrace.kafka.transaction.outcome'], span.attributes['error.type']]);
    // aborted, the late send kafkajs refused (not held: its own error), committed
    expect(outcomes).toHaveLength(3);
    expect(outcomes[0]).toEqual(['aborted', 'transaction_aborted']);
    expect(outcomes[1]?.[0]).toBeUndefined();
    expect(outcomes[1]?.[1]).toBeDefined();
    expect(outcomes[2]).toEqual(['committed', undefined]);
  });
});
