import {
  ATTR_ERROR_TYPE,
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@hoptrace/core/adapter';
import {
  ATTR_HOPTRACE_BATCH_LINK_COUNT,
  traceConsumer,
  traceKafka,
  traceProducer,
  withMessageContext,
} from '@hoptrace/kafka';
import { onlySpan, parentSpanId, spansNamed, until, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { IHeaders } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, seedBrokerAttributes, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();

const clients = useKafkaClients();

function spans(): ReadableSpan[] {
  return tracing.current.spans();
}

const seedBroker = seedBrokerAttributes();

describe('traced kafkajs against a real broker', () => {
  it('keeps one trace from a parent span through send to process (single message)', async () => {
    const kafka = traceKafka(newKafka('single-client'), { captureKeys: true });
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(kafka.producer());
    const group = groupId();
    const consumer = await clients.consumer(kafka.consumer({ groupId: group }), [topic]);
    let activeInHandler: string | undefined;
    await consumer.run({
      eachMessage: async () => {
        activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
      },
    });
    await trace.getTracer('x').startActiveSpan('outer', async (outer) => {
      await producer.send({ topic, messages: [{ key: 'order-1', value: 'hello' }] });
      outer.end();
    });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 1);
    const outer = onlySpan(all, 'outer');
    const send = onlySpan(all, `send ${topic}`);
    const process = onlySpan(all, `process ${topic}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(send.spanContext().traceId).toBe(outer.spanContext().traceId);
    expect(process.spanContext().traceId).toBe(outer.spanContext().traceId);
    expect(parentSpanId(send)).toBe(outer.spanContext().spanId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    // The parent already ties them: no link repeating it (parentLink is opt-in).
    expect(process.links).toEqual([]);
    expect(activeInHandler).toBe(process.spanContext().spanId);
    expect(spansNamed(all, `create ${topic}`)).toHaveLength(0);
    expect(send.attributes).toMatchObject({
      [ATTR_MESSAGING_SYSTEM_NAME]: 'kafka',
      [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
      [ATTR_MESSAGING_OPERATION_NAME]: 'send',
      [ATTR_MESSAGING_DESTINATION_NAME]: topic,
      [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '0',
      [ATTR_KAFKA_OFFSET]: 0,
      [ATTR_KAFKA_MESSAGE_KEY]: 'order-1',
      [ATTR_MESSAGING_CLIENT_ID]: 'single-client',
      [ATTR_SERVER_ADDRESS]: seedBroker['server.address'],
      [ATTR_SERVER_PORT]: seedBroker['server.port'],
    });
    expect(send.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBeUndefined();
    expect(process.attributes).toMatchObject({
      [ATTR_MESSAGING_SYSTEM_NAME]: 'kafka',
      [ATTR_MESSAGING_OPERATION_TYPE]: 'process',
      [ATTR_MESSAGING_DESTINATION_NAME]: topic,
      [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: group,
      [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '0',
      [ATTR_KAFKA_OFFSET]: 0,
      [ATTR_KAFKA_MESSAGE_KEY]: 'order-1',
      [ATTR_MESSAGING_CLIENT_ID]: 'single-client',
    });
    expect(process.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBeUndefined();
  });

  it('with createSpans, gives each message of a multi-message send a create span that consumers see as parent', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(
      traceProducer(kafka.producer(), { createSpans: true, captureKeys: true }),
    );
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    const parents = new Map<string, string | undefined>();
    await consumer.run({
      eachMessage: async ({ message }) => {
        parents.set(message.value?.toString() ?? '', trace.getActiveSpan()?.spanContext().spanId);
      },
    });
    const record = {
      topic,
      messages: [
        { key: 'a', value: 'm0' },
        { key: Buffer.from([0xff, 0xfe]), value: 'm1' },
        { key: null, value: null },
      ],
    };
    const snapshot = JSON.stringify(record);
    await producer.send(record);
    expect(JSON.stringify(record)).toBe(snapshot);
    expect(record.messages.every((m) => !('headers' in m))).toBe(true);
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 3);
    const send = onlySpan(all, `send ${topic}`);
    const creates = spansNamed(all, `create ${topic}`).sort(
      (a, b) => Number(a.attributes[ATTR_KAFKA_OFFSET]) - Number(b.attributes[ATTR_KAFKA_OFFSET]),
    );
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(3);
    expect(creates).toHaveLength(3);
    expect(creates.map((c) => c.kind)).toEqual([SpanKind.PRODUCER, SpanKind.PRODUCER, SpanKind.PRODUCER]);
    expect(creates.map((c) => c.attributes[ATTR_KAFKA_OFFSET])).toEqual([0, 1, 2]);
    expect(creates.map((c) => c.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID])).toEqual([
      '0',
      '0',
      '0',
    ]);
    expect(creates.map((c) => c.attributes[ATTR_KAFKA_MESSAGE_KEY])).toEqual(['a', undefined, undefined]);
    expect(creates.map((c) => c.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE])).toEqual([
      undefined,
      undefined,
      true,
    ]);
    expect(send.links.map((l) => l.context.spanId)).toEqual(creates.map((c) => c.spanContext().spanId));
    const processes = spansNamed(all, `process ${topic}`);
    for (const [i, value] of ['m0', 'm1', ''].entries()) {
      const create = creates[i] as ReadableSpan;
      const process = processes.find((p) => p.spanContext().spanId === parents.get(value)) as ReadableSpan;
      expect(parentSpanId(process)).toBe(create.spanContext().spanId);
      expect(process.spanContext().traceId).toBe(create.spanContext().traceId);
      expect(process.attributes[ATTR_KAFKA_OFFSET]).toBe(i);
    }
  });

  it('marks no tombstone on the spans of a message kafkajs refuses for having no value', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(
      traceProducer(kafka.producer(), { createSpans: true, captureKeys: true }),
    );
    const refused = async (send: () => Promise<unknown>) =>
      send().then(
        () => 'sent',
        (error: Error) => error.message,
      );
    const single = await refused(() =>
      producer.send({ topic, messages: [{ key: 'diffb-k', value: undefined as never }] }),
    );
    const multi = await refused(() =>
      producer.send({ topic, messages: [{ value: 'diffb-v' }, { key: 'diffb-k2' } as never] }),
    );
    expect(single).toMatch(/Invalid message without value/);
    expect(multi).toMatch(/Invalid message without value/);
    // Nothing was written: no span claims a tombstone (a null value) went out.
    const send = spansNamed(spans(), `send ${topic}`).find((s) => s.attributes[ATTR_KAFKA_MESSAGE_KEY]);
    expect(send?.attributes[ATTR_KAFKA_MESSAGE_KEY]).toBe('diffb-k');
    expect(send?.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBeUndefined();
    const creates = spansNamed(spans(), `create ${topic}`);
    expect(creates.map((c) => c.attributes[ATTR_KAFKA_MESSAGE_KEY]).sort()).toEqual(
      ['diffb-k2', undefined].sort(),
    );
    for (const create of creates) expect(create.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBeUndefined();
    for (const span of spansNamed(spans(), `send ${topic}`))
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('computes each create span offset from the reply per partition, and leaves unknown ones out', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka, 1, 2)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer(), { createSpans: true }));
    await producer.send({
      topic,
      messages: [0, 1, 0, 1, 1].map((partition, i) => ({ value: `f${i}`, partition })),
    });
    const fixed = spansNamed(spans(), `create ${topic}`).map((c) => [
      c.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID],
      c.attributes[ATTR_KAFKA_OFFSET],
    ]);
    expect(fixed).toEqual([
      ['0', 0],
      ['1', 0],
      ['0', 1],
      ['1', 1],
      ['1', 2],
    ]);
    tracing.current.reset();
    // Keys spread over both partitions: kafkajs's reply cannot say which message went where.
    await producer.send({
      topic,
      messages: ['a', 'b', 'c', 'd', 'e', 'f'].map((key) => ({ key, value: key })),
    });
    const free = spansNamed(spans(), `create ${topic}`);
    expect(free).toHaveLength(6);
    for (const c of free) {
      expect(c.attributes[ATTR_KAFKA_OFFSET]).toBeUndefined();
      expect(c.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBeUndefined();
    }
  });

  it('by default injects the one send span into every message of a call (no create spans, no links)', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    await consumer.run({ eachMessage: async () => undefined });
    await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 2);
    const send = onlySpan(all, `send ${topic}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.links).toEqual([]);
    expect(send.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(2);
    expect(spansNamed(all, `create ${topic}`)).toHaveLength(0);
    for (const process of spansNamed(all, `process ${topic}`)) {
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    }
  });

  it('names a sendBatch across topics `send` and traces every message to its consumer', async () => {
    const kafka = newKafka();
    const [t1, t2] = (await createTopics(kafka, 2)) as [string, string];
    const producer = await clients.producer(traceProducer(kafka.producer(), { createSpans: true }));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [t1, t2],
    );
    await consumer.run({ eachMessage: async () => undefined });
    const request = trace.getTracer('test').startSpan('request');
    await context.with(trace.setSpan(context.active(), request), () =>
      producer.sendBatch({
        topicMessages: [
          { topic: t1, messages: [{ value: 'x' }] },
          { topic: t2, messages: [{ value: 'y' }, { value: 'z' }] },
        ],
      }),
    );
    request.end();
    const all = await waitForSpans(
      spans,
      (s) => spansNamed(s, `process ${t1}`).length === 1 && spansNamed(s, `process ${t2}`).length === 2,
    );
    const send = onlySpan(all, 'send');
    expect(send.attributes[ATTR_MESSAGING_DESTINATION_NAME]).toBeUndefined();
    expect(send.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(3);
    const creates = [...spansNamed(all, `create ${t1}`), ...spansNamed(all, `create ${t2}`)];
    expect(creates).toHaveLength(3);
    const createIds = creates.map((c) => c.spanContext().spanId);
    expect(send.links.map((l) => l.context.spanId).sort()).toEqual([...createIds].sort());
    // The send span and the create spans are siblings under the caller's span, in its trace.
    for (const s of [send, ...creates]) {
      expect(parentSpanId(s)).toBe(request.spanContext().spanId);
      expect(s.spanContext().traceId).toBe(request.spanContext().traceId);
    }
    // Each message's process span is the child of that message's own create span (topic and offset).
    const key = (s: ReadableSpan) =>
      `${String(s.attributes[ATTR_MESSAGING_DESTINATION_NAME])}/${String(s.attributes[ATTR_KAFKA_OFFSET])}`;
    const createByMessage = new Map(creates.map((c) => [key(c), c]));
    expect([...createByMessage.keys()].sort()).toEqual([`${t1}/0`, `${t2}/0`, `${t2}/1`].sort());
    for (const process of [...spansNamed(all, `process ${t1}`), ...spansNamed(all, `process ${t2}`)]) {
      const create = createByMessage.get(key(process));
      if (!create) throw new Error(`no create span for ${key(process)}`);
      expect(parentSpanId(process)).toBe(create.spanContext().spanId);
      expect(process.spanContext().traceId).toBe(request.spanContext().traceId);
    }
    expect(
      spansNamed(all, `create ${t2}`)
        .map((c) => c.attributes[ATTR_KAFKA_OFFSET])
        .sort(),
    ).toEqual([0, 1]);
  });

  it('keeps a traceparent the caller injected and links the send span to it', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer(), { createSpans: true }));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    const seen: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.headers?.traceparent?.toString() ?? '');
      },
    });
    const own = '00-11111111111111111111111111111111-2222222222222222-01';
    const headers: IHeaders = { traceparent: own, extra: 'kept' };
    await producer.send({ topic, messages: [{ value: 'mine', headers }, { value: 'ours' }] });
    expect(headers).toEqual({ traceparent: own, extra: 'kept' });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 2);
    expect(seen).toContain(own);
    const creates = spansNamed(all, `create ${topic}`);
    expect(creates).toHaveLength(1);
    const send = onlySpan(all, `send ${topic}`);
    expect(send.links.map((l) => l.context.spanId).sort()).toEqual(
      ['2222222222222222', (creates[0] as ReadableSpan).spanContext().spanId].sort(),
    );
    const mine = spansNamed(all, `process ${topic}`).find(
      (p) => p.spanContext().traceId === '11111111111111111111111111111111',
    );
    expect(mine && parentSpanId(mine)).toBe('2222222222222222');
  });

  it('a propagation header given as an empty array (kafkajs writes no header for it) still gets the send context', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const headers: IHeaders = { traceparent: [], baggage: [], extra: [Buffer.from('kept')] };
    await producer.send({ topic, messages: [{ value: 'v', headers }] });
    expect(headers).toEqual({ traceparent: [], baggage: [], extra: [Buffer.from('kept')] });
    const seen: IHeaders[] = [];
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(message.headers ?? {}) });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 1);
    const send = onlySpan(all, `send ${topic}`);
    const process = onlySpan(all, `process ${topic}`);
    expect(seen[0]?.extra?.toString()).toBe('kept');
    expect(seen[0]?.traceparent?.toString()).toMatch(new RegExp(`^00-${send.spanContext().traceId}-`));
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
  });

  it('lets a raw kafkajs consumer read a valid W3C traceparent', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const raw = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [topic]);
    let header: string | undefined;
    await raw.run({
      eachMessage: async ({ message }) => {
        header = message.headers?.traceparent?.toString();
      },
    });
    await producer.send({ topic, messages: [{ value: 'interop' }] });
    await until(() => header !== undefined, 'the raw consumer');
    const send = onlySpan(spans(), `send ${topic}`);
    expect(header).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(header).toBe(`00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`);
  });

  it.each(['link', 'root'] as const)(
    'relation %s: the process span links to the creation context',
    async (relation) => {
      const kafka = newKafka();
      const [topic] = (await createTopics(kafka)) as [string];
      const producer = await clients.producer(traceProducer(kafka.producer()));
      const consumer = await clients.consumer(
        traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), { relation }),
        [topic],
      );
      await consumer.run({ eachMessage: async () => undefined });
      await producer.send({ topic, messages: [{ value: relation }] });
      const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 1);
      const send = onlySpan(all, `send ${topic}`);
      const process = onlySpan(all, `process ${topic}`);
      expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(parentSpanId(process)).toBeUndefined();
      expect(process.links).toHaveLength(1);
      expect(process.links[0]?.context.spanId).toBe(send.spanContext().spanId);
      expect(process.links[0]?.context.traceId).toBe(send.spanContext().traceId);
    },
  );

  it('parentLink false: the process span is a child of the send span with no link', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), { parentLink: false }),
      [topic],
    );
    await consumer.run({ eachMessage: async () => undefined });
    await producer.send({ topic, messages: [{ value: 'no-link' }] });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 1);
    const send = onlySpan(all, `send ${topic}`);
    const process = onlySpan(all, `process ${topic}`);
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(process.links).toEqual([]);
  });

  it('records a handler error, rethrows it so kafkajs retries, and traces each delivery', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    const consumer = await clients.consumer(
      traceConsumer(
        kafka.consumer({
          groupId: groupId(),
          maxWaitTimeInMs: 100,
          retry: { retries: 5, initialRetryTime: 50 },
        }),
      ),
      [topic],
    );
    let attempts = 0;
    class PaymentDeclined extends Error {}
    const thrown = new PaymentDeclined('declined');
    let caught: unknown;
    await consumer.run({
      eachMessage: async () => {
        attempts++;
        if (attempts === 1) {
          try {
            throw thrown;
          } catch (e) {
            caught = e;
            throw e;
          }
        }
      },
    });
    await producer.send({ topic, messages: [{ value: 'retry-me' }] });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 2);
    const send = onlySpan(all, `send ${topic}`);
    const [first, second] = spansNamed(all, `process ${topic}`) as [ReadableSpan, ReadableSpan];
    expect(caught).toBe(thrown);
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.attributes[ATTR_ERROR_TYPE]).toBe('PaymentDeclined');
    expect(first.events.map((e) => e.name)).toContain('exception');
    expect(second.status.code).toBe(SpanStatusCode.UNSET);
    expect(second.attributes[ATTR_ERROR_TYPE]).toBeUndefined();
    for (const p of [first, second]) {
      expect(parentSpanId(p)).toBe(send.spanContext().spanId);
      expect(p.attributes[ATTR_KAFKA_OFFSET]).toBe(0);
    }
    expect(first.spanContext().spanId).not.toBe(second.spanContext().spanId);
  });

  it('fails the send span with the Kafka error code name', async () => {
    const kafka = newKafka();
    const producer = await clients.producer(
      traceProducer(kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })),
    );
    const topic = `hoptrace-missing-${Date.now()}`;
    const error = await producer.send({ topic, messages: [{ value: 'x' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const send = onlySpan(spans(), `send ${topic}`);
    expect(send.status.code).toBe(SpanStatusCode.ERROR);
    // kafkajs wraps the protocol error once retries run out; the code name comes from its cause.
    expect((error as Error).name).toBe('KafkaJSNumberOfRetriesExceeded');
    expect(send.attributes[ATTR_ERROR_TYPE]).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(send.events.map((e) => e.name)).toEqual(['exception']);
  });
});

