/**
 * What the application observes, raw kafkajs against the same client wrapped by hoptrace (through
 * `traceKafka`, and through `traceProducer` / `traceConsumer`): return values, thrown errors (class,
 * message, retriable), kafkajs's instrumentation events, the messages on the wire (without hoptrace's
 * own propagation headers), committed offsets, retries.
 */
import { randomUUID } from 'node:crypto';
import { traceConsumer, traceKafka, traceProducer } from '@hoptrace/kafka';
import { type Deferred, deferred, sleep, until, useTestTracing } from '@hoptrace/test-kit';
import {
  CompressionTypes,
  type Consumer,
  type ConsumerConfig,
  type IHeaders,
  type Kafka,
  type Producer,
  type ProducerConfig,
} from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { committedOffsets, newKafka, produceValues } from './helpers.ts';

const tracing = useTestTracing();

type Mode = 'raw' | 'kafka' | 'parts';
const TRACED: readonly Mode[] = ['kafka', 'parts'];

/** Makes producers and consumers raw, through `traceKafka`, or wrapped one by one. */
function client(mode: Mode) {
  const base = newKafka(`kjsdiff-${mode}`);
  const kafka: Kafka = mode === 'kafka' ? traceKafka(base) : base;
  return {
    kafka,
    producer(config?: ProducerConfig): Producer {
      const producer = kafka.producer(config);
      return mode === 'parts' ? traceProducer(producer) : producer;
    },
    consumer(config: ConsumerConfig): Consumer {
      const consumer = kafka.consumer(config);
      return mode === 'parts' ? traceConsumer(consumer) : consumer;
    },
  };
}

/** Runs the workload raw, then traced both ways; every traced observation must equal the raw one. */
async function differential<T>(workload: (mode: Mode) => Promise<T>): Promise<T> {
  const raw = await workload('raw');
  for (const mode of TRACED) {
    const traced = await workload(mode);
    expect({ mode, observed: traced }).toEqual({ mode, observed: raw });
  }
  return raw;
}

const name = (what: string) => `kjsdiff-${what}-${randomUUID()}`;

async function createTopic(partitions = 1): Promise<string> {
  const topic = name('topic');
  const admin = newKafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

async function endOffsets(topic: string): Promise<string[]> {
  const admin = newKafka().admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.sort((a, b) => a.partition - b.partition).map((p) => p.high);
  } finally {
    await admin.disconnect();
  }
}

const PROPAGATION = new Set(['traceparent', 'tracestate', 'baggage']);

function wireHeaders(headers: IHeaders | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (PROPAGATION.has(k)) continue;
    out[k] = Array.isArray(v) ? v.map((x) => x?.toString('hex')) : v?.toString('hex');
  }
  return out;
}

