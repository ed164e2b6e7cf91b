import type { EventEmitter } from 'node:events';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/platformatic-kafka';
import { sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Admin, Consumer, type Message, MessagesStreamModes, Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, groupId, runCleanup } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

type Mode = 'raw' | 'traced';
type Msg = Message<Buffer, Buffer, Buffer, Buffer>;

/** A traced producer in both runs: the consumer side is what differs. */
function producer(): Producer {
  const p = new Producer({ clientId: 'pltrev-producer', bootstrapBrokers: brokers() });
  cleanup.push(() => p.close());
  return traceProducer(p);
}

function consumerFor(mode: Mode, group = groupId(), extra: Record<string, unknown> = {}): Consumer {
  const c = new Consumer({
    clientId: `pltrev-${mode}`,
    groupId: group,
    bootstrapBrokers: brokers(),
    maxWaitTime: 200,
    ...extra,
  } as never);
  cleanup.push(() => c.close(true));
  return mode === 'raw' ? c : traceConsumer(c);
}

async function send(topic: string, values: string[], partition?: number): Promise<void> {
  await producer().send({
    messages: values.map((value) => ({
      topic,
      value: Buffer.from(value),
      ...(partition === undefined ? {} : { partition }),
    })),
  });
}

async function committed(group: string, topic: string): Promise<string[]> {
  const admin = new Admin({ clientId: 'pltrev-admin', bootstrapBrokers: brokers() });
  try {
    const groups = await admin.listConsumerGroupOffsets({ groups: [group] });
    const found = groups[0]?.topics.find((t) => t.name === topic);
    return (found?.partitions ?? []).map((p) => `${p.partitionIndex}:${String(p.committedOffset)}`).sort();
  } finally {
    await admin.close();
  }
}

const text = (m: Msg | undefined) => m?.value?.toString();
const outcome = (p: unknown) =>
  Promise.resolve(p).then(
    (v) => `ok:${v === undefined ? '' : JSON.stringify(v)}`,
    (e: Error) => `err:${e.message}`,
  );

/** Runs a workload raw, then traced; `topic` is the traced run's topic. */
async function both<T>(
  workload: (mode: Mode) => Promise<{ topic: string; seen: T }>,
): Promise<{ raw: T; traced: T; topic: string }> {
  const raw = await workload('raw');
  tracing.current.reset();
  const traced = await workload('traced');
  return { raw: raw.seen, traced: traced.seen, topic: traced.topic };
}

/** The traced run's process spans: one per handed-out message, ended, children of their send span. */
function checkProcessSpans(topic: string, count: number): ReadableSpan[] {
  const spans = tracing.current.spans();
  const processes = spansNamed(spans, `process ${topic}`);
  expect(processes).toHaveLength(count);
  expect(tracing.current.openSpans()).toHaveLength(0);
  const sends = spansNamed(spans, `send ${topic}`);
  for (const p of processes) {
    const parent = sends.find((s) => s.spanContext().spanId === p.parentSpanContext?.spanId);
    expect(parent, 'the process span is a child of its send span').toBeDefined();
    expect(p.spanContext().traceId).toBe(parent?.spanContext().traceId);
  }
  return processes;
}

