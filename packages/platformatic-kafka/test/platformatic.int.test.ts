import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ATTR_HOPTRACE_FAILURE_ATTEMPTS,
  ATTR_HOPTRACE_FAILURE_DESTINATION,
  ATTR_HOPTRACE_FAILURE_ERROR_TYPE,
  ERROR_SHUTDOWN,
  endOpenSpans,
  FAILURE_HEADERS,
} from '@hoptrace/core';
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
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  ATTR_HOPTRACE_PROCESS_TIMED_OUT,
  deadLetterMessage,
  ERROR_STREAM_CLOSED,
  MAX_OPEN_STREAM_SENDS,
  STREAM_CLOSE_GRACE_MS,
  traceConsumer,
  traceProducer,
  withBatchContext,
  withMessageContext,
} from '@hoptrace/platformatic-kafka';
import {
  deferred,
  metricPoints,
  onlySpan,
  parentSpanId,
  spansNamed,
  TestMetricReader,
  until,
  useTestTracing,
} from '@hoptrace/test-kit';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Consumer, type Message, Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import {
  brokers,
  cleanup,
  createTopics,
  groupId,
  runCleanup,
  streamOf,
  stringConsumer,
  stringProducer,
} from './helpers.ts';

const tracing = useTestTracing();

afterEach(runCleanup);

function spans(): ReadableSpan[] {
  return tracing.current.spans();
}

/** Of three `send {topic}` spans, the two of the acknowledged batch ended OK: the third (ERROR). */
function droppedOfThree(topic: string): ReadableSpan {
  const sends = spansNamed(spans(), `send ${topic}`);
  expect(sends).toHaveLength(3);
  expect(sends.filter((s) => s.status.code === SpanStatusCode.UNSET)).toHaveLength(2);
  return onlySpan(
    sends.filter((s) => s.status.code === SpanStatusCode.ERROR),
    `send ${topic}`,
  );
}

const [brokerHost, brokerPort] = (brokers()[0] as string).split(':') as [string, string];

/** Reads `count` messages from the stream's iterator, running `each` on every one. */
async function take<M>(stream: AsyncIterable<M>, count: number, each?: (m: M) => unknown): Promise<M[]> {
  const out: M[] = [];
  if (count === 0) return out;
  for await (const message of stream) {
    out.push(message);
    await each?.(message);
    if (out.length === count) break;
  }
  return out;
}