/** Everything on `topic` (all partitions), as an application would see it, read with a raw client. */
async function readAll(topic: string, expected: number): Promise<unknown[]> {
  const consumer = newKafka().consumer({ groupId: name('reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got: unknown[] = [];
  await consumer.run({
    eachMessage: async ({ partition, message }) =>
      void got.push({
        partition,
        offset: message.offset,
        key: message.key?.toString('hex') ?? null,
        value: message.value?.toString('hex') ?? null,
        // Only a timestamp the sender set is the same run to run.
        timestamp: Number(message.timestamp) < 1_750_000_000_000 ? message.timestamp : 'now',
        headers: wireHeaders(message.headers),
      }),
  });
  await until(() => got.length >= expected, `${expected} messages on ${topic}`);
  await sleep(200);
  await consumer.disconnect();
  return got.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** What the application sees of a rejection: class, name, message, retriable flag, type. */
function describeError(error: unknown): unknown {
  if (!(error instanceof Error)) return { thrown: error };
  const e = error as Error & { retriable?: unknown; type?: unknown };
  return {
    class: e.constructor.name,
    name: e.name,
    message: e.message.replace(/kjsdiff-[\w-]+/g, 'T'),
    retriable: e.retriable,
    type: e.type,
  };
}

async function outcome<T>(call: () => Promise<T>): Promise<unknown> {
  try {
    const value = await call();
    return { ok: value };
  } catch (error) {
    return { error: describeError(error) };
  }
}

/** Replies without what differs run to run (topic names, offsets' base, log append time). */
function reply(metadata: unknown): unknown {
  if (!Array.isArray(metadata)) return metadata;
  return metadata.map(({ topicName, logAppendTime, baseOffset, logStartOffset, ...rest }) => ({
    ...rest,
    topic: typeof topicName === 'string' ? topicName.replace(/kjsdiff-[\w-]+/, 'T') : topicName,
    baseOffset,
  }));
}

describe('kafkajs differential (kjsdiff): producer', () => {
  it('send with invalid arguments: the same error, nothing on the wire, the producer still usable', async () => {
    const raw: { results: Record<string, unknown> } = await differential(async (mode) => {
      const topic = await createTopic();
      const producer = client(mode).producer();
      await producer.connect();
      const bad: [string, () => Promise<unknown>][] = [
        ['no topic', () => producer.send({ messages: [{ value: 'x' }] } as never)],
        ['messages not an array', () => producer.send({ topic, messages: 'x' } as never)],
        ['no messages', () => producer.send({ topic } as never)],
        ['a message without value', () => producer.send({ topic, messages: [{ key: 'k' }] } as never)],
        [
          'sendBatch, a message without value among others',
          () =>
            producer.sendBatch({
              topicMessages: [
                { topic, messages: [{ value: 'a' }, { key: 'k', headers: { h: 'x' } } as never] },
              ],
            }),
        ],
        ['a null message', () => producer.send({ topic, messages: [null] } as never)],
        ['a string message', () => producer.send({ topic, messages: ['x'] } as never)],
        ['headers null', () => producer.send({ topic, messages: [{ value: 'x', headers: null as never }] })],
        [
          'a header value undefined',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { a: undefined } }] }),
        ],
        [
          'traceparent undefined',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { traceparent: undefined } }] }),
        ],
        [
          'traceparent null',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { traceparent: null as never } }] }),
        ],
        [
          'Traceparent (another case) undefined',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { Traceparent: undefined } }] }),
        ],
        [
          'Traceparent (another case) a number',
          () => producer.send({ topic, messages: [{ value: 'x', headers: { Traceparent: 5 as never } }] }),
        ],
        [
          'traceparent [null]',
          () =>
            producer.send({ topic, messages: [{ value: 'x', headers: { traceparent: [null as never] } }] }),
        ],
        [
          'tracestate undefined',
          () =>
            producer.send({
              topic,
              messages: [{ value: 'x', headers: { a: 'b', tracestate: undefined } }],
            }),
        ],
        [
          'sendBatch, headers null',
          () =>
            producer.sendBatch({
              topicMessages: [{ topic, messages: [{ value: 'x', headers: null as never }] }],
            }),
        ],
        ['sendBatch without topicMessages', () => producer.sendBatch({} as never)],
        [
          'sendBatch, messages not an array',
          () => producer.sendBatch({ topicMessages: [{ topic }] } as never),
        ],
      ];
      const results: Record<string, unknown> = {};
      for (const [label, call] of bad) results[label] = await outcome(() => call().then(reply));
      const after = await outcome(() => producer.send({ topic, messages: [{ value: 'ok' }] }).then(reply));
      await producer.disconnect();
      return { results, after, wire: await readAll(topic, 1) };
    });
    // No send span claims success for a call kafkajs failed: the only spans without an error are those
    // of the last send (`sendBatch({})`, which kafkajs answers with [], goes to it untraced).
    expect(Object.keys(raw.results).filter((k) => 'ok' in (raw.results[k] as object))).toEqual([
      'sendBatch without topicMessages',
    ]);
    const unset = tracing.current
      .spans()
      .filter((span) => span.name.startsWith('send') && span.status.code !== 2);
    expect(unset).toHaveLength(TRACED.length);
  });

  it('sendBatch with empty topicMessages, a topic group with no messages', async () => {
    await differential(async (mode) => {
      const topic = await createTopic();
      const producer = client(mode).producer();
      await producer.connect();
      const empty = await outcome(() => producer.sendBatch({ topicMessages: [] }));
      const noMessages = await outcome(() =>
        producer.sendBatch({ topicMessages: [{ topic, messages: [] }] }),
      );
      const sendNone = await outcome(() => producer.send({ topic, messages: [] }).then(reply));
      await producer.disconnect();
      return { empty, noMessages, sendNone, end: await endOffsets(topic) };
    });
  });

  it('acks 0, compression, a Buffer key with an explicit partition and timestamp', async () => {
    await differential(async (mode) => {
      const topic = await createTopic(3);
      const producer = client(mode).producer();
      await producer.connect();
      const key = Buffer.from([0, 255, 1, 254]);
      const headers: IHeaders = { h: Buffer.from([9, 8]), list: ['a', 'b'] };
      const snapshot = JSON.stringify(headers);
      const acks0 = await outcome(() =>
        producer.send({
          topic,
          acks: 0,
          messages: [{ key, value: 'a0', partition: 2, timestamp: '1700000000000' }],
        }),
      );
      const gzip = await outcome(() =>
        producer
          .send({
            topic,
            compression: CompressionTypes.GZIP,
            messages: [
              { key, value: 'g0', partition: 1, headers, timestamp: '1700000000001' },
              { key: 'k', value: null, partition: 1, timestamp: '1700000000002' },
            ],
          })
          .then(reply),
      );
      const batch = await outcome(() =>
        producer
          .sendBatch({
            compression: CompressionTypes.GZIP,
            acks: 1,
            topicMessages: [
              { topic, messages: [{ key, value: 'b0', partition: 0, timestamp: '1700000000003' }] },
            ],
          })
          .then(reply),
      );
      await producer.disconnect();
      return {
        acks0,
        gzip,
        batch,
        unchanged: JSON.stringify(headers) === snapshot,
        wire: await readAll(topic, 4),
      };
    });
  });

  it('a send to a missing topic with allowAutoTopicCreation false', async () => {
    await differential(async (mode) => {
      const producer = client(mode).producer({
        allowAutoTopicCreation: false,
        retry: { retries: 1, initialRetryTime: 50 },
      });
      await producer.connect();
      const missing = await outcome(() =>
        producer.send({ topic: name('missing'), messages: [{ value: 'x' }] }),
      );
      await producer.disconnect();
      return { missing };
    });
  });

  it('disconnect() with sends in flight', async () => {
    await differential(async (mode) => {
      const topic = await createTopic();
      const producer = client(mode).producer();
      await producer.connect();
      // kafkajs retries a request the disconnect cut (a non-idempotent producer may write a message
      // twice, raw too, depending on timing): what is stable is each call's outcome and what arrived.
      const inFlight = Array.from({ length: 5 }, (_, i) =>
        outcome(() => producer.send({ topic, messages: [{ value: `v${i}` }] }).then(() => 'sent')),
      );
      const disconnected = await outcome(() => producer.disconnect());
      const outcomes = await Promise.all(inFlight);
      const late = await outcome(() => producer.send({ topic, messages: [{ value: 'late' }] }));
      const wire = (await readAll(topic, 5)) as { value: string }[];
      return { disconnected, outcomes, late, values: [...new Set(wire.map((m) => m.value))].sort() };
    });
  });
});

