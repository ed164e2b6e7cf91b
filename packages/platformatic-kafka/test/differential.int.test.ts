import { EventEmitter, once } from 'node:events';
import { traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { sleep, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import { Consumer, type Message, Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, groupId, runCleanup } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

type Mode = 'raw' | 'traced';

function producerFor(mode: Mode): Producer {
  const p = new Producer({ clientId: `diff-${mode}`, bootstrapBrokers: brokers() });
  cleanup.push(() => p.close());
  return mode === 'raw' ? p : traceProducer(p);
}

function consumerFor(mode: Mode, group = groupId()): Consumer {
  const c = new Consumer({
    clientId: `diff-${mode}`,
    groupId: group,
    bootstrapBrokers: brokers(),
    maxWaitTime: 200,
  });
  cleanup.push(() => c.close(true));
  return mode === 'raw' ? c : traceConsumer(c);
}

function show(m: Message<Buffer, Buffer, Buffer, Buffer>, topics: string[]): unknown {
  const headers: [string, string][] = [];
  for (const [k, v] of m.headers) {
    const name = k.toString();
    if (name === 'traceparent' || name === 'tracestate' || name === 'baggage') continue;
    headers.push([name, v?.toString()]);
  }
  return [
    topics.indexOf(m.topic),
    m.partition,
    String(m.offset),
    m.key?.toString() ?? m.key,
    m.value?.toString() ?? m.value,
    headers,
  ];
}

async function both<T>(workload: (mode: Mode) => Promise<T>): Promise<{ raw: T; traced: T }> {
  const raw = await workload('raw');
  const traced = await workload('traced');
  return { raw, traced };
}

describe('@platformatic/kafka differential: raw vs traced', () => {
  it('send with acks 0, 1, -1 (promise and callback) and undefined keys, values, headers; empty and Buffer-keyed Maps', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [a, b] = (await createTopics(2, 2)) as [string, string];
      await sleep(1000);
      const producer = producerFor(mode);
      const empty = new Map();
      const mapped = new Map([[Buffer.from('k'), Buffer.from('v')]]);
      const replies: unknown[] = [];
      for (const acks of [0, 1, -1]) {
        const reply = await producer.send({
          acks,
          messages: [
            { topic: a, partition: 0 },
            { topic: a, partition: 1, key: Buffer.from('k'), headers: empty },
            { topic: b, partition: 0, value: Buffer.from(`v${acks}`), headers: mapped },
            { topic: b, partition: 1, key: undefined, value: undefined, headers: undefined } as never,
          ],
        });
        if (!reply) throw new Error('no reply');
        (reply as { offsets?: { topic: string; partition: number }[] }).offsets?.sort((x, y) =>
          `${x.topic === a}${x.partition}`.localeCompare(`${y.topic === a}${y.partition}`),
        );
        replies.push(
          JSON.parse(
            JSON.stringify(reply, (_k, v) => (typeof v === 'bigint' ? String(v) : v))
              .replaceAll(a, 'A')
              .replaceAll(b, 'B'),
          ),
        );
      }
      // callback style too
      const cbReply = await new Promise((resolve) =>
        producer.send(
          { acks: 0, messages: [{ topic: a, partition: 0, value: Buffer.from('cb') }] },
          (error, r) => resolve([error?.message, r]),
        ),
      );
      const unchanged = empty.size === 0 && mapped.size === 1 && true;
      await sleep(300);
      const consumer = consumerFor('raw');
      const stream = await consumer.consume({ topics: [a, b], mode: 'earliest' });
      const got: unknown[] = [];
      for await (const m of stream) {
        got.push(show(m, [a, b]));
        if (got.length === 13) break;
      }
      await stream.close();
      got.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
      return { replies, cbReply: JSON.stringify(cbReply), unchanged, got };
    });
    expect(traced).toEqual(raw);
  });

  it('consume several topics with autocommit off and message.commit(); a second member resumes there', async () => {
    const { raw, traced } = await both(async (mode) => {
      const topics = await createTopics(2, 1);
      await sleep(1000);
      const producer = producerFor('raw');
      await producer.send({
        messages: topics.flatMap((topic) => [0, 1, 2].map((i) => ({ topic, value: Buffer.from(`m${i}`) }))),
      });
      const group = groupId();
      const consumer = consumerFor(mode, group);
      const stream = await consumer.consume({ topics, mode: 'earliest', autocommit: false });
      const got: unknown[] = [];
      for await (const m of stream) {
        got.push(show(m, topics));
        if (m.offset === 1n && m.topic === topics[0]) await m.commit();
        if (got.length === 6) break;
      }
      await stream.close();
      await consumer.close();
      const second = consumerFor('raw', group);
      const again = await second.consume({
        topics,
        mode: 'committed',
        fallbackMode: 'earliest',
        autocommit: false,
      });
      const rest: unknown[] = [];
      for await (const m of again) {
        rest.push(show(m, topics));
        if (rest.length === 4) break;
      }
      await again.close();
      got.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
      rest.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
      return { got, rest };
    });
    expect(traced).toEqual(raw);
  });

  it('stream close() while a message is held by the iterator; close twice; next() after close', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await producerFor('raw').send({
        messages: [0, 1, 2].map((i) => ({ topic, value: Buffer.from(`m${i}`) })),
      });
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const iterator = stream[Symbol.asyncIterator]();
      const first = await iterator.next();
      const closed = await stream.close().then(
        () => 'ok',
        (e: Error) => e.message,
      );
      const closedAgain = await stream.close().then(
        () => 'ok',
        (e: Error) => e.message,
      );
      const after: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await iterator.next();
        after.push(r.done ? 'done' : r.value.value.toString());
        if (r.done) break;
      }
      const ret = await iterator.return?.();
      return { first: first.value?.value.toString(), closed, closedAgain, after, ret, ended: stream.closed };
    });
    expect(traced).toEqual(raw);
    // The held message's span ended once, at the close.
    expect(tracing.current.spans().filter((s) => s.name.startsWith('process '))).toHaveLength(1);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('data listener that throws synchronously: what the stream does is the same', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await producerFor('raw').send({
        messages: [0, 1].map((i) => ({ topic, value: Buffer.from(`m${i}`) })),
      });
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const events: string[] = [];
      const failure = new Error('listener broke');
      const caught: unknown[] = [];
      const onUncaught = (e: unknown) => caught.push(e);
      process.prependListener('uncaughtException', onUncaught);
      stream.on('error', (e) => events.push(`error:${(e as Error).message}`));
      stream.on('close', () => events.push('close'));
      let n = 0;
      stream.on('data', (m) => {
        events.push(`data:${m.value.toString()}`);
        n++;
        if (n === 1) throw failure;
      });
      // Waits for what the throw led to (no timeout swallowed: a first fetch slower than one was
      // compared as a run that saw nothing).
      await until(() => n >= 2 || events.includes('close') || caught.length > 0, 'data');
      await sleep(300);
      process.removeListener('uncaughtException', onUncaught);
      await stream.close().catch(() => undefined);
      return { events, caught: caught.map((e) => e === failure) };
    });
    expect(traced).toEqual(raw);
  });
});

