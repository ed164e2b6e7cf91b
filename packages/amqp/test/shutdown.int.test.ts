import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { ERROR_SHUTDOWN, endOpenSpans, endOpenSpansOnShutdown } from '@hoptrace/core';
import { deferred, onlySpan, sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ConsumeMessage, Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { attr, callbackChannel, callbackConnect, connect, useConnection } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

const amqp = useConnection();

/** Waits until `queue` holds `count` messages. */
async function queued(
  channel: { checkQueue(q: string): Promise<{ messageCount: number }> },
  queue: string,
  count: number,
) {
  for (let i = 0; i < 200; i++) {
    if ((await channel.checkQueue(queue)).messageCount === count) return;
    await sleep(10);
  }
  throw new Error(`${queue} never held ${count} message(s)`);
}

/** The one span named `name`, ended once by endOpenSpans with ERROR shutdown. */
function expectShutdown(all: ReadableSpan[], name: string): ReadableSpan {
  const span = onlySpan(all, name);
  expect(span.status.code).toBe(SpanStatusCode.ERROR);
  expect(attr(span, 'error.type')).toBe(ERROR_SHUTDOWN);
  return span;
}

describe('endOpenSpans (process shutdown) on amqplib', () => {
  it('a confirm-channel send waiting for its confirm callback ends once with shutdown; the confirm afterwards reaches the callback as without hoptrace', async () => {
    const channel = traceChannel(await amqp.connection.createConfirmChannel());
    const queue = `shutrev-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const confirmed = deferred<unknown>();
    expect(
      channel.sendToQueue(queue, Buffer.from('a'), {}, (error: unknown) => confirmed.resolve(error)),
    ).toBe(true);
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`send ${queue}`]);
    expect(endOpenSpans()).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
    expectShutdown(spans(), `send ${queue}`);
    // The confirm comes later: the callback gets it unchanged; the span is not ended again.
    expect(await confirmed.promise).toBeNull();
    await channel.waitForConfirms();
    expect((await channel.checkQueue(queue)).messageCount).toBe(1);
    expectShutdown(spans(), `send ${queue}`);
  });

  it('a confirm-channel send without a callback (kept by delivery tag) ends once with shutdown; the ack afterwards changes nothing', async () => {
    const channel = traceChannel(await amqp.connection.createConfirmChannel());
    const queue = `shutrev-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const acks: unknown[] = [];
    channel.on('ack', (fields: unknown) => acks.push(fields));
    channel.sendToQueue(queue, Buffer.from('a'));
    channel.sendToQueue(queue, Buffer.from('b'));
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`send ${queue}`, `send ${queue}`]);
    expect(endOpenSpans()).toBe(2);
    expect(tracing.current.openSpans()).toEqual([]);
    await channel.waitForConfirms();
    await until(() => acks.length > 0, 'the broker ack');
    const sends = spansNamed(spans(), `send ${queue}`);
    expect(sends).toHaveLength(2);
    for (const send of sends) {
      expect(send.status.code).toBe(SpanStatusCode.ERROR);
      expect(attr(send, 'error.type')).toBe(ERROR_SHUTDOWN);
    }
    expect((await channel.checkQueue(queue)).messageCount).toBe(2);
  });

  it('a mandatory send the broker returns after the shutdown ends once with shutdown (not returned); the return event and the confirm reach the application', async () => {
    const channel = traceChannel(await amqp.connection.createConfirmChannel());
    const exchange = `shutrev-ex-${randomUUID()}`;
    await channel.assertExchange(exchange, 'direct', { autoDelete: true });
    const seen: string[] = [];
    const both = deferred();
    channel.on('return', (message: Message) => {
      seen.push(`return ${message.content.toString()}`);
    });
    channel.publish(exchange, 'nowhere', Buffer.from('a'), { mandatory: true }, (error: unknown) => {
      seen.push(`confirm ${String(error)}`);
      both.resolve();
    });
    expect(endOpenSpans()).toBe(1);
    await both.promise;
    expect(seen).toEqual(['return a', 'confirm null']);
    const send = expectShutdown(spans(), `send ${exchange}`);
    expect(send.status.message).toContain('shut down');
  });

  it('a get amqplib has not answered yet ends once with shutdown; the answer reaches the caller unchanged (promise and callback API)', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `shutrev-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    channel.sendToQueue(queue, Buffer.from('got'));
    await queued(channel, queue, 1);
    const pending = channel.get(queue, { noAck: true });
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`receive ${queue}`]);
    expect(endOpenSpans()).toBe(1);
    const got = await pending;
    if (!got) throw new Error('the get found no message');
    expect(got.content.toString()).toBe('got');
    expectShutdown(spans(), `receive ${queue}`);

    // The callback API keeps the get until amqplib calls back.
    const connection = await callbackConnect();
    try {
      const raw = await callbackChannel(connection);
      const cbChannel = traceChannel(raw);
      const cbQueue = `shutrev-cb-${randomUUID()}`;
      await new Promise((resolve, reject) =>
        cbChannel.assertQueue(cbQueue, { exclusive: true }, (e, ok) => (e ? reject(e) : resolve(ok))),
      );
      cbChannel.sendToQueue(cbQueue, Buffer.from('cb'));
      await new Promise((r) => setTimeout(r, 100));
      const answered = deferred<unknown[]>();
      cbChannel.get(cbQueue, { noAck: true }, (...args: unknown[]) => answered.resolve(args));
      expect(endOpenSpans()).toBe(1);
      const [error, message] = await answered.promise;
      expect(error).toBeNull();
      expect((message as Message).content.toString()).toBe('cb');
      expectShutdown(spans(), `receive ${cbQueue}`);
    } finally {
      await new Promise((r) => connection.close(r));
    }
  });

  it('deliveries held by an unproven allUpTo settle end once with shutdown; the next delivery proving the settle ends nothing again', async () => {
    const raw = await amqp.connection.createChannel();
    const channel = traceChannel(raw);
    const queue = `shutrev-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const other = `shutrev-other-${randomUUID()}`;
    await channel.assertQueue(other, { exclusive: true });
    const delivered: ConsumeMessage[] = [];
    let arrived = deferred();
    await channel.consume(queue, (m) => {
      if (!m) return;
      delivered.push(m);
      arrived.resolve();
    });
    channel.sendToQueue(queue, Buffer.from('1'));
    await arrived.promise;
    // A get on the raw channel object: hoptrace does not see its tag (2).
    channel.sendToQueue(other, Buffer.from('raw'));
    await queued(channel, other, 1);
    const got = await raw.get(other);
    if (!got) throw new Error('the raw get found no message');
    expect(got.fields.deliveryTag).toBe(2);
    channel.ack(got, true); // allUpTo 2: unproven, delivery 1 stays open
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${queue}`]);
    expect(endOpenSpans()).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
    expectShutdown(spans(), `process ${queue}`);
    // The next delivery proves the settle: the delivery it settled was ended already.
    arrived = deferred();
    channel.sendToQueue(queue, Buffer.from('3'));
    await arrived.promise;
    expect(delivered.map((m) => m.fields.deliveryTag)).toEqual([1, 3]);
    channel.ack(delivered[1] as ConsumeMessage);
    expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    const processes = spansNamed(spans(), `process ${queue}`);
    expect(processes).toHaveLength(2);
    expect(processes.filter((s) => attr(s, 'error.type') === ERROR_SHUTDOWN)).toHaveLength(1);
    expect(processes.filter((s) => s.status.code === SpanStatusCode.UNSET)).toHaveLength(1);
  });

  it('a noAck delivery whose async handler still runs ends once with shutdown; the handler finishes and its settleTimeoutMs timer ends nothing again', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { settleTimeoutMs: 200 });
    const queue = `shutrev-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const started = deferred();
    const release = deferred();
    const handled: string[] = [];
    await channel.consume(
      queue,
      async (m) => {
        if (!m) return;
        started.resolve();
        await release.promise;
        handled.push(m.content.toString());
      },
      { noAck: true },
    );
    channel.sendToQueue(queue, Buffer.from('held'));
    await started.promise;
    expect(endOpenSpans()).toBe(1);
    const process = expectShutdown(spans(), `process ${queue}`);
    await new Promise((r) => setTimeout(r, 300)); // past settleTimeoutMs
    release.resolve();
    await until(() => handled.length === 1, 'the handler finished');
    expect(spansNamed(spans(), `process ${queue}`)).toEqual([process]);
    expect(attr(process, 'error.type')).toBe(ERROR_SHUTDOWN);
  });

  it('an acked delivery ended at shutdown is not ended again by its settleTimeoutMs timer nor by the ack', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { settleTimeoutMs: 200 });
    const queue = `shutrev-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const got = deferred<ConsumeMessage>();
    await channel.consume(queue, (m) => m && got.resolve(m));
    channel.sendToQueue(queue, Buffer.from('held'));
    const message = await got.promise;
    expect(endOpenSpans()).toBe(1);
    const process = expectShutdown(spans(), `process ${queue}`);
    await new Promise((r) => setTimeout(r, 300));
    channel.ack(message);
    expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    expect(spansNamed(spans(), `process ${queue}`)).toEqual([process]);
    expect(attr(process, 'error.type')).toBe(ERROR_SHUTDOWN);
  });

  it('a settle span never stays open: amqplib settles synchronously, so there is nothing left for endOpenSpans', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { settleSpans: true });
    const queue = `shutrev-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const got = deferred<ConsumeMessage>();
    await channel.consume(queue, (m) => m && got.resolve(m));
    channel.sendToQueue(queue, Buffer.from('s'));
    channel.ack(await got.promise);
    expect(tracing.current.openSpans()).toEqual([]);
    expect(endOpenSpans()).toBe(0);
    expect(spansNamed(spans(), `ack ${queue}`)).toHaveLength(1);
  });

  it('a tracer provider shutting down with endOpenSpansOnShutdown first exports the open confirm send once with shutdown; the confirm afterwards changes nothing', async () => {
    // Keeps what it got past the provider's shutdown (the in-memory exporter forgets it there).
    const exporter = new (class extends InMemorySpanExporter {
      override shutdown(): Promise<void> {
        return Promise.resolve();
      }
    })();
    const exported = () => exporter.getFinishedSpans();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [endOpenSpansOnShutdown(), new SimpleSpanProcessor(exporter)],
    });
    const connection = await connect();
    try {
      const channel = traceChannel(await connection.createConfirmChannel(), { tracerProvider });
      const queue = `shutrev-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const confirmed = deferred<unknown>();
      channel.sendToQueue(queue, Buffer.from('a'), {}, (error: unknown) => confirmed.resolve(error));
      await tracerProvider.shutdown();
      expect(exported().map((s) => s.name)).toEqual([`send ${queue}`]);
      expectShutdown(exported(), `send ${queue}`);
      expect(await confirmed.promise).toBeNull();
      await channel.waitForConfirms();
      expect(exported()).toHaveLength(1);
    } finally {
      await connection.close();
    }
  });
});