/**
 * A consumer (raw or traced, per `mode`) of a fresh topic holding `n` messages, connected and
 * subscribed from the beginning, its events recorded; `config` adds to the group and a short wait.
 */
async function subscribed(mode: Mode, n: number, config: Partial<ConsumerConfig> = {}) {
  const topic = await createTopic();
  await produceValues(topic, n);
  const group = name('group');
  const consumer = client(mode).consumer({ groupId: group, maxWaitTimeInMs: 100, ...config });
  const events = recordEvents(consumer, topic);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  return { topic, group, consumer, events };
}

/** Stops `consumer` while its handler waits on `gate`, then opens the gate; `order` records what resolved when. */
async function stopThenRelease(consumer: Consumer, order: string[], gate: Deferred<void>): Promise<void> {
  const stopped = consumer.stop().then(
    () => void order.push('stop resolved'),
    (e: unknown) => void order.push(`stop rejected ${describeError(e)}`),
  );
  await sleep(200);
  order.push('release');
  gate.resolve();
  await stopped;
  await sleep(200);
  await consumer.disconnect();
}

/**
 * kafkajs's consumer instrumentation events an application may listen to, with the payload fields
 * that do not depend on timing (heartbeats and fetches do, and are counted apart).
 */
function recordEvents(consumer: Consumer, topic: string): { log: unknown[]; heartbeats: () => number } {
  const log: unknown[] = [];
  let heartbeats = 0;
  const e = consumer.events;
  const t = (x: unknown) => (x === topic ? 'T' : x);
  consumer.on(e.HEARTBEAT, () => void heartbeats++);
  consumer.on(e.COMMIT_OFFSETS, ({ payload }) =>
    log.push([
      'commit',
      payload.topics.map((x) => [t(x.topic), x.partitions.map((p) => [p.partition, p.offset])]),
    ]),
  );
  consumer.on(e.START_BATCH_PROCESS, ({ payload }) =>
    log.push(['start_batch', t(payload.topic), payload.partition, payload.batchSize, payload.firstOffset]),
  );
  consumer.on(e.END_BATCH_PROCESS, ({ payload }) =>
    log.push(['end_batch', t(payload.topic), payload.partition, payload.batchSize, payload.lastOffset]),
  );
  consumer.on(e.CRASH, ({ payload }) =>
    log.push([
      'crash',
      describeError(payload.error),
      payload.restart,
      payload.error === lastThrown,
      (payload.error as Error).cause === lastThrown,
    ]),
  );
  consumer.on(e.STOP, () => log.push(['stop']));
  consumer.on(e.DISCONNECT, () => log.push(['disconnect']));
  return { log, heartbeats: () => heartbeats };
}