/**
 * A stream of a new topic holding one message, consumed from the start by `mode`'s consumer, made
 * while `EventEmitter.captureRejections` is `capture` (a stream reads it when it is made).
 */
async function oneMessageStream(mode: Mode, capture: boolean) {
  const [topic] = (await createTopics()) as [string];
  await producerFor('raw').send({ messages: [{ topic, value: Buffer.from('m') }] });
  const consumer = consumerFor(mode);
  const before = EventEmitter.captureRejections;
  EventEmitter.captureRejections = capture;
  try {
    return await consumer.consume({ topics: [topic], mode: 'earliest' });
  } finally {
    EventEmitter.captureRejections = before;
  }
}

describe('an async data listener that rejects', () => {
  it.each([true, false])(
    'captureRejections %j: the stream gets the error as without hoptrace, and what is unhandled is the same',
    async (capture) => {
      const { raw, traced } = await both(async (mode) => {
        const stream = await oneMessageStream(mode, capture);
        const failure = new Error('listener rejected');
        const errors: unknown[] = [];
        const unhandled: unknown[] = [];
        const onUnhandled = (reason: unknown) => unhandled.push(reason);
        process.on('unhandledRejection', onUnhandled);
        let calls = 0;
        try {
          stream.on('error', (e) => errors.push(e));
          stream.on('data', async () => {
            calls++;
            throw failure;
          });
          await until(() => calls > 0 && (errors.length > 0 || unhandled.length > 0), 'the rejection');
          await sleep(200);
        } finally {
          process.off('unhandledRejection', onUnhandled);
        }
        return { errors: errors.map((e) => e === failure), unhandled: unhandled.map((e) => e === failure) };
      });
      expect(raw).toEqual(capture ? { errors: [true], unhandled: [] } : { errors: [], unhandled: [true] });
      expect(traced).toEqual(raw);
    },
  );
});