describe('traced @platformatic/kafka against a real broker', () => {
  it('keeps one trace from a parent span through send to process (single message)', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer(), { captureKeys: true });
    const group = groupId();
    const consumer = traceConsumer(stringConsumer({ groupId: group }), { captureKeys: true });
    await trace.getTracer('test').startActiveSpan('request', async (span) => {
      await producer.send({ messages: [{ topic, key: 'order-1', value: 'hello' }] });
      span.end();
    });
    const stream = await streamOf(consumer, [topic]);
    let active: string | undefined;
    const [message] = await take(stream, 1, (m) =>
      withMessageContext(m, () => {
        active = trace.getActiveSpan()?.spanContext().spanId;
      }),
    );
    expect(message?.value).toBe('hello');

    const request = onlySpan(spans(), 'request');
    const send = onlySpan(spans(), `send ${topic}`);
    const process = onlySpan(spans(), `process ${topic}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(send.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(process.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parentSpanId(send)).toBe(request.spanContext().spanId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(process.links).toHaveLength(0);
    expect(active).toBe(process.spanContext().spanId);
    expect(send.attributes).toMatchObject({
      [ATTR_MESSAGING_SYSTEM_NAME]: 'kafka',
      [ATTR_MESSAGING_OPERATION_NAME]: 'send',
      [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
      [ATTR_MESSAGING_DESTINATION_NAME]: topic,
      [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '0',
      [ATTR_KAFKA_OFFSET]: 0,
      [ATTR_KAFKA_MESSAGE_KEY]: 'order-1',
      [ATTR_MESSAGING_CLIENT_ID]: 'plt-producer',
    });
    expect(process.attributes).toMatchObject({
      [ATTR_MESSAGING_SYSTEM_NAME]: 'kafka',
      [ATTR_MESSAGING_OPERATION_NAME]: 'process',
      [ATTR_MESSAGING_OPERATION_TYPE]: 'process',
      [ATTR_MESSAGING_DESTINATION_NAME]: topic,
      [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '0',
      [ATTR_KAFKA_OFFSET]: 0,
      [ATTR_KAFKA_MESSAGE_KEY]: 'order-1',
      [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: group,
      [ATTR_MESSAGING_CLIENT_ID]: 'plt-consumer',
      [ATTR_SERVER_ADDRESS]: brokerHost,
      [ATTR_SERVER_PORT]: Number(brokerPort),
    });
    expect(spans()).toHaveLength(3);
  });

  it('gives a many-message send one span whose context every message carries (Buffer headers)', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(new Producer({ clientId: 'buffers', bootstrapBrokers: brokers() }));
    cleanup.push(() => producer.close());
    const callerHeaders = new Map([[Buffer.from('tenant'), Buffer.from('acme')]]);
    const messages = [1, 2, 3].map((i) => ({ topic, value: Buffer.from(`m${i}`), headers: callerHeaders }));
    await producer.send({ messages });
    // The caller's messages and header map are untouched.
    expect(callerHeaders.size).toBe(1);
    expect(messages.every((m) => m.headers === callerHeaders)).toBe(true);

    const consumer = traceConsumer(
      new Consumer({
        clientId: 'buffers',
        groupId: groupId(),
        bootstrapBrokers: brokers(),
        maxWaitTime: 200,
      }),
    );
    cleanup.push(() => consumer.close(true));
    const received = await take(await streamOf(consumer, [topic]), 3);
    const send = onlySpan(spans(), `send ${topic}`);
    expect(send.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(3);
    expect(send.attributes[ATTR_KAFKA_OFFSET]).toBeUndefined();
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(3);
    for (const process of processes) {
      expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    }
    expect(processes.map((s) => s.attributes[ATTR_KAFKA_OFFSET]).sort()).toEqual([0, 1, 2]);
    for (const message of received) {
      const names = [...message.headers.keys()].map((k) => k.toString()).sort();
      expect(names).toEqual(['tenant', 'traceparent']);
      expect(
        message.headers
          .get([...message.headers.keys()].find((k) => k.toString() === 'traceparent') as Buffer)
          ?.toString(),
      ).toBe(`00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`);
    }
  });

  it('a default (Buffer) producer sends messages whose headers are null, an empty record or a null-prototype empty record, as without hoptrace, carrying the send span', async () => {
    const [topic] = (await createTopics()) as [string];
    // No retries: a send the client refuses fails at once instead of after its backoff.
    const producer = traceProducer(
      new Producer({ clientId: 'kafkaf-empty-headers', bootstrapBrokers: brokers(), retries: 0 }),
    );
    cleanup.push(() => producer.close());
    const empty = {};
    const bare = Object.create(null) as Record<string, never>;
    const cases: unknown[] = [null, empty, bare];
    const outcomes: string[] = [];
    for (const [i, headers] of cases.entries()) {
      outcomes.push(
        await producer
          .send({
            messages: [{ topic, value: Buffer.from(`m${i}`), headers: headers as Map<Buffer, Buffer> }],
          })
          .then(
            () => 'ok',
            (error: { code?: string }) => `failed ${error.code}`,
          ),
      );
    }
    // Without hoptrace the client sends each of these (it writes no header for them).
    expect(outcomes).toEqual(['ok', 'ok', 'ok']);
    // The caller's objects are untouched.
    expect(Object.keys(empty)).toEqual([]);
    expect(Object.keys(bare)).toEqual([]);

    const consumer = traceConsumer(
      new Consumer({
        clientId: 'kafkaf-empty-headers',
        groupId: groupId(),
        bootstrapBrokers: brokers(),
        maxWaitTime: 200,
      }),
    );
    cleanup.push(() => consumer.close(true));
    const received = await take(await streamOf(consumer, [topic]), 3);
    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(3);
    expect(sends.every((s) => s.status.code === SpanStatusCode.UNSET)).toBe(true);
    for (const message of received) {
      const i = Number(message.value.toString().slice(1));
      const send = sends[i] as ReadableSpan;
      expect([...message.headers.keys()].map((k) => k.toString())).toEqual(['traceparent']);
      expect([...message.headers.values()][0]?.toString()).toBe(
        `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`,
      );
      const process = onlySpan(
        spansNamed(spans(), `process ${topic}`).filter((p) => p.attributes[ATTR_KAFKA_OFFSET] === i),
        `process ${topic}`,
      );
      expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    }
  });

  it('createSpans: each message continues its own create span; the send span links to them', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer(), { createSpans: true });
    await producer.send({
      messages: [
        { topic, value: '1' },
        { topic, value: '2' },
      ],
    });
    await take(await streamOf(traceConsumer(stringConsumer()), [topic]), 2);
    const send = onlySpan(spans(), `send ${topic}`);
    const creates = spansNamed(spans(), `create ${topic}`);
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(creates).toHaveLength(2);
    expect(send.links.map((l) => l.context.spanId).sort()).toEqual(
      creates.map((c) => c.spanContext().spanId).sort(),
    );
    expect(processes.map((p) => parentSpanId(p)).sort()).toEqual(
      creates.map((c) => c.spanContext().spanId).sort(),
    );
    expect(spans()).toHaveLength(5);
  });

  it('createSpans: each create span gets its offset from the reply per partition, as the consumer sees it', async () => {
    const [topic] = (await createTopics(1, 2)) as [string];
    // Idempotent: a produce request the client retries after a timeout on a loaded machine must not
    // write its messages twice (the offsets below assume each is written once).
    const producer = traceProducer(stringProducer({ idempotent: true }), { createSpans: true });
    await producer.send({
      messages: [0, 1, 0, 1, 1].map((partition, i) => ({ topic, value: `f${i}`, partition })),
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
    // What the consumer gets: each message's process span is the child of the create span that
    // names the same partition and offset.
    await take(await streamOf(traceConsumer(stringConsumer()), [topic]), 5);
    const creates = new Map(spansNamed(spans(), `create ${topic}`).map((c) => [c.spanContext().spanId, c]));
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(5);
    for (const process of processes) {
      const create = creates.get(parentSpanId(process) as string) as ReadableSpan;
      expect(create).toBeDefined();
      expect(create.attributes[ATTR_KAFKA_OFFSET]).toBe(process.attributes[ATTR_KAFKA_OFFSET]);
      expect(create.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBe(
        process.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID],
      );
    }
    tracing.current.reset();
    // Partitions chosen by the client (keys spread over both): the reply cannot place them.
    await producer.send({
      messages: ['a', 'b', 'c', 'd', 'e', 'f'].map((key) => ({ topic, key, value: key })),
    });
    const free = spansNamed(spans(), `create ${topic}`);
    expect(free).toHaveLength(6);
    for (const c of free) {
      expect(c.attributes[ATTR_KAFKA_OFFSET]).toBeUndefined();
      expect(c.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBeUndefined();
    }
    tracing.current.reset();
    // Partition 3 of a 2-partition topic: the client maps it onto partition 1. Beside partition 0
    // the reply names two partitions and cannot say where 3 went: no offsets for the topic, and the
    // caller's 3 is never recorded as a partition.
    await producer.send({ messages: [3, 0].map((partition, i) => ({ topic, value: `m${i}`, partition })) });
    expect(
      spansNamed(spans(), `create ${topic}`).map((c) => [
        c.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID],
        c.attributes[ATTR_KAFKA_OFFSET],
      ]),
    ).toEqual([
      [undefined, undefined],
      ['0', undefined],
    ]);
    tracing.current.reset();
    // Both mapped onto partition 1: the reply names that one partition, so both are placed, in order.
    await producer.send({ messages: [3, 1].map((partition, i) => ({ topic, value: `n${i}`, partition })) });
    const [first, second] = spansNamed(spans(), `create ${topic}`) as [ReadableSpan, ReadableSpan];
    expect(first.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBe('1');
    expect(second.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBe('1');
    expect(second.attributes[ATTR_KAFKA_OFFSET]).toBe((first.attributes[ATTR_KAFKA_OFFSET] as number) + 1);
  });

  it('time in queue: a timestamp no clock could have given (1 s after the epoch, a day ahead) records nothing', async () => {
    const [topic] = (await createTopics()) as [string];
    // One message per send: a record batch stores its records' timestamps as deltas from its first.
    const producer = stringProducer();
    await producer.send({ messages: [{ topic, value: 'epoch', timestamp: 1000n }] });
    await producer.send({
      messages: [{ topic, value: 'ahead', timestamp: BigInt(Date.now() + 86_400_000) }],
    });
    await producer.send({ messages: [{ topic, value: 'real', timestamp: BigInt(Date.now() - 10_000) }] });
    const reader = new TestMetricReader();
    const consumer = traceConsumer(stringConsumer({ groupId: groupId() }), {
      meterProvider: new MeterProvider({ readers: [reader] }),
    });
    const got = await take(await streamOf(consumer, [topic]), 3);
    expect(got.map((m) => m.value)).toEqual(['epoch', 'ahead', 'real']);
    const points = await metricPoints(reader, 'hoptrace.messaging.time_in_queue');
    expect(points).toHaveLength(1);
    const value = points[0]?.value as { count: number; min: number; max: number } | undefined;
    expect(value?.count).toBe(1);
    expect(value?.min).toBeGreaterThanOrEqual(10);
    expect(value?.max).toBeLessThan(60);
  });

  it('time in queue once per message: messages delivered again to a new stream (nothing committed) are not timed again', async () => {
    const [topic] = (await createTopics()) as [string];
    await stringProducer().send({
      messages: [
        { topic, value: 'a', timestamp: BigInt(Date.now() - 5000) },
        { topic, value: 'b', timestamp: BigInt(Date.now() - 5000) },
      ],
    });
    const reader = new TestMetricReader();
    const consumer = traceConsumer(stringConsumer({ groupId: groupId() }), {
      meterProvider: new MeterProvider({ readers: [reader] }),
    });
    const open = () => consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const first = await take(await open(), 2);
    const again = await take(await open(), 2);
    expect([...first, ...again].map((m) => `${m.offset}:${m.value}`)).toEqual(['0:a', '1:b', '0:a', '1:b']);
    expect(spansNamed(spans(), `process ${topic}`)).toHaveLength(4);
    const points = await metricPoints(reader, 'hoptrace.messaging.time_in_queue');
    expect((points[0]?.value as { count: number } | undefined)?.count).toBe(2);
  });

  it('ends a message span when the next message is asked for, and on break', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    await producer.send({ messages: [{ topic, value: 'a' }] });
    await producer.send({ messages: [{ topic, value: 'b' }] });
    const consumer = traceConsumer(stringConsumer());
    const stream = await streamOf(consumer, [topic]);
    const openWhileHeld: string[][] = [];
    await take(stream, 2, () => {
      openWhileHeld.push(tracing.current.openSpans().map((s) => s.name));
      openWhileHeld.push(spansNamed(spans(), `process ${topic}`).map((s) => s.name));
    });
    // While the first was held: its span open, none finished; while the second: the first finished.
    expect(openWhileHeld[0]).toEqual([`process ${topic}`]);
    expect(openWhileHeld[1]).toEqual([]);
    expect(openWhileHeld[2]).toEqual([`process ${topic}`]);
    expect(openWhileHeld[3]).toEqual([`process ${topic}`]);
    // `break` ended the second.
    expect(spansNamed(spans(), `process ${topic}`)).toHaveLength(2);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('stream.read() hands messages out like the iterator: each span ends at the next read()', async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({
      messages: [
        { topic, value: 'r1' },
        { topic, value: 'r2' },
      ],
    });
    const stream = await streamOf(traceConsumer(stringConsumer()), [topic]);
    const read: Message<string, string, string, string>[] = [];
    while (read.length < 2) {
      const message = stream.read() as Message<string, string, string, string> | null;
      if (message) {
        read.push(message);
        // Handed out and not yet done: its span is open; the one before it has ended.
        expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${topic}`]);
        expect(spansNamed(spans(), `process ${topic}`)).toHaveLength(read.length - 1);
      } else
        await new Promise((resolve) => (stream as unknown as NodeJS.EventEmitter).once('readable', resolve));
    }
    expect(read.map((m) => m.value)).toEqual(['r1', 'r2']);
    let active: string | undefined;
    withMessageContext(read[1] as Message<string, string, string, string>, () => {
      active = trace.getActiveSpan()?.spanContext().spanId;
    });
    stream.read();
    expect(tracing.current.openSpans()).toHaveLength(0);
    const send = onlySpan(spans(), `send ${topic}`);
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(2);
    for (const process of processes) expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(active).toBe(processes[1]?.spanContext().spanId);
  });

  it('runs data listeners inside the span, ending it when an async listener settles', async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({ messages: [{ topic, value: 'x' }] });
    const consumer = traceConsumer(stringConsumer());
    const stream = await streamOf(consumer, [topic]);
    const gate = deferred<void>();
    let active: string | undefined;
    const seen = deferred<void>();
    stream.on('data', async () => {
      active = trace.getActiveSpan()?.spanContext().spanId;
      seen.resolve();
      await gate.promise;
    });
    await seen.promise;
    await new Promise((r) => setImmediate(r));
    const openDuring = tracing.current.openSpans().length;
    gate.resolve();
    await until(() => spansNamed(spans(), `process ${topic}`).length === 1, 'the process span');
    const process = onlySpan(spans(), `process ${topic}`);
    expect(openDuring).toBe(1);
    expect(active).toBe(process.spanContext().spanId);
  });

  it('marks a tombstone (null value) on its send and process spans, in every deserializer shape', async () => {
    // @platformatic/kafka sends an undefined value as null, and hands a null value out as undefined
    // (its default and string deserializers alike): kafka.message.tombstone belongs on both spans.
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    await producer.send({ messages: [{ topic, key: 'gone', value: undefined as unknown as string }] });
    await producer.send({ messages: [{ topic, key: 'kept', value: 'v' }] });
    const stringStream = await streamOf(traceConsumer(stringConsumer()), [topic]);
    await take(stringStream, 2);
    const raw = traceConsumer(
      new Consumer({ clientId: 'raw', groupId: groupId(), bootstrapBrokers: brokers(), maxWaitTime: 200 }),
    );
    cleanup.push(() => raw.close(true));
    await take(await streamOf(raw, [topic]), 2);
    const [gone, kept] = spansNamed(spans(), `send ${topic}`) as [ReadableSpan, ReadableSpan];
    expect(gone.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBe(true);
    expect(kept.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBeUndefined();
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(4);
    const tombstones = processes.filter((p) => p.attributes[ATTR_KAFKA_OFFSET] === 0);
    expect(tombstones.map((p) => p.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE])).toEqual([true, true]);
    const values = processes.filter((p) => p.attributes[ATTR_KAFKA_OFFSET] === 1);
    expect(values.map((p) => p.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE])).toEqual([undefined, undefined]);
  });

  it('records a failed send with error.type (the Kafka error code where the broker gave one) and hands back the same error', async () => {
    const producer = traceProducer(stringProducer({ retries: 0 }));
    // Refused by the client before any request: its own code.
    const missing = `hoptrace-plt-missing-${Date.now()}`;
    const error = await producer
      .send({ messages: [{ topic: missing, value: 'x' }], autocreateTopics: false })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Error);
    const send = onlySpan(spans(), `send ${missing}`);
    expect(send.status.code).toBe(SpanStatusCode.ERROR);
    expect(send.attributes[ATTR_ERROR_TYPE]).toBe((error as { code?: unknown }).code);
    expect(send.attributes[ATTR_ERROR_TYPE]).toBe('PLT_KFK_USER');
    expect(send.events.some((e) => e.name === 'exception')).toBe(true);
    // Refused by the broker: the client's response error carries the Kafka error code of each
    // failed part; error.type is that code, as the conventions ask, and the error is unchanged.
    const invalid = `hoptrace plt invalid name ${Date.now()}`;
    const refused = await producer
      .send({ messages: [{ topic: invalid, value: 'x' }], autocreateTopics: true })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((refused as { code?: unknown }).code).toBe('PLT_KFK_RESPONSE');
    const refusedSend = onlySpan(spans(), `send ${invalid}`);
    expect(refusedSend.status.code).toBe(SpanStatusCode.ERROR);
    expect(refusedSend.attributes[ATTR_ERROR_TYPE]).toBe('INVALID_TOPIC_EXCEPTION');
  });

  it('ends held spans when the consumer closes, marked unresolved', async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({ messages: [{ topic, value: 'held' }] });
    const consumer = traceConsumer(stringConsumer());
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    expect(tracing.current.openSpans()).toHaveLength(1);
    await consumer.close(true);
    expect(tracing.current.openSpans()).toHaveLength(0);
    const held = onlySpan(spans(), `process ${topic}`);
    // As @hoptrace/kafka marks a message a stopped consumer left unresolved (it looked done before).
    expect(held.attributes[ATTR_HOPTRACE_MESSAGE_UNRESOLVED]).toBe(true);
    expect(held.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a stream closed while the loop body holds a message: that span is unresolved, the one done before is not', async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({
      messages: [
        { topic, value: 'done' },
        { topic, value: 'held' },
      ],
    });
    const consumer = traceConsumer(stringConsumer());
    cleanup.push(() => consumer.close(true));
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.value).toBe('done');
    expect((await iterator.next()).value?.value).toBe('held'); // the loop moved on: 'done' is done
    await stream.close();
    expect(tracing.current.openSpans()).toHaveLength(0);
    const process = spansNamed(spans(), `process ${topic}`);
    expect(process).toHaveLength(2);
    // In the order they ended: 'done' when the loop asked for the next message, 'held' at the close.
    expect(process.map((s) => s.attributes[ATTR_HOPTRACE_MESSAGE_UNRESOLVED])).toEqual([undefined, true]);
  });

  it('endOpenSpans (process shutdown) ends a held message span with shutdown', async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({ messages: [{ topic, value: 'held' }] });
    const stream = await streamOf(traceConsumer(stringConsumer()), [topic]);
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${topic}`]);
    expect(endOpenSpans()).toBe(1);
    const process = onlySpan(spans(), `process ${topic}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(process.attributes[ATTR_ERROR_TYPE]).toBe(ERROR_SHUTDOWN);
    await iterator.return?.();
    expect(spansNamed(spans(), `process ${topic}`)).toHaveLength(1);
  });

  it('ends a held span after maxProcessingMs, marked as timed out', async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({ messages: [{ topic, value: 'slow' }] });
    const consumer = traceConsumer(stringConsumer(), { maxProcessingMs: 50 });
    const stream = await streamOf(consumer, [topic]);
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    await until(() => spansNamed(spans(), `process ${topic}`).length === 1, 'the timed-out span');
    expect(onlySpan(spans(), `process ${topic}`).attributes[ATTR_HOPTRACE_PROCESS_TIMED_OUT]).toBe(true);
    await iterator.return?.();
  });

  it("batch mode: no automatic span; withBatchContext links to every message's creation context", async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    for (const value of ['1', '2', '3']) await producer.send({ messages: [{ topic, value }] });
    const consumer = traceConsumer(stringConsumer(), { batchSpans: 'batch', maxBatchLinks: 2 });
    const messages = await take(await streamOf(consumer, [topic]), 3);
    expect(spansNamed(spans(), `process ${topic}`)).toHaveLength(0);
    let active: string | undefined;
    await withBatchContext(messages, async () => {
      active = trace.getActiveSpan()?.spanContext().spanId;
    });
    const batch = onlySpan(spans(), `process ${topic}`);
    const sends = spansNamed(spans(), `send ${topic}`);
    expect(active).toBe(batch.spanContext().spanId);
    expect(parentSpanId(batch)).toBeUndefined();
    expect(batch.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(3);
    expect(batch.attributes[ATTR_HOPTRACE_BATCH_LINK_COUNT]).toBe(2);
    expect(batch.links.map((l) => l.context.spanId)).toEqual(
      sends.slice(0, 2).map((s) => s.spanContext().spanId),
    );
    // withMessageContext starts that message's own span, ending with the callback.
    withMessageContext(messages[2] as Message<string, string, string, string>, () => undefined);
    const own = spansNamed(spans(), `process ${topic}`).filter((s) => s !== batch);
    expect(own).toHaveLength(1);
    expect(parentSpanId(own[0] as ReadableSpan)).toBe(sends[2]?.spanContext().spanId);
  });

  it('a dead-letter copy continues the trace and links to the failed attempt', async () => {
    const [topic, dlq] = (await createTopics(2)) as [string, string];
    const producer = traceProducer(stringProducer());
    await producer.send({ messages: [{ topic, key: 'k', value: 'poison' }] });
    const consumer = traceConsumer(stringConsumer());
    const [failed] = await take(await streamOf(consumer, [topic]), 1, async (message) => {
      const error = Object.assign(new Error('out of stock'), { code: 'STOCK' });
      await withMessageContext(message, () => Promise.reject(error)).catch(async (e: unknown) => {
        await producer.send({ messages: [{ ...deadLetterMessage(message, e), topic: dlq }] });
      });
    });
    const dlqConsumer = traceConsumer(stringConsumer());
    const [copy] = await take(await streamOf(dlqConsumer, [dlq]), 1);
    expect(copy?.value).toBe('poison');
    expect(copy?.headers.get('hoptrace-error-type')).toBe('STOCK');
    expect(copy?.headers.get(FAILURE_HEADERS.destination)).toBe(topic);
    expect(copy?.headers.get(FAILURE_HEADERS.offset)).toBe('0');
    const attempt = onlySpan(spans(), `process ${topic}`);
    const original = onlySpan(spans(), `send ${topic}`);
    const retry = onlySpan(spans(), `process ${dlq}`);
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed).toBeDefined();
    // The copy keeps the original creation context: same trace, parented to the original send.
    expect(retry.spanContext().traceId).toBe(original.spanContext().traceId);
    expect(parentSpanId(retry)).toBe(original.spanContext().spanId);
    expect(retry.links.map((l) => l.context.spanId)).toEqual([attempt.spanContext().spanId]);
    expect(retry.attributes[ATTR_HOPTRACE_FAILURE_ERROR_TYPE]).toBe('STOCK');
    expect(retry.attributes[ATTR_HOPTRACE_FAILURE_DESTINATION]).toBe(topic);
    expect(retry.attributes[ATTR_HOPTRACE_FAILURE_ATTEMPTS]).toBe(1);
  });
});