/** What a handler threw last (kafkajs hands the same object to its crash event). */
let lastThrown: unknown;

function throwing<T>(value: T): never {
  lastThrown = value;
  throw value;
}

describe('kafkajs differential (kjsdiff): consumer', () => {
  it('eachMessage throwing: the same retries, redeliveries, commits and events', async () => {
    await differential(async (mode) => {
      const { topic, group, consumer, events } = await subscribed(mode, 3, {
        retry: { retries: 5, initialRetryTime: 30, maxRetryTime: 60 },
      });
      const seen: string[] = [];
      let failures = 0;
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.offset);
          if (message.offset === '1' && failures < 2) {
            failures++;
            throwing(failures === 1 ? new Error('boom') : 'a string');
          }
        },
      });
      await until(() => seen.includes('2'), 'past the failures');
      await sleep(300);
      await consumer.disconnect();
      return { seen, log: events.log, committed: await committedOffsets(group, topic) };
    });
    const failed = tracing.current
      .spans()
      .filter((s) => s.name.startsWith('process ') && s.status.code === 2);
    expect(failed).toHaveLength(2 * TRACED.length);
  });

  it('eachMessage throwing a non-retriable error: the crash event carries the thrown object', async () => {
    await differential(async (mode) => {
      const { topic, group, consumer, events } = await subscribed(mode, 2, {
        retry: { retries: 1, initialRetryTime: 30, restartOnFailure: async () => false },
      });
      const seen: string[] = [];
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.offset);
          if (message.offset === '1') throwing(Object.assign(new TypeError('fatal'), { retriable: false }));
        },
      });
      await until(() => events.log.some((x) => (x as string[])[0] === 'crash'), 'the crash');
      await sleep(300);
      await consumer.disconnect();
      return { seen, log: events.log, committed: await committedOffsets(group, topic) };
    });
  });

  it('eachBatch with eachBatchAutoResolve false, autoCommit false and commitOffsetsIfNecessary', async () => {
    await differential(async (mode) => {
      const { topic, group, consumer, events } = await subscribed(mode, 4);
      const calls: unknown[] = [];
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: false,
        eachBatch: async (p) => {
          const offsets = p.batch.messages.map((m) => m.offset);
          if (calls.length === 0) {
            p.resolveOffset(offsets[1] as string);
            const necessary = await p.commitOffsetsIfNecessary();
            const unc1 = p.uncommittedOffsets();
            const explicit = await p.commitOffsetsIfNecessary({
              topics: [{ topic, partitions: [{ partition: 0, offset: '2' }] }],
            });
            calls.push({
              offsets,
              necessary,
              unc1,
              explicit,
              unc2: p.uncommittedOffsets(),
              hb: await p.heartbeat(),
            });
            return;
          }
          calls.push({ offsets, running: p.isRunning(), stale: p.isStale() });
          for (const offset of offsets) p.resolveOffset(offset);
          await p.commitOffsetsIfNecessary();
        },
      });
      await until(() => calls.length >= 2, 'the redelivery');
      await sleep(300);
      await consumer.disconnect();
      return {
        calls: JSON.parse(JSON.stringify(calls).replaceAll(topic, 'T')),
        log: events.log,
        committed: await committedOffsets(group, topic),
      };
    });
  });

  it('pause() inside eachMessage and eachBatch, resume later', async () => {
    await differential(async (mode) => {
      const { consumer, events } = await subscribed(mode, 4);
      const seen: unknown[] = [];
      await consumer.run({
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, pause, resolveOffset }) => {
          for (const m of batch.messages) {
            seen.push(m.offset);
            resolveOffset(m.offset);
            if (m.offset === '1' && !seen.includes('paused')) {
              seen.push('paused');
              const resume = pause();
              setTimeout(resume, 200);
              return;
            }
          }
        },
      });
      await until(() => seen.includes('3'), 'all four');
      await sleep(300);
      const paused = consumer.paused();
      await consumer.disconnect();
      return { seen, paused, log: events.log };
    });
  });

  it('stop() while eachMessage runs; the handler throws after stop', async () => {
    await differential(async (mode) => {
      const { topic, group, consumer, events } = await subscribed(mode, 3);
      const order: string[] = [];
      const gate = deferred();
      await consumer.run({
        eachMessage: async ({ message }) => {
          order.push(`handle ${message.offset}`);
          if (message.offset === '1') {
            await gate.promise;
            order.push('handler throws');
            throwing(new Error('after stop'));
          }
        },
      });
      await until(() => order.includes('handle 1'), 'the second message');
      await stopThenRelease(consumer, order, gate);
      return { order, log: events.log, committed: await committedOffsets(group, topic) };
    });
    // The delivery the handler failed is not a success.
    const processes = tracing.current.spans().filter((s) => s.name.startsWith('process '));
    const second = processes.filter((s) => s.attributes['kafka.offset'] === 1);
    expect(second).toHaveLength(TRACED.length);
    for (const span of second) expect(span.status.code).toBe(2);
  });

  it('stop() while eachBatch runs; the handler throws after stop', async () => {
    await differential(async (mode) => {
      const { topic, group, consumer, events } = await subscribed(mode, 3);
      const order: string[] = [];
      const gate = deferred();
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset, isRunning }) => {
          const first = batch.messages[0] as { offset: string };
          order.push(`batch ${first.offset}`);
          resolveOffset(first.offset);
          await gate.promise;
          order.push(`running ${isRunning()}`);
          throwing(new Error('after stop'));
        },
      });
      await until(() => order.length > 0, 'the batch');
      await stopThenRelease(consumer, order, gate);
      return { order, log: events.log, committed: await committedOffsets(group, topic) };
    });
    const processes = tracing.current.spans().filter((s) => s.name.startsWith('process '));
    const batches = processes.filter((s) => s.attributes['messaging.batch.message_count'] !== undefined);
    expect(batches).toHaveLength(TRACED.length);
    for (const span of batches) expect(span.status.code).toBe(2);
  });

  it('disconnect() called from inside eachMessage, then the handler throws', async () => {
    await differential(async (mode) => {
      const { topic, group, consumer, events } = await subscribed(mode, 3);
      const order: string[] = [];
      let disconnected: Promise<void> | undefined;
      await consumer.run({
        eachMessage: async ({ message }) => {
          order.push(`handle ${message.offset}`);
          if (message.offset === '1') {
            disconnected = consumer.disconnect().then(
              () => void order.push('disconnect resolved'),
              (e: unknown) => void order.push(`disconnect rejected ${JSON.stringify(describeError(e))}`),
            );
            await sleep(100);
            order.push('handler throws');
            throwing(new Error('after disconnect'));
          }
        },
      });
      await until(() => disconnected !== undefined, 'the second message');
      await disconnected;
      await sleep(200);
      return { order, log: events.log, committed: await committedOffsets(group, topic) };
    });
    const failed = tracing.current
      .spans()
      .filter((s) => s.name.startsWith('process ') && s.attributes['kafka.offset'] === 1);
    expect(failed).toHaveLength(TRACED.length);
    for (const span of failed) expect(span.status.code).toBe(2);
  });
});