describe('a data listener that returns a thenable which is not a promise', () => {
  it.each([true, false])(
    'captureRejections %j: the thenable is run only when the emitter runs it, and what is unhandled is the same',
    async (capture) => {
      const { raw, traced } = await both(async (mode) => {
        const stream = await oneMessageStream(mode, capture);
        const failure = new Error('query failed');
        const events: unknown[] = [];
        const onUnhandled = (reason: unknown) => events.push(`unhandled:${reason === failure}`);
        process.on('unhandledRejection', onUnhandled);
        try {
          stream.on('error', (e) => events.push(`error:${e === failure}`));
          // A lazy query-builder-like thenable: it does its work (and fails) only once `then` is called.
          stream.on('data', () => {
            events.push('data');
            return {
              then(_resolve: unknown, reject: (reason: unknown) => void) {
                events.push('ran');
                reject(failure);
              },
            };
          });
          await until(() => events.includes('data'), 'the message');
          await sleep(300);
        } finally {
          process.off('unhandledRejection', onUnhandled);
        }
        await stream.close().catch(() => undefined);
        return events;
      });
      expect(raw).toEqual(capture ? ['data', 'ran', 'error:true'] : ['data']);
      expect(traced).toEqual(raw);
      expect(tracing.current.spans().filter((s) => s.name.startsWith('process '))).toHaveLength(1);
    },
  );
});

describe('data listeners as the stream lists them', () => {
  it('listeners() and listenerCount(event, listener) name the listener the application added', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const handler = () => undefined;
      const once = () => undefined;
      stream.on('data', handler);
      stream.once('data', once);
      const seen = {
        listed: stream
          .listeners('data')
          .map((l) => (l === handler ? 'handler' : l === once ? 'once' : 'other')),
        counted: [stream.listenerCount('data', handler), stream.listenerCount('data', once)],
      };
      stream.off('data', handler);
      stream.off('data', once);
      await stream.close();
      return { ...seen, after: stream.listenerCount('data') };
    });
    expect(raw).toEqual({ listed: ['handler', 'once'], counted: [1, 1], after: 0 });
    expect(traced).toEqual(raw);
  });
});

describe('overlapping next() calls on a traced stream iterator', () => {
  it('each message handed out ends its span once a later next() is asked for, not at the close', async () => {
    const [topic] = (await createTopics()) as [string];
    await producerFor('raw').send({
      messages: [0, 1, 2].map((i) => ({ topic, value: Buffer.from(`m${i}`) })),
    });
    const consumer = consumerFor('traced');
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const iterator = stream[Symbol.asyncIterator]();
    const [a, b] = await Promise.all([iterator.next(), iterator.next()]);
    expect([a.value?.value.toString(), b.value?.value.toString()]).toEqual(['m0', 'm1']);
    expect(tracing.current.openSpans()).toHaveLength(2);
    const c = await iterator.next();
    expect(c.value?.value.toString()).toBe('m2');
    // m0 and m1 are done (a later message was asked for): only m2's span is open.
    expect(tracing.current.openSpans()).toHaveLength(1);
    await stream.close();
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});

describe('the client a traced stream names', () => {
  it('stream.consumer and a producer stream’s producer are the traced clients, as without hoptrace they are the clients the application holds', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic, other] = (await createTopics(2)) as [string, string];
      const producer = producerFor(mode);
      const producerStream = producer.asStream({ batchSize: 1 });
      const sameProducer = producerStream.producer === producer;
      // A send through the stream's producer: traced like any send of the traced producer.
      await producerStream.producer.send({ messages: [{ topic, value: Buffer.from('via-stream') }] });
      await producerStream.close();
      await producerFor('raw').send({ messages: [{ topic: other, value: Buffer.from('o') }] });
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const sameConsumer = stream.consumer === consumer;
      const first = await stream[Symbol.asyncIterator]().next();
      // A second stream made through the first one's consumer.
      const second = await stream.consumer.consume({ topics: [other], mode: 'earliest' });
      const secondIterator = second[Symbol.asyncIterator]();
      const got = await secondIterator.next();
      await secondIterator.return?.();
      await stream.close();
      return {
        sameProducer,
        sameConsumer,
        values: [first.value?.value.toString(), got.value?.value.toString()],
        traceparent: [...(first.value?.headers.keys() ?? [])].some((k) => k.toString() === 'traceparent'),
      };
    });
    expect(raw).toMatchObject({ sameProducer: true, sameConsumer: true, values: ['via-stream', 'o'] });
    expect(traced).toMatchObject({ sameProducer: true, sameConsumer: true, values: ['via-stream', 'o'] });
    expect(traced.traceparent).toBe(true);
    const spans = tracing.current.spans();
    const sends = spans.filter((s) => s.name.startsWith('send '));
    expect(sends).toHaveLength(1);
    // Both streams' messages got their process spans; the one sent through the stream's producer
    // continues that send.
    const processes = spans.filter((s) => s.name.startsWith('process '));
    expect(processes).toHaveLength(2);
    const viaStream = processes.find(
      (p) =>
        p.attributes['messaging.destination.name'] === sends[0]?.attributes['messaging.destination.name'],
    );
    expect(viaStream?.spanContext().traceId).toBe(sends[0]?.spanContext().traceId);
    expect(viaStream?.parentSpanContext?.spanId).toBe(sends[0]?.spanContext().spanId);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});

