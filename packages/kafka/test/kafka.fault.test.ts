import { randomUUID } from 'node:crypto';
import { ATTR_ERROR_TYPE } from '@hoptrace/core/adapter';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/kafka';
import {
  brokerEndpoint,
  parentSpanId,
  spansNamed,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { type LocalKafka, startLocalKafka } from '@hoptrace/test-kit/harness';
import { context, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { type Consumer, type IHeaders, Kafka, type KafkaMessage, logLevel, type Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

function track<T extends Producer | Consumer>(client: T): T {
  cleanup.push(() => client.disconnect());
  return client;
}

/** Header values as kafkajs hands them to consumers: Buffers, arrays of Buffers for repeats. */
function asDelivered(value: IHeaders[string]): Buffer | Buffer[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => Buffer.from(v));
  return Buffer.from(value);
}

describe('foreign and malformed headers', () => {
  const nonUtf8 = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]);
  const cases: Array<[string, IHeaders]> = [
    ['a non-UTF-8 traceparent', { traceparent: nonUtf8, other: nonUtf8 }],
    ['a broken traceparent', { traceparent: '00-zzzz-not-a-context-01', tracestate: 'a=b' }],
    ['an all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` }],
    ['repeated (array) headers', { traceparent: ['garbage', 'more garbage'], tag: ['a', Buffer.from('b')] }],
    [
      'huge values',
      { traceparent: 'x'.repeat(200_000), baggage: `k=${'v'.repeat(100_000)}`, big: 'y'.repeat(300_000) },
    ],
  ];

  it.each(cases)('delivers a message with %s unaltered and starts a new trace', async (_name, headers) => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const value = Buffer.from([0x00, 0xff, 0x10, 0x80]);
    const raw = track(kafka.producer());
    await raw.connect();
    await raw.send({ topic, messages: [{ key: Buffer.from([0xff]), value, headers }] });

    const received: KafkaMessage[] = [];
    const consumer = track(traceConsumer(kafka.consumer({ groupId: groupId() })));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          withMessageContext(message, () => received.push(message));
        }
      },
    });
    const all = await waitForSpans(
      tracing.current.spans,
      (s) => spansNamed(s, `process ${topic}`).length === 2,
    );
    expect(received).toHaveLength(1);
    const message = received[0] as KafkaMessage;
    expect(Buffer.compare(message.value as Buffer, value)).toBe(0);
    expect(Object.keys(message.headers ?? {}).sort()).toEqual(Object.keys(headers).sort());
    for (const key of Object.keys(headers)) {
      expect(message.headers?.[key]).toEqual(asDelivered(headers[key]));
    }
    for (const span of spansNamed(all, `process ${topic}`)) {
      expect(parentSpanId(span)).toBeUndefined();
      expect(span.links).toHaveLength(0);
      expect(span.attributes['kafka.message.key']).toBeUndefined();
    }
  });

  it('sends foreign headers through a traced producer without touching them', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = track(traceProducer(kafka.producer()));
    await producer.connect();
    const headers: IHeaders = { traceparent: 'broken', bin: Buffer.from([0xff, 0x00]), list: ['a', 'b'] };
    const copy = { ...headers };
    await producer.send({ topic, messages: [{ value: 'v', headers }] });
    expect(headers).toEqual(copy);
    const received: KafkaMessage[] = [];
    const consumer = track(kafka.consumer({ groupId: groupId() }));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void received.push(message) });
    await until(() => received.length === 1, 'the raw consumer');
    const delivered = received[0]?.headers ?? {};
    expect(Object.keys(delivered).sort()).toEqual(['bin', 'list', 'traceparent']);
    expect(delivered.traceparent).toEqual(Buffer.from('broken'));
    expect(delivered.bin).toEqual(Buffer.from([0xff, 0x00]));
    expect(delivered.list).toEqual([Buffer.from('a'), Buffer.from('b')]);
  });
});