describe('transactions against a real broker', () => {
  it('keeps sends open until commit or abort and says which; commit, abort and addOffset get spans; close ends what still waits as unknown', async () => {
    const [topic, seedTopic] = (await createTopics(2)) as [string, string];
    // A message consumed by a group, whose offset a transaction then commits (consume-transform-produce).
    await stringProducer().send({ messages: [{ topic: seedTopic, value: 'seed' }] });
    const seedGroup = groupId();
    const seedConsumer = traceConsumer(stringConsumer({ groupId: seedGroup }));
    const [seed] = await take(await streamOf(seedConsumer, [seedTopic]), 1);
    if (!seed) throw new Error('no seed message');

    const producer = traceProducer(
      stringProducer({ idempotent: true, transactionalId: `hoptrace-tx-${topic}` }),
    );
    const aborted = await producer.beginTransaction();
    await aborted.send({ messages: [{ topic, value: 'aborted-1' }] });
    await aborted.addConsumer(seedConsumer);
    await aborted.addOffset(seed);
    // Accepted by the broker, not yet committed or aborted: the send and send_offsets spans are
    // still open (the offset, like the message, counts only if the transaction commits).
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([
      `send ${topic}`,
      `send_offsets ${seedTopic}`,
    ]);
    await aborted.abort();

    const committed = await producer.beginTransaction();
    await committed.send({
      messages: [
        { topic, value: 'committed-1' },
        { topic, value: 'committed-2' },
      ],
    });
    await new Promise<void>((resolve, reject) =>
      committed.send({ messages: [{ topic, value: 'committed-3' }] }, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    await committed.addConsumer(seedConsumer);
    await committed.addOffset(seed);
    await new Promise<void>((resolve, reject) =>
      committed.commit((error) => (error ? reject(error) : resolve())),
    );
    expect(tracing.current.openSpans()).toEqual([]);

    const left = await producer.beginTransaction();
    await left.send({ messages: [{ topic, value: 'left-open' }] });
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`send ${topic}`]);
    await producer.close();
    expect(tracing.current.openSpans()).toEqual([]);

    // A read-committed consumer sees the committed messages only.
    const stream = await streamOf(traceConsumer(stringConsumer()), [topic]);
    const read = await take(stream, 3);
    expect(read.map((m) => m.value)).toEqual(['committed-1', 'committed-2', 'committed-3']);

    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(4);
    const outcome = (s: ReadableSpan) => s.attributes['hoptrace.kafka.transaction.outcome'];
    expect(sends.map(outcome).sort()).toEqual(['aborted', 'committed', 'committed', 'unknown']);
    const abortedSend = sends.find((s) => outcome(s) === 'aborted') as ReadableSpan;
    expect(abortedSend.status.code).toBe(SpanStatusCode.ERROR);
    expect(abortedSend.attributes[ATTR_ERROR_TYPE]).toBe('transaction_aborted');
    const ended = (s: ReadableSpan) => s.endTime[0] * 1e9 + s.endTime[1];
    const started = (s: ReadableSpan) => s.startTime[0] * 1e9 + s.startTime[1];
    const abortSpan = onlySpan(spans(), 'abort_transaction');
    const commitSpan = onlySpan(spans(), 'commit_transaction');
    expect(ended(abortedSend)).toBeGreaterThanOrEqual(started(abortSpan));
    for (const span of [abortSpan, commitSpan]) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.attributes[ATTR_MESSAGING_OPERATION_TYPE]).toBe('settle');
    }
    for (const send of sends.filter((s) => outcome(s) === 'committed')) {
      expect(send.status.code).toBe(SpanStatusCode.UNSET);
      expect(ended(send)).toBeGreaterThanOrEqual(started(commitSpan));
    }
    expect(sends.find((s) => outcome(s) === 'unknown')?.status.code).toBe(SpanStatusCode.UNSET);
    const allOffsets = spansNamed(spans(), `send_offsets ${seedTopic}`);
    expect(allOffsets.map(outcome).sort()).toEqual(['aborted', 'committed']);
    const abortedOffsets = allOffsets.find((s) => outcome(s) === 'aborted') as ReadableSpan;
    expect(abortedOffsets.status.code).toBe(SpanStatusCode.ERROR);
    expect(abortedOffsets.attributes[ATTR_ERROR_TYPE]).toBe('transaction_aborted');
    expect(ended(abortedOffsets)).toBeGreaterThanOrEqual(started(abortSpan));
    const offsets = allOffsets.find((s) => outcome(s) === 'committed') as ReadableSpan;
    expect(offsets.status.code).toBe(SpanStatusCode.UNSET);
    expect(ended(offsets)).toBeGreaterThanOrEqual(started(commitSpan));
    expect(offsets.attributes).toMatchObject({
      [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: seedGroup,
      [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: 1,
      [ATTR_MESSAGING_OPERATION_TYPE]: 'settle',
    });
    // Every process span of the traced reads continues the send span its message was sent under.
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(3);
    const committedIds = new Set(
      sends.filter((s) => outcome(s) === 'committed').map((s) => s.spanContext().spanId),
    );
    for (const process of processes) expect(committedIds.has(parentSpanId(process) as string)).toBe(true);
  });
});