describe('eachBatch', () => {
  it('links the batch span to every message (capped) and parents per-message spans by creation context', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer(), { createSpans: true }));
    await producer.send({ topic, messages: [0, 1, 2, 3, 4].map((i) => ({ value: `v${i}` })) });
    const creates = spansNamed(spans(), `create ${topic}`);
    expect(creates).toHaveLength(5);
    const createIds = creates.map((c) => c.spanContext().spanId);
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), { maxBatchLinks: 3 }),
      [topic],
    );
    const inside: (string | undefined)[] = [];
    let batchActive: string | undefined;
    let sizes = 0;
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        batchActive = trace.getActiveSpan()?.spanContext().spanId;
        sizes += batch.messages.length;
        for (const message of batch.messages) {
          await withMessageContext(message, async () => {
            inside.push(trace.getActiveSpan()?.spanContext().spanId);
          });
          resolveOffset(message.offset);
          await heartbeat();
        }
      },
    });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length >= 6);
    expect(sizes).toBe(5);
    const processes = spansNamed(all, `process ${topic}`);
    const batchSpan = processes.find((p) => p.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] !== undefined);
    if (!batchSpan) throw new Error('no batch span');
    expect(processes).toHaveLength(6);
    expect(batchSpan.kind).toBe(SpanKind.CONSUMER);
    expect(batchActive).toBe(batchSpan.spanContext().spanId);
    expect(batchSpan.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(5);
    expect(batchSpan.attributes[ATTR_HOPTRACE_BATCH_LINK_COUNT]).toBe(3);
    expect(batchSpan.links.map((l) => l.context.spanId)).toEqual(createIds.slice(0, 3));
    expect(parentSpanId(batchSpan)).toBeUndefined();
    const perMessage = processes.filter((p) => p !== batchSpan);
    expect(perMessage.map((p) => p.attributes[ATTR_KAFKA_OFFSET]).sort()).toEqual([0, 1, 2, 3, 4]);
    for (const p of perMessage) {
      const offset = p.attributes[ATTR_KAFKA_OFFSET] as number;
      expect(parentSpanId(p)).toBe(createIds[offset]);
      expect(p.spanContext().traceId).toBe(creates[offset]?.spanContext().traceId);
      expect(inside[offset]).toBe(p.spanContext().spanId);
      expect(p.attributes['hoptrace.message.unresolved']).toBeUndefined();
    }
  });

  it('ends per-message spans at resolveOffset and marks unresolved ones when the handler throws', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    await producer.send({ topic, messages: [0, 1, 2].map((i) => ({ value: `v${i}` })) });
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100, retry: { retries: 0 } })),
      [topic],
    );
    let calls = 0;
    const openAfterResolve: number[] = [];
    await consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        calls++;
        if (calls > 1) {
          for (const m of batch.messages) resolveOffset(m.offset);
          return;
        }
        resolveOffset((batch.messages[0] as { offset: string }).offset);
        openAfterResolve.push(tracing.current.openSpans().length);
        throw new Error('batch broke');
      },
    });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length >= 4);
    const first = all.filter((s) => s.name === `process ${topic}`).slice(0, 4);
    const batchSpan = first.find((p) => p.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] !== undefined);
    if (!batchSpan) throw new Error('no batch span');
    expect(batchSpan.status.code).toBe(SpanStatusCode.ERROR);
    expect(batchSpan.attributes[ATTR_ERROR_TYPE]).toBe('Error');
    const perMessage = first.filter((p) => p !== batchSpan);
    const byOffset = new Map(perMessage.map((p) => [p.attributes[ATTR_KAFKA_OFFSET], p]));
    // Offset 0 resolved: ended then, not marked. Offset 1 started on that resolve; 2 at the end.
    expect(byOffset.get(0)?.attributes['hoptrace.message.unresolved']).toBeUndefined();
    expect(byOffset.get(1)?.attributes['hoptrace.message.unresolved']).toBe(true);
    expect(byOffset.get(2)?.attributes['hoptrace.message.unresolved']).toBe(true);
    for (const p of perMessage) expect(p.status.code).toBe(SpanStatusCode.UNSET);
    // Open right after resolving offset 0: the batch span and message 1's span.
    expect(openAfterResolve[0]).toBe(2);
  });
  it('ends every span when the consumer stops while a batch is in flight', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(traceProducer(kafka.producer()));
    await producer.send({ topic, messages: [0, 1, 2, 3].map((i) => ({ value: `v${i}` })) });
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    let inFlight = false;
    let openWhileInFlight = 0;
    await consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, isRunning }) => {
        resolveOffset((batch.messages[0] as { offset: string }).offset);
        inFlight = true;
        while (isRunning()) await new Promise((r) => setTimeout(r, 20));
      },
    });
    await until(() => inFlight, 'the batch to start');
    openWhileInFlight = tracing.current.openSpans().length;
    await consumer.stop();
    expect(openWhileInFlight).toBe(2);
    expect(tracing.current.openSpans()).toHaveLength(0);
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(5);
    const unresolved = processes.filter((p) => p.attributes['hoptrace.message.unresolved'] === true);
    expect(unresolved.map((p) => p.attributes[ATTR_KAFKA_OFFSET]).sort()).toEqual([1, 2, 3]);
  });
});

