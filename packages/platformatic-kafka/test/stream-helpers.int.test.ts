import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/platformatic-kafka';
import { deferred, onlySpan, parentSpanId, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Message, MessagesStream } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, createTopics, runCleanup, streamOf, stringConsumer, stringProducer } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

type StringMessage = Message<string, string, string, string>;
type StringStream = MessagesStream<string, string, string, string>;

function spans(): ReadableSpan[] {
  return tracing.current.spans();
}

/** Sends `values` to `topic`, each from its own traced `send` under its own `request` root span. */
async function sendEach(topic: string, values: string[]): Promise<void> {
  const producer = traceProducer(stringProducer());
  for (const value of values) {
    await trace.getTracer('test').startActiveSpan(`request ${value}`, async (span) => {
      await producer.send({ messages: [{ topic, key: value, value }] });
      span.end();
    });
  }
}

/** The `send {topic}` span of the message whose `request {value}` span started its trace. */
function sendOf(topic: string, value: string): ReadableSpan {
  const request = onlySpan(spans(), `request ${value}`);
  return onlySpan(
    spansNamed(spans(), `send ${topic}`).filter(
      (s) => s.spanContext().traceId === request.spanContext().traceId,
    ),
    `send ${topic}`,
  );
}

/**
 * Each value got exactly one `process {topic}` span, CONSUMER, child of its message's send span;
 * when `out` is given, the send the application made for it to `out` is a child of that process span.
 * Returns the process spans by value.
 */
function expectProcessed(topic: string, values: string[], out?: string): Map<string, ReadableSpan> {
  const processes = spansNamed(spans(), `process ${topic}`);
  expect(processes).toHaveLength(values.length);
  const byValue = new Map<string, ReadableSpan>();
  for (const value of values) {
    const send = sendOf(topic, value);
    const process = onlySpan(
      processes.filter((s) => s.spanContext().traceId === send.spanContext().traceId),
      `process ${topic}`,
    );
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    if (out !== undefined) {
      const onward = onlySpan(
        spansNamed(spans(), `send ${out}`).filter(
          (s) => s.spanContext().traceId === send.spanContext().traceId,
        ),
        `send ${out}`,
      );
      expect(parentSpanId(onward)).toBe(process.spanContext().spanId);
    }
    byValue.set(value, process);
  }
  expect(tracing.current.openSpans()).toHaveLength(0);
  return byValue;
}

/** Whether the active span is still open (not yet ended). */
function activeOpen(): boolean {
  const id = trace.getActiveSpan()?.spanContext().spanId;
  return tracing.current.openSpans().some((s) => s.spanContext().spanId === id);
}

/** The stream of a fresh traced consumer of `topic`, and a traced producer for the onward sends. */
async function tracedStream(topic: string) {
  const stream = (await streamOf(traceConsumer(stringConsumer()), [topic])) as StringStream;
  return { stream, onward: traceProducer(stringProducer()) };
}