describe('the broker goes away mid-stream (private broker on 19092)', () => {
  let broker: LocalKafka | undefined;
  beforeAll(async () => {
    broker = await startLocalKafka({ port: 19092 });
  }, 120_000);
  afterAll(async () => {
    if (broker) {
      try {
        process.kill(broker.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await broker.stop();
    }
  });

  it('leaves no span open, throws nothing from hoptrace, and processes every produced message', async () => {
    const local = broker as LocalKafka;
    const kafka = new Kafka({
      clientId: 'fault',
      brokers: local.brokers,
      logLevel: logLevel.NOTHING,
      requestTimeout: 3000,
      connectionTimeout: 1000,
      retry: { retries: 20, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = track(traceProducer(kafka.producer()));
    await producer.connect();
    const consumer = track(
      traceConsumer(
        kafka.consumer({ groupId: `fault-${randomUUID()}`, sessionTimeout: 10_000, heartbeatInterval: 1000 }),
      ),
    );
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const processed = new Set<string>();
    const activeMatches: boolean[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        activeMatches.push(trace.getActiveSpan() !== undefined);
        processed.add(message.value?.toString() ?? '');
      },
    });
    const acknowledged = new Set<string>();
    const sendWithRetry = async (id: string) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          await producer.send({ topic, messages: [{ value: id }] });
          acknowledged.add(id);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
    for (let i = 0; i < 10; i++) await sendWithRetry(`before-${i}`);
    await until(() => processed.size === 10, 'the first ten messages');

    // The outage: the broker process is frozen; sends issued now hang, time out and are retried.
    process.kill(local.pid, 'SIGSTOP');
    const outageStart = Date.now();
    const during = Promise.all(Array.from({ length: 10 }, (_, i) => sendWithRetry(`during-${i}`)));
    await new Promise((r) => setTimeout(r, 6000));
    process.kill(local.pid, 'SIGCONT');
    await during;
    // The sends issued during the outage could only complete after it: the stream really broke.
    expect(Date.now() - outageStart).toBeGreaterThanOrEqual(6000);
    for (let i = 0; i < 10; i++) await sendWithRetry(`after-${i}`);

    expect(acknowledged.size).toBe(30);
    await until(
      () => [...acknowledged].every((id) => processed.has(id)),
      'every acknowledged message',
      90_000,
    );
    expect(activeMatches.every(Boolean)).toBe(true);
    await consumer.disconnect();
    await producer.disconnect();
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(spansNamed(tracing.current.spans(), `process ${topic}`).length).toBeGreaterThanOrEqual(30);
    const failedSends = spansNamed(tracing.current.spans(), `send ${topic}`).filter(
      (s) => s.status.code === 2,
    );
    for (const span of failedSends) expect(span.attributes['error.type']).toBeTypeOf('string');
  });

  it('a handler and a send in flight when the broker freezes: every span ends, the send fails with its own error', async () => {
    const local = broker as LocalKafka;
    const kafka = new Kafka({
      clientId: 'fault-in-flight',
      brokers: local.brokers,
      logLevel: logLevel.NOTHING,
      requestTimeout: 2000,
      connectionTimeout: 1000,
      retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
    });
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = track(traceProducer(kafka.producer()));
    await producer.connect();
    const consumer = track(
      traceConsumer(
        kafka.consumer({ groupId: `fault-${randomUUID()}`, sessionTimeout: 10_000, heartbeatInterval: 1000 }),
      ),
    );
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    await consumer.run({
      eachMessage: async () => {
        started();
        await released;
      },
    });
    await producer.send({ topic, messages: [{ value: 'hold' }] });
    await handlerStarted;

    process.kill(local.pid, 'SIGSTOP');
    let failure: unknown;
    try {
      failure = await producer.send({ topic, messages: [{ value: 'lost' }] }).then(
        () => undefined,
        (error: unknown) => error,
      );
      release();
    } finally {
      process.kill(local.pid, 'SIGCONT');
    }
    await consumer.disconnect();
    await producer.disconnect();

    expect(failure).toBeInstanceOf(Error);
    expect(tracing.current.openSpans()).toHaveLength(0);
    const sends = spansNamed(tracing.current.spans(), `send ${topic}`);
    expect(sends).toHaveLength(2);
    const lost = sends.find((s) => s.status.code === 2);
    expect(lost?.attributes['error.type']).toBeTypeOf('string');
    expect(spansNamed(tracing.current.spans(), `process ${topic}`).length).toBeGreaterThanOrEqual(1);
  });
});

describe('the broker process is stopped and a new one started (private broker on 19092)', () => {
  let broker: LocalKafka | undefined;
  beforeAll(async () => {
    broker = await startLocalKafka({ port: 19092 });
  }, 120_000);
  afterAll(async () => {
    await broker?.stop();
  });

  it('recovers: spans all end, nothing throws from hoptrace, messages sent after the restart are processed', async () => {
    const kafka = new Kafka({
      clientId: 'fault-restart',
      brokers: (broker as LocalKafka).brokers,
      logLevel: logLevel.NOTHING,
      requestTimeout: 3000,
      connectionTimeout: 1000,
      retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = track(traceProducer(kafka.producer()));
    await producer.connect();
    const consumer = track(
      traceConsumer(
        kafka.consumer({ groupId: `fault-${randomUUID()}`, sessionTimeout: 10_000, heartbeatInterval: 1000 }),
      ),
    );
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const processed = new Set<string>();
    await consumer.run({
      eachMessage: async ({ message }) => {
        processed.add(message.value?.toString() ?? '');
      },
    });
    const sendWithRetry = async (id: string): Promise<boolean> => {
      for (let attempt = 0; attempt < 60; attempt++) {
        try {
          await producer.send({ topic, messages: [{ value: id }] });
          return true;
        } catch {
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      return false;
    };
    for (let i = 0; i < 5; i++) expect(await sendWithRetry(`before-${i}`)).toBe(true);
    await until(() => processed.size === 5, 'the first messages');

    await (broker as LocalKafka).stop();
    broker = undefined;
    await new Promise((r) => setTimeout(r, 2000));
    // A new broker on the same port, with an empty data directory (the topic is recreated on send).
    broker = await startLocalKafka({ port: 19092 });
    const after = Array.from({ length: 5 }, (_, i) => `after-${i}`);
    for (const id of after) expect(await sendWithRetry(id)).toBe(true);
    await until(() => after.every((id) => processed.has(id)), 'the messages sent after the restart', 100_000);
    await consumer.disconnect();
    await producer.disconnect();
    expect(tracing.current.openSpans()).toHaveLength(0);
    const processes = spansNamed(tracing.current.spans(), `process ${topic}`);
    expect(processes.length).toBeGreaterThanOrEqual(10);
  }, 240_000);
});

describe('a consumer group rebalance while handlers are in flight (shared broker)', () => {
  it.each(['eachMessage', 'eachBatch'] as const)(
    '%s: the interrupted handler ends its span with the rebalance error, every delivery is traced, nothing stays open',
    async (mode) => {
      const kafka = newKafka('rebalance');
      const [topic] = (await createTopics(kafka, 1, 2)) as [string];
      const raw = track(kafka.producer());
      await raw.connect();
      const values = Array.from({ length: 20 }, (_, i) => `m${i}`);
      await raw.send({ topic, messages: values.map((value) => ({ key: value, value })) });
      const group = groupId();
      const processed = new Set<string>();
      let invocations = 0;
      let interrupted: unknown;
      let firstStarted!: () => void;
      const started = new Promise<void>((resolve) => {
        firstStarted = resolve;
      });
      /** The first call keeps heartbeating until the heartbeat reports the rebalance, then rethrows it. */
      const holdUntilRebalance = async (heartbeat: () => Promise<void>) => {
        firstStarted();
        for (let i = 0; i < 300; i++) {
          await new Promise((r) => setTimeout(r, 100));
          try {
            await heartbeat();
          } catch (error) {
            interrupted = error;
            throw error;
          }
        }
      };
      const consumerConfig = { groupId: group, heartbeatInterval: 100, sessionTimeout: 10_000 };
      const first = track(traceConsumer(kafka.consumer(consumerConfig)));
      const second = track(traceConsumer(kafka.consumer(consumerConfig)));
      const run = async (consumer: Consumer) => {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        if (mode === 'eachMessage') {
          await consumer.run({
            eachMessage: async ({ message, heartbeat }) => {
              invocations++;
              if (invocations === 1) await holdUntilRebalance(heartbeat);
              processed.add(String(message.value));
            },
          });
        } else {
          await consumer.run({
            eachBatch: async ({ batch, heartbeat, resolveOffset }) => {
              invocations++;
              if (invocations === 1) await holdUntilRebalance(heartbeat);
              for (const message of batch.messages) {
                await withMessageContext(message, () => processed.add(String(message.value)));
                resolveOffset(message.offset);
              }
            },
          });
        }
      };
      await run(first);
      await started;
      // A second member joins the group while the first one's handler is in flight.
      await run(second);
      await until(() => values.every((v) => processed.has(v)), 'every message after the rebalance', 60_000);
      await second.disconnect();
      await first.disconnect();

      expect((interrupted as { type?: string } | undefined)?.type).toBe('REBALANCE_IN_PROGRESS');
      expect(tracing.current.openSpans()).toHaveLength(0);
      const all = spansNamed(tracing.current.spans(), `process ${topic}`);
      const failed = all.filter((s) => s.status.code === 2);
      expect(failed.some((s) => s.attributes['error.type'] === 'REBALANCE_IN_PROGRESS')).toBe(true);
      if (mode === 'eachMessage') {
        // One span per handler call, each ended once.
        expect(all).toHaveLength(invocations);
      } else {
        const batches = all.filter((s) => s.attributes['messaging.batch.message_count'] !== undefined);
        expect(batches).toHaveLength(invocations);
        // Every message of every batch got its span (some twice: redelivered after the rebalance).
        const perMessage = all.length - batches.length;
        const delivered = batches.reduce(
          (n, b) => n + (b.attributes['messaging.batch.message_count'] as number),
          0,
        );
        expect(perMessage).toBe(delivered);
      }
      const ids = new Set(all.map((s) => s.spanContext().spanId));
      expect(ids.size).toBe(all.length);
    },
  );
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;
const clients = useKafkaClients();
const spans = (): ReadableSpan[] => tracing.current.spans();

describe('12.1 thrown values on a real consumer', () => {
  it('kafkajs receives the very object the handler threw (null prototype), the span ends ERROR, the retry succeeds', async () => {
    const logged: unknown[] = [];
    const kafka = new Kafka({
      clientId: 'thrown-values',
      brokers: brokerEndpoint('kafka').brokers,
      logLevel: logLevel.ERROR,
      logCreator: () => (entry) => {
        if (entry.log.message === 'Error when calling eachMessage') logged.push(entry.log.error);
      },
    });
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), retry: { retries: 5, initialRetryTime: 50 } })),
      [topic],
    );
    const thrown = Object.assign(Object.create(null) as object, { code: 'NO_PROTOTYPE' });
    let attempts = 0;
    await consumer.run({
      eachMessage: async () => {
        attempts++;
        if (attempts === 1) throw thrown;
      },
    });
    await producer.send({ topic, messages: [{ value: 'odd-throw' }] });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 2);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toBe(thrown);
    const [first, second] = spansNamed(all, `process ${topic}`) as [ReadableSpan, ReadableSpan];
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.attributes[ATTR_ERROR_TYPE]).toBe('NO_PROTOTYPE');
    expect(second.status.code).toBe(SpanStatusCode.UNSET);
  });
});

describe('12.2 headers that throw while copied, on a real producer', () => {
  it('the send span ends ERROR and the caller gets the getter error kafkajs raises', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer(), { createSpans: true }));
    const own = new Error('header getter');
    const headers = {
      get 'x-tenant'(): string {
        throw own;
      },
    } as unknown as IHeaders;
    const error = await producer.send({ topic, messages: [{ value: 'a', headers }, { value: 'b' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBe(own);
    const all = spans();
    expect(spansNamed(all, `send ${topic}`)).toHaveLength(1);
    expect(spansNamed(all, `create ${topic}`)).toHaveLength(2);
    for (const span of all) expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});

describe('12.3 oversized propagation headers on consumed messages', () => {
  it('refuses an oversized baggage, tracestate and traceparent, and processes every message', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const raw = await clients.producer(kafka.producer());
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId() }), { baggageAttributes: ['tenant'] }),
      [topic],
    );
    const handled: string[] = [];
    const baggageInHandler: (string | undefined)[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        handled.push(String(message.value));
        baggageInHandler.push(propagation.getBaggage(context.active())?.getEntry('tenant')?.value);
      },
    });
    // 256 KB each (the broker's default message limit is 1 MB).
    const hugeBaggage = `tenant=acme,${'x'.repeat(256 * 1024)}=1`;
    const manyMembers = Array.from({ length: 100 }, (_, i) => `k${i}=v`).join(',');
    await raw.send({
      topic,
      messages: [
        { value: 'baggage', headers: { traceparent: TRACEPARENT, baggage: hugeBaggage } },
        { value: 'members', headers: { traceparent: TRACEPARENT, baggage: `tenant=acme,${manyMembers}` } },
        { value: 'tracestate', headers: { traceparent: TRACEPARENT, tracestate: `a=${'b'.repeat(600)}` } },
        { value: 'traceparent', headers: { traceparent: `${TRACEPARENT}${'0'.repeat(256 * 1024)}` } },
        { value: 'control', headers: { traceparent: TRACEPARENT, baggage: 'tenant=acme' } },
      ],
    });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 5);
    expect(handled).toEqual(['baggage', 'members', 'tracestate', 'traceparent', 'control']);
    const [baggage, members, state, parent, control] = spansNamed(all, `process ${topic}`) as ReadableSpan[];
    // Oversized baggage is refused as a whole; the trace still continues.
    for (const span of [baggage, members] as ReadableSpan[]) {
      expect(span.spanContext().traceId).toBe(TRACE_ID);
      expect(parentSpanId(span)).toBe(SPAN_ID);
      expect(span.attributes.tenant).toBeUndefined();
    }
    expect(baggageInHandler.slice(0, 2)).toEqual([undefined, undefined]);
    // Oversized tracestate: refused, the traceparent still continues the trace.
    expect(state?.spanContext().traceId).toBe(TRACE_ID);
    expect(state?.spanContext().traceState).toBeUndefined();
    // Oversized traceparent: refused, a new trace.
    expect(parent?.spanContext().traceId).not.toBe(TRACE_ID);
    expect(parentSpanId(parent as ReadableSpan)).toBeUndefined();
    // The control message shows what a valid header of each kind gives.
    expect(control?.spanContext().traceId).toBe(TRACE_ID);
    expect(baggageInHandler[4]).toBe('acme');
    expect(control?.attributes.tenant).toBe('acme');
  });
});