describe('@platformatic/kafka consumer groups and commits: raw vs traced', () => {
  it('autocommit off: commit inside and outside withMessageContext, after the span ended, twice', async () => {
    const {
      raw,
      traced,
      topic: tracedTopic,
    } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2', 'm3']);
      const group = groupId();
      const consumer = consumerFor(mode, group);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      const seen: unknown[] = [];
      let held: Msg | undefined;
      for await (const m of stream) {
        seen.push(text(m));
        if (m.offset === 0n) seen.push(await withMessageContext(m, () => outcome(m.commit() as never)));
        if (m.offset === 1n) held = m;
        if (m.offset === 2n && held) {
          // m1's span has ended (the loop asked for m2): commit it now, twice.
          seen.push(await outcome(held.commit() as never), await outcome(held.commit() as never));
          seen.push(await committed(group, topic));
        }
        if (m.offset === 3n) {
          seen.push(await Promise.all([outcome(m.commit() as never), outcome(m.commit() as never)]));
          break;
        }
      }
      seen.push(await committed(group, topic));
      await consumer.close();
      return { topic, seen };
    });
    expect(raw).toEqual(traced);
    const processes = checkProcessSpans(tracedTopic, 4);
    expect(processes.every((s) => s.status.code !== SpanStatusCode.ERROR)).toBe(true);
  });

  it.each(['iterator', 'data'] as const)(
    'a value deserializer that throws on one message (%s): the same messages, error and events',
    async (style) => {
      const { raw, traced, topic } = await both(async (mode) => {
        const [topic] = (await createTopics()) as [string];
        await send(topic, ['m0', 'bad', 'm2']);
        const consumer = consumerFor(mode);
        const stream = await consumer.consume({
          topics: [topic],
          mode: 'earliest',
          deserializers: {
            value: (b?: Buffer) => {
              if (b?.toString() === 'bad') throw new Error('cannot read');
              return b;
            },
          },
        } as never);
        const seen: unknown[] = [];
        const describe = (e: unknown) =>
          `${(e as Error).message}/${((e as Error).cause as Error | undefined)?.message}`;
        stream.on('close', () => seen.push('close'));
        stream.on('end', () => seen.push('end'));
        if (style === 'iterator') {
          try {
            for await (const m of stream) seen.push(text(m as Msg));
          } catch (error) {
            seen.push(`thrown:${describe(error)}`);
          }
        } else {
          stream.on('error', (e) => seen.push(`error:${describe(e)}`));
          stream.on('data', (m) => seen.push(text(m as Msg)));
        }
        // The stream's destroy closes its connections before 'close': wait for it (either style),
        // then give anything that would wrongly follow 'close' a moment to show.
        await until(() => seen.includes('close'), 'close');
        await sleep(100);
        seen.push({ destroyed: stream.destroyed, closed: stream.closed });
        return { topic, seen };
      });
      expect(traced).toEqual(raw);
      checkProcessSpans(topic, style === 'data' ? 1 : 0);
    },
  );

  it.each(['continue', 'skip'] as const)(
    'onDeserializationError %s: the same messages; a degraded message still continues its trace',
    async (action) => {
      const { raw, traced, topic } = await both(async (mode) => {
        const [topic] = (await createTopics()) as [string];
        await send(topic, ['m0', 'bad', 'm2']);
        const consumer = consumerFor(mode);
        const stream = await consumer.consume({
          topics: [topic],
          mode: 'earliest',
          deserializers: {
            headerKey: (b?: Buffer) => b?.toString(),
            value: (b?: Buffer) => {
              if (b?.toString() === 'bad') throw new Error('cannot read');
              return b?.toString();
            },
          },
          onDeserializationError: () => action,
        } as never);
        const seen: unknown[] = [];
        for await (const m of stream) {
          seen.push([
            String(m.value),
            (m.metadata as { deserializationError?: unknown }).deserializationError !== undefined,
          ]);
          if (String(m.value) === 'm2') break;
        }
        return { topic, seen };
      });
      expect(traced).toEqual(raw);
      checkProcessSpans(topic, action === 'continue' ? 3 : 2);
    },
  );

  it('header deserializers returning numbers, Maps, objects and undefined: same messages, spans without a parent', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await producer().send({
        messages: [
          { topic, value: Buffer.from('m0'), headers: new Map([[Buffer.from('x-a'), Buffer.from('a')]]) },
        ],
      });
      const consumer = consumerFor(mode);
      let n = 0;
      const stream = await consumer.consume({
        topics: [topic],
        mode: 'earliest',
        deserializers: {
          headerKey: (b?: Buffer) => (b?.toString() === 'traceparent' ? 42 : { name: b?.toString() }),
          headerValue: (b?: Buffer) => (n++ % 2 === 0 ? new Map([['v', b?.toString()]]) : undefined),
        },
      } as never);
      const seen: unknown[] = [];
      for await (const m of stream) {
        seen.push([text(m as Msg), [...(m.headers as Map<unknown, unknown>)].length]);
        break;
      }
      return { topic, seen };
    });
    expect(traced).toEqual(raw);
    const [process] = spansNamed(tracing.current.spans(), `process ${topic}`);
    expect(process?.parentSpanContext).toBeUndefined();
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('pause() and resume() around a data listener: the same messages, each span ended once', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2']);
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const seen: unknown[] = [];
      stream.on('data', async (m) => {
        seen.push(text(m as Msg));
        if (seen.length === 1) seen.push(stream.pause() === stream, stream.isPaused());
        await sleep(10);
      });
      // The first message (and the pause it made), then a while paused: nothing more may arrive.
      await until(() => seen.length >= 3, 'the first message and the pause');
      await sleep(600);
      seen.push(`paused:${seen.length}`);
      seen.push(stream.resume() === stream);
      await until(() => seen.includes('m2'), 'm2');
      await stream.close();
      return { topic, seen };
    });
    expect(traced).toEqual(raw);
    checkProcessSpans(topic, 3);
  });

  it('for await with break, then a new consume() on the same consumer', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2']);
      const consumer = consumerFor(mode);
      const first = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      const seen: unknown[] = [];
      for await (const m of first) {
        seen.push(text(m));
        break;
      }
      // break destroys the stream; it is closed once its connections are.
      await until(() => first.closed, 'the first stream closed');
      seen.push({ destroyed: first.destroyed, closed: first.closed });
      const second = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      for await (const m of second) {
        seen.push(text(m));
        if (m.offset === 2n) break;
      }
      await consumer.close();
      return { topic, seen };
    });
    expect(traced).toEqual(raw);
    checkProcessSpans(topic, 4);
  });

  it('modes: MANUAL with offsets, LATEST, COMMITTED with a fallback, and empty fetches make no span', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      const [empty] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2', 'm3']);
      const group = groupId();
      const seen: unknown[] = [];
      const c1 = consumerFor(mode, group, { minBytes: 1, maxWaitTime: 50 });
      const manual = await c1.consume({
        topics: [topic],
        mode: MessagesStreamModes.MANUAL,
        offsets: [{ topic, partition: 0, offset: 2n }],
        autocommit: false,
      });
      for await (const m of manual) {
        seen.push(`manual:${text(m)}`);
        if (m.offset === 2n) await m.commit();
        if (m.offset === 3n) break;
      }
      const committedStream = await c1.consume({
        topics: [topic],
        mode: MessagesStreamModes.COMMITTED,
        fallbackMode: 'earliest',
        autocommit: false,
      });
      for await (const m of committedStream) {
        seen.push(`committed:${text(m)}`);
        if (m.offset === 3n) break;
      }
      const latest = await c1.consume({
        topics: [topic],
        mode: MessagesStreamModes.LATEST,
        autocommit: false,
      });
      let fetches = 0;
      latest.on('fetch', () => fetches++);
      const iterator = latest[Symbol.asyncIterator]();
      const next = iterator.next();
      await until(() => fetches > 2, 'fetches');
      await send(topic, ['m4']);
      seen.push(`latest:${text((await next).value)}`);
      await iterator.return?.();
      const c2 = consumerFor(mode, groupId(), { minBytes: 1, maxWaitTime: 50 });
      const idle = await c2.consume({ topics: [empty], mode: 'earliest' });
      let idleFetches = 0;
      idle.on('fetch', () => idleFetches++);
      const got: unknown[] = [];
      idle.on('data', (m) => got.push(m));
      await until(() => idleFetches > 5, 'empty fetches');
      await idle.close();
      seen.push(`idle:${got.length}`);
      return { topic, seen };
    });
    expect(traced).toEqual(raw);
    expect(raw).toEqual(['manual:m2', 'manual:m3', 'committed:m3', 'latest:m4', 'idle:0']);
    // manual m2, m3; committed m3; latest m4: and nothing for the empty fetches.
    expect(tracing.current.spans().filter((s) => s.name.startsWith('process '))).toHaveLength(4);
    checkProcessSpans(topic, 4);
  });

  it('consumer.close(true) with a held message; next() after; leaveGroup with and without force', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2']);
      const seen: unknown[] = [];
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      stream.on('end', () => seen.push('end'));
      stream.on('close', () => seen.push('close'));
      const iterator = stream[Symbol.asyncIterator]();
      seen.push(text((await iterator.next()).value));
      seen.push(await outcome(consumer.close(true)));
      seen.push(tracing.current.openSpans().length);
      const after = await iterator.next().then(
        (r) => (r.done ? 'done' : text(r.value)),
        (e: Error) => `err:${e.message}`,
      );
      seen.push(after, { closed: stream.closed, active: consumer.isActive() });

      const other = consumerFor(mode);
      const s2 = await other.consume({ topics: [topic], mode: 'earliest' });
      s2.on('close', () => seen.push('close2'));
      const it2 = s2[Symbol.asyncIterator]();
      seen.push(text((await it2.next()).value));
      seen.push(await outcome(other.leaveGroup()));
      seen.push(await outcome(other.leaveGroup(true)));
      seen.push(tracing.current.openSpans().length);
      const after2 = await it2.next().then(
        (r) => (r.done ? 'done' : text(r.value)),
        (e: Error) => `err:${e.message}`,
      );
      seen.push(after2, { closed: s2.closed });
      seen.push(await outcome(other.close()));
      return { topic, seen };
    });
    expect(traced).toEqual(raw);
    checkProcessSpans(topic, 2);
  });

  it('stream.close() while an async data listener still runs: the span ends once', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1']);
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const seen: unknown[] = [];
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      stream.on('data', async (m) => {
        seen.push(text(m as Msg));
        await gate;
        seen.push(`done:${text(m as Msg)}`);
      });
      await until(() => seen.length > 0, 'first message');
      seen.push(await outcome(stream.close()));
      release();
      // Every listener call that started finishes once released.
      const started = () => seen.filter((s) => typeof s === 'string' && /^m\d$/.test(s)).length;
      const finished = () => seen.filter((s) => typeof s === 'string' && s.startsWith('done:')).length;
      await until(() => finished() === started(), 'the listeners to finish');
      return { topic, seen };
    });
    expect(traced).toEqual(raw);
    checkProcessSpans(
      topic,
      (raw as unknown[]).filter((s) => typeof s === 'string' && /^m\d$/.test(s)).length,
    );
  });

  it('a listener called by the stream gets the stream the application holds as `this`', async () => {
    const { raw, traced } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1']);
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const seen: unknown[] = [];
      const onData = function (this: unknown, m: unknown) {
        seen.push(text(m as Msg), this === stream);
      };
      const onClose = function (this: unknown) {
        seen.push('close', this === stream);
      };
      (stream as unknown as EventEmitter).on('newListener', (event: unknown, listener: unknown) => {
        if (event !== 'newListener')
          seen.push(`new:${String(event)}`, listener === onData || listener === onClose);
      });
      stream.once('data', onData);
      stream.once('close', onClose);
      await until(() => seen.length >= 6, 'data');
      await stream.close();
      return { topic, seen };
    });
    expect(raw.slice(0, 6)).toEqual(['new:data', true, 'new:close', true, 'm0', true]);
    expect(raw).toContain('close');
    expect(traced).toEqual(raw);
  });

  it('a data listener that removes itself through `this`, and one it adds through `this`', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2']);
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const seen: unknown[] = [];
      type Self = typeof stream;
      const later = (m: Msg) => {
        seen.push(`later:${text(m)}`);
      };
      stream.on('data', function first(this: Self, m) {
        seen.push(`first:${text(m as Msg)}`);
        this.off('data', first);
        this.on('data', later as never);
      });
      await until(() => seen.includes('later:m2'), 'm2');
      seen.push(stream.listenerCount('data'), stream.listeners('data').length);
      await stream.close();
      return { topic, seen };
    });
    expect(raw).toEqual(['first:m0', 'later:m1', 'later:m2', 1, 1]);
    expect(traced).toEqual(raw);
    checkProcessSpans(topic, 3);
  });

  it("a 'readable' listener reading with this.read(): the same messages, a span per message", async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2']);
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const seen: unknown[] = [];
      stream.on('readable', function (this: typeof stream) {
        for (let m = this.read() as Msg | null; m !== null; m = this.read() as Msg | null) seen.push(text(m));
      });
      await until(() => seen.includes('m2'), 'm2');
      await stream.close();
      return { topic, seen };
    });
    expect(raw).toEqual(['m0', 'm1', 'm2']);
    expect(traced).toEqual(raw);
    checkProcessSpans(topic, 3);
  });

  it('iterator({ destroyOnReturn: false }): break, then a second loop on the same stream', async () => {
    const { raw, traced, topic } = await both(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      await send(topic, ['m0', 'm1', 'm2']);
      const consumer = consumerFor(mode);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      const seen: unknown[] = [];
      for await (const m of stream.iterator({ destroyOnReturn: false })) {
        seen.push(text(m));
        break;
      }
      seen.push(stream.destroyed);
      for await (const m of stream) {
        seen.push(text(m));
        if (m.offset === 2n) break;
      }
      return { topic, seen };
    });
    expect(traced).toEqual(raw);
    checkProcessSpans(topic, 3);
  });

  it.each(['Symbol.asyncIterator', 'iterator()'] as const)(
    'the %s iterator is async-disposable (`await using`) as the raw one is: disposing it ends the held span and destroys the stream',
    async (how) => {
      const { raw, traced, topic } = await both(async (mode) => {
        const [topic] = (await createTopics()) as [string];
        await send(topic, ['m0', 'm1']);
        const consumer = consumerFor(mode);
        const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
        const iterator = how === 'iterator()' ? stream.iterator() : stream[Symbol.asyncIterator]();
        const seen: unknown[] = [text((await iterator.next()).value)];
        // What `await using iterator = ...` calls when its block ends.
        const dispose = (iterator as unknown as Record<symbol, unknown>)[Symbol.asyncDispose];
        seen.push(typeof dispose);
        if (typeof dispose === 'function') {
          seen.push(await outcome(dispose.call(iterator)));
          // Disposing destroys the stream; it is closed once its connections are.
          await until(() => stream.closed, 'the stream closed');
        }
        seen.push({ destroyed: stream.destroyed, closed: stream.closed });
        return { topic, seen };
      });
      expect(raw).toEqual(['m0', 'function', 'ok:', { destroyed: true, closed: true }]);
      expect(traced).toEqual(raw);
      checkProcessSpans(topic, 1);
    },
  );

  it('a second member joins mid-stream while a message is held: nothing lost, every span ended once', async () => {
    const [topic] = (await createTopics(1, 2)) as [string];
    const values = Array.from({ length: 8 }, (_, i) => `m${i}`);
    await producer().send({
      messages: values.map((value, i) => ({ topic, value: Buffer.from(value), partition: i % 2 })),
    });
    const group = groupId();
    const a = consumerFor('traced', group);
    const stream = await a.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' });
    const iterator = stream[Symbol.asyncIterator]();
    const seenA: string[] = [];
    const first = await iterator.next();
    seenA.push(text(first.value) as string);
    const b = consumerFor('raw', group);
    const joined = b.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' });
    await until(() => (a as unknown as { generationId: number }).generationId > 1, 'the rebalance', 20000);
    expect(tracing.current.openSpans()).toHaveLength(1);
    const streamB = await joined;
    const seenB: string[] = [];
    streamB.on('data', (m) => seenB.push(text(m as Msg) as string));
    // A goes on taking what it is handed until its stream closes (no idle timeout: a message A was
    // handed after one would have a span but no entry in seenA).
    const pulling = (async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next())
        seenA.push(text(next.value) as string);
    })();
    await until(() => new Set([...seenA, ...seenB]).size === 8, 'every message', 30_000);
    await stream.close();
    await pulling;
    await streamB.close();
    expect(new Set([...seenA, ...seenB])).toEqual(new Set(values));
    const processes = spansNamed(tracing.current.spans(), `process ${topic}`);
    expect(processes).toHaveLength(seenA.length);
    expect(tracing.current.openSpans()).toHaveLength(0);
  }, 60_000);
});