describe('producer streams (asStream) against a real broker', () => {
  it('gives every written message a send span, open until its batch is acknowledged, that its process span continues', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    const own = trace.getTracer('test').startSpan('upstream');
    own.end();
    const ownParent = `00-${own.spanContext().traceId}-${own.spanContext().spanId}-01`;
    const callerHeaders = new Map([['tenant', 'acme']]);
    const written = [
      { topic, value: 'm1', headers: callerHeaders },
      { topic, value: 'm2' },
      { topic, value: 'm3', headers: new Map([['traceparent', ownParent]]) },
    ];
    const reports: unknown[] = [];
    const request = trace.getTracer('test').startSpan('request');
    const stream = trace.getTracer('test').startActiveSpan('request-scope', (scope) => {
      scope.end();
      return producer.asStream({ batchSize: 2, batchTime: 60_000, reportMode: 'message' });
    });
    stream.on('delivery-report', (report: { message: unknown }) => reports.push(report.message));
    const flushed = new Promise<void>((resolve) => stream.once('flush', () => resolve()));
    await context.with(trace.setSpan(context.active(), request), async () => {
      stream.write(written[0] as never);
      // One message of a batch of two: buffered, its span still open.
      expect(spansNamed(spans(), `send ${topic}`)).toHaveLength(0);
      expect(tracing.current.openSpans().map((s) => s.name)).toContain(`send ${topic}`);
      stream.write(written[1] as never);
      await flushed;
      expect(spansNamed(spans(), `send ${topic}`)).toHaveLength(2);
      stream.end(written[2] as never);
    });
    await new Promise((resolve) => stream.once('close', resolve));
    request.end();
    expect(tracing.current.openSpans()).toHaveLength(0);

    // The caller's messages and header maps are untouched; the stream got copies carrying contexts.
    expect(written[0]?.headers).toBe(callerHeaders);
    expect([...callerHeaders.keys()]).toEqual(['tenant']);
    expect(written[1]).not.toHaveProperty('headers');
    // Delivery reports name the caller's own objects, as without hoptrace.
    expect(reports).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(reports[i]).toBe(written[i]);

    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(3);
    const [first, second] = sends.filter((s) => s.kind === SpanKind.PRODUCER);
    const client = sends.find((s) => s.kind === SpanKind.CLIENT);
    for (const send of [first, second, client]) {
      expect(send?.spanContext().traceId).toBe(request.spanContext().traceId);
      expect(parentSpanId(send as ReadableSpan)).toBe(request.spanContext().spanId);
      expect(send?.status.code).toBe(SpanStatusCode.UNSET);
      expect(send?.attributes).toMatchObject({
        [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
        [ATTR_MESSAGING_DESTINATION_NAME]: topic,
      });
    }
    // The message that carried its own context keeps it; its span links to it.
    expect(client?.links.map((l) => l.context.spanId)).toEqual([own.spanContext().spanId]);

    const consumer = traceConsumer(stringConsumer());
    const received = await take(await streamOf(consumer, [topic]), 3);
    expect(received.map((m) => m.value)).toEqual(['m1', 'm2', 'm3']);
    expect(received[0]?.headers.get('tenant')).toBe('acme');
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(3);
    const parentOf = (value: string) =>
      parentSpanId(
        processes.find(
          (p) => p.attributes[ATTR_KAFKA_OFFSET] === received.findIndex((m) => m.value === value),
        ) as ReadableSpan,
      );
    expect(new Set([parentOf('m1'), parentOf('m2')])).toEqual(
      new Set([first?.spanContext().spanId, second?.spanContext().spanId]),
    );
    expect(parentOf('m3')).toBe(own.spanContext().spanId);
  });

  it('a pipeline into the stream: messages under an unsampled parent get no span and still carry its context', async () => {
    const [topic] = (await createTopics()) as [string];
    // The test tracer samples everything; `skip` is what `auto` learns under a ParentBased sampler.
    const producer = traceProducer(stringProducer(), { unsampled: 'skip' });
    const stream = producer.asStream({ batchSize: 10, batchTime: 20 });
    const parent = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 0, isRemote: true };
    await context.with(trace.setSpanContext(ROOT_CONTEXT, parent), () =>
      pipeline(
        Readable.from([1, 2, 3].map((i) => ({ topic, value: `p${i}` }))),
        stream as unknown as NodeJS.WritableStream,
      ),
    );
    expect(spansNamed(spans(), `send ${topic}`)).toHaveLength(0);
    expect(tracing.current.openSpans()).toHaveLength(0);
    const received = await take(await streamOf(traceConsumer(stringConsumer()), [topic]), 3);
    for (const message of received)
      expect(message.headers.get('traceparent')).toBe(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`);
    // The (always-sampling) test tracer records the consumer's spans: children of the writer's context.
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(3);
    for (const process of processes) {
      expect(process.spanContext().traceId).toBe('a'.repeat(32));
      expect(parentSpanId(process)).toBe('b'.repeat(16));
    }
  });

  it('a stream destroyed with a batch in flight: that batch ends OK at its late acknowledgement, the rest stream_closed', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    const stream = producer.asStream({ batchSize: 2, batchTime: 60_000 });
    const flushed = new Promise<void>((resolve) => stream.once('flush', () => resolve()));
    stream.write({ topic, value: 'a' });
    stream.write({ topic, value: 'b' }); // a batch of two: sent now
    stream.write({ topic, value: 'c' }); // buffered behind it
    stream.destroy();
    await new Promise((resolve) => stream.once('close', resolve));
    await flushed; // the batch in flight is still acknowledged after the close
    expect(tracing.current.openSpans()).toHaveLength(0);
    const dropped = droppedOfThree(topic);
    expect(dropped.attributes[ATTR_ERROR_TYPE]).toBe(ERROR_STREAM_CLOSED);
    const received = await take(await streamOf(stringConsumer(), [topic]), 2);
    expect(received.map((m) => m.value)).toEqual(['a', 'b']);
  });

  it('a stream destroyed holding only unsent messages: their spans end stream_closed (timed at the destroy) when the producer closes', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    const stream = producer.asStream({ batchSize: 100, batchTime: 60_000 });
    stream.write({ topic, value: 'a' });
    stream.write({ topic, value: 'b' });
    expect(tracing.current.openSpans()).toHaveLength(2);
    stream.destroy();
    await new Promise((resolve) => stream.once('close', resolve));
    const destroyedAt = Date.now();
    // Waiting out STREAM_CLOSE_GRACE_MS for a batch that might be in flight; the producer's close ends it.
    expect(tracing.current.openSpans()).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await producer.close();
    expect(tracing.current.openSpans()).toHaveLength(0);
    const closed = spansNamed(spans(), `send ${topic}`);
    expect(closed).toHaveLength(2);
    for (const span of closed) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes[ATTR_ERROR_TYPE]).toBe(ERROR_STREAM_CLOSED);
      expect(span.endTime[0] * 1000 + span.endTime[1] / 1e6).toBeLessThanOrEqual(destroyedAt + 1);
    }
    // A write after the end is the stream's to refuse: no span.
    stream.write({ topic, value: 'late' });
    expect(spansNamed(spans(), `send ${topic}`)).toHaveLength(2);
    expect(STREAM_CLOSE_GRACE_MS).toBeGreaterThan(1000);
  });

  it('a failed batch ends its spans, and those of the messages buffered behind it, with the error', async () => {
    const producer = traceProducer(stringProducer({ retries: 0 }));
    const bad = 'hoptrace bad topic!';
    const errors: unknown[] = [];
    // Chaining keeps the traced stream.
    const failing = producer
      .asStream({ batchSize: 1, batchTime: 10 })
      .on('error', (error) => errors.push(error));
    failing.write({ topic: bad, value: 'x' });
    failing.write({ topic: bad, value: 'y' }); // behind the batch in flight
    await new Promise((resolve) => failing.once('close', resolve));
    expect(errors).toHaveLength(1);
    const failed = spansNamed(spans(), `send ${bad}`);
    expect(failed).toHaveLength(2);
    for (const span of failed) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(typeof span.attributes[ATTR_ERROR_TYPE]).toBe('string');
      expect(span.events.some((e) => e.name === 'exception')).toBe(true);
    }
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('keeps at most MAX_OPEN_STREAM_SENDS spans open per stream; later writes still carry the writer context', async () => {
    const [topic] = (await createTopics()) as [string];
    const reader = new TestMetricReader();
    const producer = traceProducer(stringProducer(), {
      meterProvider: new MeterProvider({ readers: [reader] }),
    });
    const stream = producer.asStream({ batchSize: 10_000, batchTime: 60_000, highWaterMark: 10_000 });
    const total = MAX_OPEN_STREAM_SENDS + 5;
    const request = trace.getTracer('test').startSpan('request');
    context.with(trace.setSpan(ROOT_CONTEXT, request), () => {
      for (let i = 0; i < total; i++) stream.write({ topic, value: `v${i}` });
    });
    expect(tracing.current.openSpans().filter((s) => s.name === `send ${topic}`)).toHaveLength(
      MAX_OPEN_STREAM_SENDS,
    );
    await stream.close();
    request.end();
    expect(tracing.current.openSpans()).toHaveLength(0);
    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(MAX_OPEN_STREAM_SENDS);
    expect(sends.every((s) => s.status.code === SpanStatusCode.UNSET)).toBe(true);
    // Every message is counted, with or without a span of its own.
    expect((await metricPoints(reader, 'messaging.client.sent.messages')).map((p) => p.value)).toEqual([
      total,
    ]);
    // Read back untraced: the first messages carry their own send spans, the later ones the writer's.
    const received = await take(await streamOf(stringConsumer(), [topic]), total);
    const sendIds = new Set(sends.map((s) => `00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`));
    const requestParent = `00-${request.spanContext().traceId}-${request.spanContext().spanId}-01`;
    expect(received.map((m) => m.value)).toEqual(Array.from({ length: total }, (_, i) => `v${i}`));
    const carried = received.map((m) => m.headers.get('traceparent') as string);
    expect(new Set(carried.slice(0, MAX_OPEN_STREAM_SENDS))).toEqual(sendIds);
    expect(carried.slice(MAX_OPEN_STREAM_SENDS)).toEqual(Array(5).fill(requestParent));
  });

  it('records messaging.client.sent.messages per written message once its batch is acknowledged', async () => {
    const [topic] = (await createTopics()) as [string];
    const reader = new TestMetricReader();
    const producer = traceProducer(stringProducer(), {
      meterProvider: new MeterProvider({ readers: [reader] }),
    });
    const stream = producer.asStream({ batchSize: 2, batchTime: 60_000 });
    const sent = () => metricPoints(reader, 'messaging.client.sent.messages');
    stream.write({ topic, value: 'a' });
    expect(await sent()).toEqual([]);
    stream.write({ topic, value: 'b' });
    await stream.close();
    expect(await sent()).toEqual([
      {
        attributes: {
          [ATTR_MESSAGING_SYSTEM_NAME]: 'kafka',
          [ATTR_MESSAGING_OPERATION_NAME]: 'send',
          [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
          [ATTR_MESSAGING_DESTINATION_NAME]: topic,
          'server.address': brokerHost,
          'server.port': Number(brokerPort),
        },
        value: 2,
      },
    ]);
  });
});

describe('a pipeline into a producer stream whose source fails midway', () => {
  it('the batch already in flight ends OK at its acknowledgement; the rest end with the source error, once', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    const stream = producer.asStream({ batchSize: 2, batchTime: 60_000 });
    const flushed = new Promise<void>((resolve) => stream.once('flush', () => resolve()));
    const broke = new Error('source broke');
    async function* source() {
      yield { topic, value: '1' };
      yield { topic, value: '2' }; // a batch of two: sent now
      yield { topic, value: '3' }; // buffered behind it, dropped by the destroy
      throw broke;
    }
    const error = await pipeline(Readable.from(source()), stream as unknown as NodeJS.WritableStream).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBe(broke);
    await flushed; // the batch in flight is acknowledged after the pipeline failed
    await producer.close();
    expect(tracing.current.openSpans()).toHaveLength(0);
    const dropped = droppedOfThree(topic);
    expect(dropped.status.message).toBe('source broke');
    const received = await take(await streamOf(stringConsumer(), [topic]), 2);
    expect(received.map((m) => m.value)).toEqual(['1', '2']);
  });
});
