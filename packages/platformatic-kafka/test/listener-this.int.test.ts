import { traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import type { Consumer, MessagesStream, Producer, ProducerStream } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, createTopics, runCleanup, stringConsumer, stringProducer } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

type Mode = 'raw' | 'traced';
type Fn = (this: unknown, ...args: unknown[]) => unknown;
type StringProducer = Producer<string, string, string, string>;
type StringConsumer = Consumer<string, string, string, string>;

const producerAs = (mode: Mode): StringProducer =>
  mode === 'raw' ? stringProducer() : traceProducer(stringProducer());
const consumerAs = (mode: Mode, options: Record<string, unknown> = {}): StringConsumer => {
  const consumer = stringConsumer({ maxWaitTime: 200, ...options } as never);
  return mode === 'raw' ? consumer : traceConsumer(consumer);
};

/** Runs `scenario` raw, then traced: what the application sees must be the same. */
async function differential<T>(scenario: (mode: Mode) => Promise<T>): Promise<T> {
  const raw = await scenario('raw');
  await runCleanup();
  tracing.current.reset();
  const traced = await scenario('traced');
  expect(traced).toEqual(raw);
  return traced;
}

/** `rawListeners()` as the application can compare it: entries named by the listener they run. */
function named(listed: unknown[], names: Map<unknown, string>): string[] {
  return listed.map((entry) => {
    const own = names.get(entry);
    if (own) return own;
    const inner = names.get((entry as { listener?: unknown }).listener);
    return inner ? `once(${inner})` : 'other';
  });
}

describe('listeners added to a traced @platformatic/kafka client get it as `this`', () => {
  it('consumer events: this is the consumer, and a listener removing itself with this.off is removed', async () => {
    await differential(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      const consumer = consumerAs(mode, { heartbeatInterval: 200, sessionTimeout: 10_000 });
      const seen: string[] = [];
      consumer.once('consumer:group:join', function (this: unknown) {
        seen.push(`join:${String(this === consumer)}`);
      });
      let beats = 0;
      const onBeat: Fn = function (this: unknown) {
        beats++;
        seen.push(`beat:${String(this === consumer)}`);
        (this as StringConsumer).off('consumer:heartbeat:end', onBeat);
      };
      consumer.on('consumer:heartbeat:end', onBeat);
      const stream = await consumer.consume({ topics: [topic] });
      await until(() => beats > 0, 'a heartbeat');
      await sleep(700);
      await stream.close();
      return { seen, left: consumer.listenerCount('consumer:heartbeat:end') };
    });
  });

  it('this.close() in a consumer listener ends the spans its streams hold, as close() on the traced consumer does', async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({ messages: [{ topic, value: 'held' }] });
    const consumer = consumerAs('traced', { heartbeatInterval: 200, sessionTimeout: 10_000 });
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' } as never);
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    // The message's span stays open while the loop holds it.
    expect(tracing.current.openSpans().map((s) => s.name)).toContain(`process ${topic}`);
    const closed = new Promise<unknown>((resolve) => {
      consumer.once('consumer:heartbeat:end', function (this: unknown) {
        resolve((this as StringConsumer).close(true));
      });
    });
    await await closed;
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(spansNamed(tracing.current.spans(), `process ${topic}`)).toHaveLength(1);
  });

  it('producer events: this is the producer, and this.send() in a listener makes its send span', async () => {
    const [first, second] = (await createTopics(2)) as [string, string];
    await differential(async (mode) => {
      const producer = producerAs(mode);
      const seen: boolean[] = [];
      let sent: Promise<unknown> | undefined;
      producer.once('client:metadata', function (this: unknown) {
        seen.push(this === producer);
        sent = (this as StringProducer).send({ messages: [{ topic: second, value: 'from-listener' }] });
      });
      await producer.send({ messages: [{ topic: first, value: 'first' }] });
      await sent;
      return seen;
    });
    // The traced run: the send made on `this` is traced as one made on the traced producer.
    expect(spansNamed(tracing.current.spans(), `send ${second}`)).toHaveLength(1);
  });

  it('producer streams: this is the stream, self-removal works, this.write() is traced, listings are the same', async () => {
    const [topic] = (await createTopics()) as [string];
    await differential(async (mode) => {
      const stream: ProducerStream<string, string, string, string> = producerAs(mode).asStream({
        batchSize: 1,
      });
      const seen: string[] = [];
      const onFlush: Fn = function (this: unknown) {
        seen.push(`flush:${String(this === stream)}`);
        (this as typeof stream).off('flush', onFlush);
      };
      const onClose: Fn = () => undefined;
      stream.on('flush', onFlush);
      stream.once('close', onClose);
      const names = new Map<unknown, string>([
        [onFlush, 'flush'],
        [onClose, 'close'],
      ]);
      const listed = {
        flush: named(stream.rawListeners('flush'), names),
        close: named(stream.rawListeners('close'), names),
        listeners: named(stream.listeners('close'), names),
        count: stream.listenerCount('close'),
        countClose: stream.listenerCount('close', onClose),
      };
      const wroteAgain = new Promise<void>((resolve) => {
        stream.once('flush', function (this: unknown) {
          (this as typeof stream).write({ topic, value: 'from-listener' } as never);
          resolve();
        });
      });
      stream.write({ topic, value: 'first' } as never);
      await wroteAgain;
      await until(() => seen.length > 0, 'a flush');
      await new Promise<void>((resolve) => stream.end(() => resolve()));
      return { seen, listed, left: stream.listenerCount('flush') };
    });
    expect(spansNamed(tracing.current.spans(), `send ${topic}`)).toHaveLength(2);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('consumer streams: rawListeners() and listenerCount() name the application listeners', async () => {
    await differential(async (mode) => {
      const [topic] = (await createTopics()) as [string];
      const consumer = consumerAs(mode);
      const stream: MessagesStream<string, string, string, string> = await consumer.consume({
        topics: [topic],
      });
      const onData: Fn = () => undefined;
      const onClose: Fn = () => undefined;
      stream.once('data', onData);
      stream.once('close', onClose);
      stream.on('close', onClose);
      const names = new Map<unknown, string>([
        [onData, 'data'],
        [onClose, 'close'],
      ]);
      const listed = {
        data: named(stream.rawListeners('data'), names),
        close: named(stream.rawListeners('close'), names),
        count: stream.listenerCount('close'),
        countClose: stream.listenerCount('close', onClose),
        countData: stream.listenerCount('data', onData),
      };
      stream.off('close', onClose);
      const after = named(stream.rawListeners('close'), names);
      stream.removeAllListeners('data');
      await stream.close();
      cleanup.push(async () => undefined);
      return { listed, after };
    });
  });
});