describe('transactions', () => {
  it('keeps sends open until commit or abort and says which; commit, abort and sendOffsets get spans', async () => {
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(
      traceProducer(
        kafka.producer({ transactionalId: `hoptrace-tx-${topic}`, idempotent: true, maxInFlightRequests: 1 }),
      ),
    );
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ value: 'aborted-1' }] });
    await aborted.sendOffsets({
      consumerGroupId: `g-aborted-${topic}`,
      topics: [{ topic, partitions: [{ partition: 0, offset: '0' }] }],
    });
    // Sent, not yet committed or aborted: the send and send_offsets spans are still open (the
    // offsets, like the message, count only if the transaction commits).
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([
      `send ${topic}`,
      `send_offsets ${topic}`,
    ]);
    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] });
    await committed.sendBatch({ topicMessages: [{ topic, messages: [{ value: 'committed-3' }] }] });
    await committed.sendOffsets({
      consumerGroupId: `g-${topic}`,
      topics: [{ topic, partitions: [{ partition: 0, offset: '0' }] }],
    });
    await committed.commit();
    expect(tracing.current.openSpans()).toEqual([]);
    const seen: string[] = [];
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 })),
      [topic],
    );
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value?.toString() ?? '');
      },
    });
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === 3);
    await new Promise((r) => setTimeout(r, 500));
    expect(seen).toEqual(['committed-1', 'committed-2', 'committed-3']);
    const sends = spansNamed(all, `send ${topic}`);
    expect(sends).toHaveLength(3);
    const abortedSend = sends.find((s) => s.attributes['hoptrace.kafka.transaction.outcome'] === 'aborted');
    if (!abortedSend) throw new Error('no aborted send span');
    expect(abortedSend.status.code).toBe(SpanStatusCode.ERROR);
    expect(abortedSend.attributes[ATTR_ERROR_TYPE]).toBe('transaction_aborted');
    const abortSpan = onlySpan(all, 'abort_transaction');
    const commitSpan = onlySpan(all, 'commit_transaction');
    expect(abortSpan.attributes['messaging.operation.type']).toBe('settle');
    const ended = (s: ReadableSpan) => s.endTime[0] * 1e9 + s.endTime[1];
    const started = (s: ReadableSpan) => s.startTime[0] * 1e9 + s.startTime[1];
    expect(ended(abortedSend)).toBeGreaterThanOrEqual(started(abortSpan));
    const committedSends = sends.filter((s) => s !== abortedSend);
    for (const send of committedSends) {
      expect(send.attributes['hoptrace.kafka.transaction.outcome']).toBe('committed');
      expect(send.status.code).toBe(SpanStatusCode.UNSET);
      expect(ended(send)).toBeGreaterThanOrEqual(started(commitSpan));
    }
    const [offsets, abortedOffsets] = [`g-${topic}`, `g-aborted-${topic}`].map((group) => {
      const found = spansNamed(all, `send_offsets ${topic}`).filter(
        (s) => s.attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] === group,
      );
      expect(found).toHaveLength(1);
      return found[0] as ReadableSpan;
    }) as [ReadableSpan, ReadableSpan];
    expect(offsets.attributes).toMatchObject({
      [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: 1,
      'hoptrace.kafka.transaction.outcome': 'committed',
    });
    expect(offsets.status.code).toBe(SpanStatusCode.UNSET);
    expect(ended(offsets)).toBeGreaterThanOrEqual(started(commitSpan));
    expect(abortedOffsets.attributes).toMatchObject({
      'hoptrace.kafka.transaction.outcome': 'aborted',
      [ATTR_ERROR_TYPE]: 'transaction_aborted',
    });
    expect(abortedOffsets.status.code).toBe(SpanStatusCode.ERROR);
    expect(ended(abortedOffsets)).toBeGreaterThanOrEqual(started(abortSpan));
    const valid = new Set(committedSends.map((s) => s.spanContext().spanId));
    for (const process of spansNamed(all, `process ${topic}`)) {
      expect(valid.has(parentSpanId(process) as string)).toBe(true);
    }
  });
});