describe('removeAllListeners on a traced stream', () => {
  it('a producer stream whose flush and close listeners the application removed still ends each send span at its acknowledgement', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      const stream = producerFor(mode).asStream({ batchSize: 2, batchTime: 60_000 });
      const counted: number[] = [];
      stream.on('flush', (report) => counted.push(report.count));
      stream.removeAllListeners('flush');
      const flushed = once(stream, 'flush');
      stream.write({ topic, value: Buffer.from('a') });
      stream.write({ topic, value: Buffer.from('b') });
      const [report] = await flushed;
      const afterFlush = mode === 'traced' ? tracing.current.openSpans().length : 0;
      stream.removeAllListeners();
      stream.write({ topic, value: Buffer.from('c') });
      await stream.close();
      return { counted, flushed: report.count, afterFlush, closed: stream.closed };
    });
    expect(raw).toEqual({ counted: [], flushed: 2, afterFlush: 0, closed: true });
    expect(traced).toEqual(raw);
    const sends = tracing.current.spans().filter((s) => s.name.startsWith('send '));
    expect(sends).toHaveLength(3);
    for (const send of sends) expect(send.status.code).toBe(SpanStatusCode.UNSET);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('a consumer stream whose listeners the application removed still ends the held span when it closes', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await producerFor('raw').send({ messages: [{ topic, value: Buffer.from('m') }] });
      const stream = await consumerFor(mode).consume({ topics: [topic], mode: 'earliest' });
      const first = await stream[Symbol.asyncIterator]().next();
      stream.removeAllListeners();
      const closed = once(stream, 'close');
      stream.destroy();
      await closed;
      return { value: first.value?.value.toString(), listeners: stream.listenerCount('close') };
    });
    expect(traced).toEqual(raw);
    expect(tracing.current.spans().filter((s) => s.name.startsWith('process '))).toHaveLength(1);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});

describe("hoptrace's own stream listeners as the streams list them", () => {
  it('listeners(), listenerCount() and eventNames() of a consumer stream and a producer stream show what the client and the application added', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      const stream = await consumerFor(mode).consume({ topics: [topic], mode: 'earliest' });
      const onClose = () => undefined;
      stream.on('close', onClose);
      const consumerSide = {
        names: stream.eventNames().map(String).sort(),
        close: [stream.listenerCount('close'), stream.listeners('close').includes(onClose)],
        closeListed: stream.listeners('close').length,
      };
      await stream.close();
      const producerStream = producerFor(mode).asStream({ batchSize: 1 });
      const before = {
        names: producerStream.eventNames().map(String).sort(),
        counts: [producerStream.listenerCount('flush'), producerStream.listenerCount('close')],
        listed: [producerStream.listeners('flush').length, producerStream.listeners('close').length],
      };
      const onFlush = () => undefined;
      producerStream.on('flush', onFlush);
      const after = {
        names: producerStream.eventNames().map(String).sort(),
        flush: [producerStream.listenerCount('flush'), producerStream.listeners('flush')[0] === onFlush],
      };
      await producerStream.close();
      return { consumerSide, before, after, closedCount: stream.listenerCount('close') };
    });
    expect(traced).toEqual(raw);
    expect(raw.after.flush).toEqual([1, true]);
  });
});