describe('Readable helpers and pipe on a traced consumer stream', () => {
  it('forEach: the callback runs in its message’s process span, which ends when the callback settles; its sends carry the trace', async () => {
    const [topic, out] = (await createTopics(2)) as [string, string];
    const values = ['f1', 'f2', 'f3'];
    await sendEach(topic, values);
    const { stream, onward } = await tracedStream(topic);
    const active: (string | undefined)[] = [];
    const finishedBefore: number[] = [];
    const heldAfterWork: boolean[] = [];
    const seen: string[] = [];
    const done = stream.forEach(async (message: StringMessage) => {
      active.push(trace.getActiveSpan()?.spanContext().spanId);
      finishedBefore.push(spansNamed(spans(), `process ${topic}`).length);
      await onward.send({ messages: [{ topic: out, value: message.value }] });
      heldAfterWork.push(activeOpen());
      seen.push(message.value);
    });
    await until(() => seen.length === 3, 'three messages processed');
    await until(() => spansNamed(spans(), `process ${topic}`).length === 3, 'the third span ended');
    await stream.close();
    await done;
    expect(seen).toEqual(values);
    const processes = expectProcessed(topic, values, out);
    expect(active).toEqual(values.map((v) => processes.get(v)?.spanContext().spanId));
    // Each message's span stayed open through its callback's work, and ended before the next
    // message's callback ran.
    expect(heldAfterWork).toEqual([true, true, true]);
    expect(finishedBefore).toEqual([0, 1, 2]);
  });

  it('map (concurrency 2) then toArray: each callback runs in its own span, held until it settles', async () => {
    const [topic, out] = (await createTopics(2)) as [string, string];
    const values = ['m1', 'm2', 'm3', 'm4'];
    await sendEach(topic, values);
    const { stream, onward } = await tracedStream(topic);
    const active = new Map<string, string | undefined>();
    const held: boolean[] = [];
    let settled = 0;
    const result = stream
      .map(
        async (message: StringMessage) => {
          active.set(message.value, trace.getActiveSpan()?.spanContext().spanId);
          await onward.send({ messages: [{ topic: out, value: message.value }] });
          held.push(activeOpen());
          settled++;
          return message.value.toUpperCase();
        },
        { concurrency: 2 },
      )
      .toArray();
    await until(() => settled === 4, 'four messages mapped');
    await until(() => spansNamed(spans(), `process ${topic}`).length === 4, 'four spans ended');
    await stream.close();
    expect(await result).toEqual(['M1', 'M2', 'M3', 'M4']);
    const processes = expectProcessed(topic, values, out);
    for (const value of values) expect(active.get(value)).toBe(processes.get(value)?.spanContext().spanId);
    // Two at a time: the stream moved on to the next message while a callback still worked on its
    // own, whose span stayed open until it settled.
    expect(held).toEqual([true, true, true, true]);
  });

  it('filter, reduce and find run each callback in its message’s span', async () => {
    const [topic] = (await createTopics()) as [string];
    const values = ['a1', 'a2', 'a3'];
    await sendEach(topic, values);
    const checks: [string, string | undefined][] = [];
    const note = (how: string, message: StringMessage) =>
      checks.push([`${how} ${message.value}`, trace.getActiveSpan()?.spanContext().spanId]);

    let stream = (await tracedStream(topic)).stream;
    const filtered = stream
      .filter((m: StringMessage) => note('filter', m) > 0 && m.value !== 'a2')
      .take(2)
      .toArray();
    expect((await filtered).map((m: StringMessage) => m.value)).toEqual(['a1', 'a3']);

    stream = (await tracedStream(topic)).stream;
    const reduced = stream.take(3).reduce((sum: string, m: StringMessage) => sum + m.value, '');
    expect(await reduced).toBe('a1a2a3');

    stream = (await tracedStream(topic)).stream;
    const found = await stream.find((m: StringMessage) => note('find', m) > 0 && m.value === 'a2');
    expect((found as StringMessage).value).toBe('a2');
    await until(() => spansNamed(spans(), `process ${topic}`).length === 8, 'every span ended');

    // filter: 3 spans, reduce (over take, not a traced stream's own callback): 3, find: 2.
    const processes = spansNamed(spans(), `process ${topic}`);
    const sendIds = new Set(values.map((v) => sendOf(topic, v).spanContext().spanId));
    for (const process of processes) expect(sendIds.has(parentSpanId(process) as string)).toBe(true);
    const ids = new Set(processes.map((s) => s.spanContext().spanId));
    expect(checks.map(([how]) => how)).toEqual(['filter a1', 'filter a2', 'filter a3', 'find a1', 'find a2']);
    for (const [how, active] of checks) {
      const value = how.split(' ')[1] as string;
      const process = processes.find((s) => s.spanContext().spanId === active);
      expect(ids.has(active as string), how).toBe(true);
      expect(process?.spanContext().traceId, how).toBe(sendOf(topic, value).spanContext().traceId);
    }
  });

  it('take and toArray read through the traced iterator: a span per message, ended when the next is read', async () => {
    const [topic] = (await createTopics()) as [string];
    const values = ['t1', 't2', 't3'];
    await sendEach(topic, values);
    const { stream } = await tracedStream(topic);
    const taken = await stream.take(3).toArray();
    expect(taken.map((m: StringMessage) => m.value)).toEqual(values);
    expectProcessed(topic, values);
  });

  it('iterator(): a span per message, ended when the next is asked for', async () => {
    const [topic] = (await createTopics()) as [string];
    const values = ['i1', 'i2'];
    await sendEach(topic, values);
    const { stream } = await tracedStream(topic);
    const open: number[] = [];
    for await (const message of stream.iterator({ destroyOnReturn: false })) {
      open.push(spansNamed(spans(), `process ${topic}`).length);
      if ((message as StringMessage).value === 'i2') break;
    }
    expect(open).toEqual([0, 1]);
    expectProcessed(topic, values);
  });

  it('pipeline into a Writable: a span per message; withMessageContext in write() continues it; no write runs in another message’s span', async () => {
    const [topic, out] = (await createTopics(2)) as [string, string];
    const values = ['p1', 'p2', 'p3', 'p4'];
    await sendEach(topic, values);
    const { stream, onward } = await tracedStream(topic);
    const ambient: [string, string | undefined][] = [];
    const written: string[] = [];
    const sink = new Writable({
      objectMode: true,
      highWaterMark: 2,
      write(message: StringMessage, _encoding, callback) {
        // What is active when the destination is handed a message (the client's callback chain).
        ambient.push([message.value, trace.getActiveSpan()?.spanContext().traceId]);
        withMessageContext(message, () =>
          onward.send({ messages: [{ topic: out, value: message.value }] }),
        ).then(() => {
          written.push(message.value);
          callback();
        }, callback);
      },
    });
    const piped = pipeline(stream, sink);
    await until(() => written.length === 4, 'four messages written');
    await until(() => spansNamed(spans(), `process ${topic}`).length === 4, 'four spans ended');
    await stream.close();
    await piped;
    expect(written).toEqual(values);
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes).toHaveLength(4);
    for (const value of values) {
      const send = sendOf(topic, value);
      const process = onlySpan(
        processes.filter((s) => s.spanContext().traceId === send.spanContext().traceId),
        `process ${topic}`,
      );
      expect(process.kind).toBe(SpanKind.CONSUMER);
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
      const onwardSend = onlySpan(
        spansNamed(spans(), `send ${out}`).filter(
          (s) => s.spanContext().traceId === send.spanContext().traceId,
        ),
        `send ${out}`,
      );
      expect(parentSpanId(onwardSend)).toBe(process.spanContext().spanId);
    }
    // A write the destination buffered runs after an earlier message's write: never in that one's trace.
    for (const [value, traceId] of ambient) {
      if (traceId !== undefined) expect(traceId, value).toBe(sendOf(topic, value).spanContext().traceId);
    }
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('pipe() then unpipe(): the destination stops getting messages and the stream its spans', async () => {
    const [topic] = (await createTopics()) as [string];
    await sendEach(topic, ['u1']);
    const { stream } = await tracedStream(topic);
    const got: string[] = [];
    const sink = new Writable({
      objectMode: true,
      write(message: StringMessage, _encoding, callback) {
        got.push(message.value);
        callback();
      },
    });
    stream.pipe(sink);
    await until(() => got.length === 1, 'piped');
    stream.unpipe(sink);
    expect(stream.listenerCount('data')).toBe(0);
    expect(stream.readableFlowing).toBe(false);
    await until(() => spansNamed(spans(), `process ${topic}`).length === 1, 'the span ended');
    expectProcessed(topic, ['u1']);
  });
});

describe('compose on a traced consumer stream', () => {
  it('compose(passThrough) pipes: a span per message, child of its send span', async () => {
    const [topic] = (await createTopics()) as [string];
    await sendEach(topic, ['c1', 'c2']);
    const { stream } = await tracedStream(topic);
    const composed = stream.compose(new PassThrough({ objectMode: true }));
    const got: string[] = [];
    for await (const message of composed) {
      got.push((message as StringMessage).value);
      if (got.length === 2) break;
    }
    expect(got).toEqual(['c1', 'c2']);
    await until(() => spansNamed(spans(), `process ${topic}`).length === 2, 'two spans ended');
    expectProcessed(topic, ['c1', 'c2']);
  });
});

describe('Readable helpers and pipe: raw vs traced', () => {
  type Mode = 'raw' | 'traced';

  /** Reads the group's committed offset of partition 0 of `topic` (after the stream closed). */
  async function committed(consumer: ReturnType<typeof stringConsumer>, topic: string): Promise<string> {
    const offsets = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0] }] });
    return String(offsets.get(topic)?.[0]);
  }

  it('pipeline into a slow Writable (back-pressure, manual commits) and forEach deliver, pause and commit the same', async () => {
    const run = async (mode: Mode) => {
      const [topic] = (await createTopics()) as [string];
      await stringProducer().send({
        messages: ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'].map((value) => ({ topic, value })),
      });
      const wrap = (c: ReturnType<typeof stringConsumer>) => (mode === 'raw' ? c : traceConsumer(c));

      // pipe: the destination holds the first write, so its buffer fills and the source pauses.
      const piping = wrap(stringConsumer());
      const stream = (await piping.consume({
        topics: [topic],
        mode: 'earliest',
        autocommit: false,
      })) as StringStream;
      cleanup.push(() => stream.close());
      const gate = deferred<void>();
      const writes: string[] = [];
      const sink = new Writable({
        objectMode: true,
        highWaterMark: 2,
        write(message: StringMessage, _encoding, callback) {
          writes.push(message.value);
          gate.promise.then(() => message.commit()).then(() => callback(), callback);
        },
      });
      const piped = pipeline(stream, sink);
      await until(() => stream.readableFlowing === false, 'the source paused');
      const writesWhenPaused = writes.length;
      const bufferedWhenPaused = sink.writableLength;
      gate.resolve();
      await until(() => writes.length === 6 && sink.writableLength === 0, 'every message written');
      await stream.close();
      await piped;
      const pipeCommitted = await committed(piping, topic);

      // forEach with manual commits, closing after the fourth message.
      const each = wrap(stringConsumer());
      const second = (await each.consume({
        topics: [topic],
        mode: 'earliest',
        autocommit: false,
      })) as StringStream;
      cleanup.push(() => second.close());
      const seen: string[] = [];
      const done = second.forEach(async (message: StringMessage) => {
        seen.push(message.value);
        if (seen.length <= 4) await message.commit();
      });
      await until(() => seen.length === 6, 'six messages');
      await second.close();
      await done;
      const eachCommitted = await committed(each, topic);
      return { writes, writesWhenPaused, bufferedWhenPaused, pipeCommitted, seen, eachCommitted };
    };
    const raw = await run('raw');
    const traced = await run('traced');
    expect(traced).toEqual(raw);
    expect(raw.writes).toEqual(['d1', 'd2', 'd3', 'd4', 'd5', 'd6']);
    expect(raw.pipeCommitted).toBe('6');
    expect(raw.eachCommitted).toBe('4');
    // the traced run made a span per message read (6 piped + 6 by forEach), all ended
    expect(spans().filter((s) => s.name.startsWith('process '))).toHaveLength(12);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});