describe('a producer with a beforeSerialization hook, sending headers: null', () => {
  it('a traced send fails as the raw one does (same error, thrown at the call), the send span ends ERROR with it, nothing is written', async () => {
    const [topic] = (await createTopics()) as [string];
    await sleep(1000);
    const hooked = (mode: Mode) => {
      const p = new Producer({
        clientId: `diff-${mode}`,
        bootstrapBrokers: brokers(),
        beforeSerialization: (_data, _type, _message, done) => done(null),
      });
      cleanup.push(() => p.close());
      return mode === 'raw' ? p : traceProducer(p);
    };
    const attempt = (producer: Producer, style: 'promise' | 'callback') => {
      const messages = [{ topic, value: Buffer.from(style), headers: null as never }];
      try {
        if (style === 'promise')
          return producer.send({ messages }).then(
            () => 'ok',
            (e: Error) => ['rejected', e.constructor.name, e.message],
          );
        let answer: (value: unknown) => void = () => undefined;
        const answered = new Promise((resolve) => {
          answer = resolve;
        });
        producer.send({ messages }, (e) => answer(e ? ['answered', e.message] : 'ok'));
        return answered;
      } catch (e) {
        return ['threw', (e as Error).constructor.name, (e as Error).message];
      }
    };
    const { raw, traced } = await both(async (mode) => {
      const producer = hooked(mode);
      return [await attempt(producer, 'promise'), await attempt(producer, 'callback')];
    });
    expect(raw[0]).toEqual(['threw', 'TypeError', 'Cannot convert undefined or null to object']);
    expect(traced).toEqual(raw);
    const sends = tracing.current.spans().filter((s) => s.name.startsWith('send '));
    expect(sends).toHaveLength(2);
    for (const send of sends) {
      expect(send.status.code).toBe(SpanStatusCode.ERROR);
      expect(send.attributes['error.type']).toBe('TypeError');
    }
    expect(tracing.current.openSpans()).toHaveLength(0);
    // Nothing reached the topic either way: a plain send after them is its first message.
    await producerFor('raw').send({ messages: [{ topic, value: Buffer.from('after') }] });
    const consumer = consumerFor('raw');
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const first = await stream[Symbol.asyncIterator]().next();
    await stream.close();
    expect(first.value?.value.toString()).toBe('after');
  });
});

describe('a send whose headers the client cannot encode', () => {
  it('fails as the raw one does (same error class and message), with a traceparent undefined, null or a number, in a record or a Map', async () => {
    const bad: [string, () => unknown][] = [
      ['record, undefined', () => ({ traceparent: undefined })],
      ['record, null', () => ({ traceparent: null })],
      ['record, number', () => ({ traceparent: 7 })],
      ['Map, undefined', () => new Map([[Buffer.from('traceparent'), undefined]])],
      ['Map, null', () => new Map([[Buffer.from('traceparent'), null]])],
      ['Map, other header null', () => new Map([[Buffer.from('x-other'), null]])],
    ];
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics(1, 1)) as [string];
      const producer = producerFor(mode);
      const outcomes: unknown[] = [];
      for (const [label, headers] of bad) {
        try {
          await producer.send({
            messages: [{ topic, partition: 0, value: Buffer.from(label), headers: headers() as never }],
          });
          outcomes.push([label, 'sent']);
        } catch (error) {
          outcomes.push([label, (error as Error)?.constructor?.name, (error as Error)?.message]);
        }
      }
      return outcomes;
    });
    expect(traced).toEqual(raw);
    // Both paths ran: @platformatic/kafka 2.12 refuses such a record (MultipleErrors) and sends such a Map.
    expect(raw.map((o) => (o as unknown[])[1] === 'sent')).toEqual([false, false, false, true, true, true]);
    // A send the client refused is no success on its span.
    const failed = raw.filter((o) => (o as unknown[])[1] !== 'sent').length;
    const sends = tracing.current.spans().filter((s) => s.name.startsWith('send '));
    expect(sends.filter((s) => s.status.code === SpanStatusCode.ERROR)).toHaveLength(failed);
  });
});
