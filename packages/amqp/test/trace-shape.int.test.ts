import { randomUUID } from 'node:crypto';
import { traceChannel, traceConnection } from '@hoptrace/amqp';
import {
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { attr, brokerPort, collectDeliveries, connect, traceparentOf, useConnection } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

const amqp = useConnection();

function byMessageId(list: readonly ReadableSpan[], id: string): ReadableSpan {
  const found = list.filter((s) => s.attributes['messaging.message.id'] === id);
  if (found.length !== 1) throw new Error(`expected one span for message ${id}, got ${found.length}`);
  return found[0] as ReadableSpan;
}

describe('publish -> consume trace shape (amqplib 2.x, promise API)', () => {
  it('default exchange: send is a child of the caller, process a child of send, ended on ack', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const seen = deferred<{ message: ConsumeMessage; activeSpanId: string | undefined }>();
    await channel.consume(queue, (message) => {
      if (!message) return;
      seen.resolve({ message, activeSpanId: trace.getActiveSpan()?.spanContext().spanId });
      channel.ack(message);
    });
    const headers = Object.freeze({ app: 'x' });
    const options = Object.freeze({ headers, messageId: 'm-1', correlationId: 'c-1' });
    const app = trace.getTracer('test').startSpan('app');
    const returned = context.with(trace.setSpan(context.active(), app), () =>
      channel.sendToQueue(queue, Buffer.from('hello'), options),
    );
    app.end();
    expect(returned).toBe(true);
    expect(options.headers).toEqual({ app: 'x' }); // caller's objects untouched

    const { message, activeSpanId } = await seen.promise;
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const send = onlySpan(done, `send ${queue}`);
    const process = onlySpan(done, `process ${queue}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(send.spanContext().traceId).toBe(app.spanContext().traceId);
    expect(parentSpanId(send)).toBe(app.spanContext().spanId);
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    // No link repeating the parent by default.
    expect(process.links).toEqual([]);
    expect(activeSpanId).toBe(process.spanContext().spanId);
    expect(message.properties.headers?.traceparent).toBe(traceparentOf(send));
    expect(message.properties.headers?.app).toBe('x');
    expect(message.content.toString()).toBe('hello');

    expect(send.attributes).toMatchObject({
      'messaging.system.name': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': queue,
      'rabbitmq.destination.routing_key': queue,
      'messaging.message.id': 'm-1',
      'messaging.message.conversation_id': 'c-1',
      'server.address': '127.0.0.1',
      'server.port': brokerPort(),
    });
    expect(attr(send, 'messaging.message.body.size')).toBeUndefined();
    expect(process.attributes).toMatchObject({
      'messaging.system.name': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': queue,
      'rabbitmq.destination.routing_key': queue,
      'rabbitmq.message.delivery_tag': 1,
      'messaging.message.id': 'm-1',
      'messaging.message.conversation_id': 'c-1',
      'hoptrace.rabbitmq.settlement': 'ack',
    });
    expect(attr(process, 'hoptrace.rabbitmq.redelivered')).toBeUndefined();
    expect(process.status.code).toBe(SpanStatusCode.UNSET);
    expect(done).toHaveLength(3); // app, send, process
  });

  it('direct exchange: destination {exchange}:{routing key}, consumer {exchange}:{routing key}:{queue}', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { captureBodySize: true });
    const exchange = `ex-${randomUUID()}`;
    const queue = `q-${randomUUID()}`;
    await channel.assertExchange(exchange, 'direct', { autoDelete: true });
    await channel.assertQueue(queue, { exclusive: true });
    await channel.bindQueue(queue, exchange, 'rk.direct');
    await channel.consume(queue, (m) => m && channel.ack(m));
    channel.publish(exchange, 'rk.direct', Buffer.from('12345'));
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const send = onlySpan(done, `send ${exchange}`);
    const process = onlySpan(done, `process ${queue}`);
    expect(attr(send, 'messaging.destination.name')).toBe(`${exchange}:rk.direct`);
    expect(attr(send, 'rabbitmq.destination.routing_key')).toBe('rk.direct');
    expect(attr(send, 'messaging.message.body.size')).toBe(5);
    expect(attr(process, 'messaging.destination.name')).toBe(`${exchange}:rk.direct:${queue}`);
    expect(attr(process, 'messaging.message.body.size')).toBe(5);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(send.spanContext().traceId).toBe(process.spanContext().traceId);
  });

  it('topic exchange: routing keys with ids stay out of span names', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const exchange = `topic-${randomUUID()}`;
    const queue = `q-${randomUUID()}`;
    await channel.assertExchange(exchange, 'topic', { autoDelete: true });
    await channel.assertQueue(queue, { exclusive: true });
    await channel.bindQueue(queue, exchange, 'order.*.created');
    await channel.consume(queue, (m) => m && channel.ack(m));
    channel.publish(exchange, 'order.1234.created', Buffer.from('{}'));
    channel.publish(exchange, 'order.5678.created', Buffer.from('{}'));
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
    const sends = spansNamed(done, `send ${exchange}`);
    const processes = spansNamed(done, `process ${queue}`);
    expect(sends).toHaveLength(2);
    expect(done).toHaveLength(4);
    for (const p of processes) {
      const rk = attr(p, 'rabbitmq.destination.routing_key');
      const send = sends.find((s) => attr(s, 'rabbitmq.destination.routing_key') === rk);
      expect(send).toBeDefined();
      expect(parentSpanId(p)).toBe(send?.spanContext().spanId);
      expect(attr(p, 'messaging.destination.name')).toBe(`${exchange}:${String(rk)}:${queue}`);
    }
    expect(new Set(sends.map((s) => s.spanContext().traceId)).size).toBe(2); // one trace per message
  });

  it('fanout exchange: one send, one process per bound queue, both children of the send', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const exchange = `fan-${randomUUID()}`;
    const q1 = `q1-${randomUUID()}`;
    const q2 = `q2-${randomUUID()}`;
    await channel.assertExchange(exchange, 'fanout', { autoDelete: true });
    for (const q of [q1, q2]) {
      await channel.assertQueue(q, { exclusive: true });
      await channel.bindQueue(q, exchange, '');
      await channel.consume(q, (m) => m && channel.ack(m));
    }
    channel.publish(exchange, '', Buffer.from('fan'));
    const done = await waitForSpans(
      spans,
      (s) => spansNamed(s, `process ${q1}`).length === 1 && spansNamed(s, `process ${q2}`).length === 1,
    );
    const send = onlySpan(done, `send ${exchange}`);
    expect(attr(send, 'messaging.destination.name')).toBe(exchange);
    expect(attr(send, 'rabbitmq.destination.routing_key')).toBeUndefined();
    for (const q of [q1, q2]) {
      const p = onlySpan(done, `process ${q}`);
      expect(parentSpanId(p)).toBe(send.spanContext().spanId);
      expect(attr(p, 'messaging.destination.name')).toBe(`${exchange}:${q}`);
    }
    expect(done).toHaveLength(3);
  });

  it('server-named queues stay out of span names', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const { queue } = await channel.assertQueue('', { exclusive: true });
    expect(queue.startsWith('amq.gen-')).toBe(true);
    await channel.consume(queue, (m) => m && channel.ack(m));
    channel.sendToQueue(queue, Buffer.from('x'));
    const done = await waitForSpans(spans, (s) => spansNamed(s, 'process').length === 1);
    expect(attr(onlySpan(done, 'send'), 'messaging.destination.name')).toBe(queue);
    expect(attr(onlySpan(done, 'process'), 'messaging.destination.name')).toBe(queue);
  });

  it('confirm channel: send ends on the broker ack; the user callback gets amqplib’s arguments', async () => {
    const channel = traceChannel(await amqp.connection.createConfirmChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const confirmed = deferred<unknown[]>();
    const result = channel.sendToQueue(queue, Buffer.from('c'), {}, (...args: unknown[]) =>
      confirmed.resolve(args),
    );
    expect(result).toBe(true);
    const args = await confirmed.promise;
    expect(args[0]).toBeNull();
    const send = onlySpan(await waitForSpans(spans, (s) => s.length === 1), `send ${queue}`);
    expect(send.status.code).toBe(SpanStatusCode.UNSET);
    channel.publish('', queue, Buffer.from('d')); // no callback: still ends on confirm
    await channel.waitForConfirms();
    await waitForSpans(spans, (s) => spansNamed(s, `send ${queue}`).length === 2);
  });

  it('confirm channel: a broker nack (reject-publish overflow) ends send with ERROR nacked', async () => {
    const channel = traceChannel(await amqp.connection.createConfirmChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, {
      exclusive: true,
      arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
    });
    const confirmed = deferred<unknown>();
    channel.sendToQueue(queue, Buffer.from('n'), {}, (err: unknown) => confirmed.resolve(err));
    const err = await confirmed.promise;
    expect(err).toBeInstanceOf(Error);
    const send = onlySpan(await waitForSpans(spans, (s) => s.length === 1), `send ${queue}`);
    expect(send.status.code).toBe(SpanStatusCode.ERROR);
    expect(attr(send, 'error.type')).toBe('nacked');
    expect(send.events.some((e) => e.name === 'exception')).toBe(true);
    // Without a callback (amqplib gets none either): the span ends on the channel's nack event.
    channel.sendToQueue(queue, Buffer.from('n2'));
    await expect(channel.waitForConfirms()).rejects.toThrow();
    const both = await waitForSpans(spans, (s) => s.length === 2);
    const second = both[1] as (typeof both)[number];
    expect(second.status.code).toBe(SpanStatusCode.ERROR);
    expect(attr(second, 'error.type')).toBe('nacked');
  });

  it('prefetch > 1 with out-of-order acks: each process span ends at its own ack', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.prefetch(3);
    const { got, arrived } = await collectDeliveries(channel, queue);
    for (const id of ['a', 'b', 'c']) channel.sendToQueue(queue, Buffer.from(id), { messageId: id });
    await arrived(3);
    expect(spansNamed(spans(), `process ${queue}`)).toHaveLength(0); // none settled yet
    const order = [got[2], got[0], got[1]] as ConsumeMessage[];
    for (const m of order) {
      channel.ack(m);
      const id = String(m.properties.messageId);
      const done = spansNamed(spans(), `process ${queue}`);
      expect(done.at(-1)?.attributes['messaging.message.id']).toBe(id);
    }
    const done = spans();
    for (const id of ['a', 'b', 'c']) {
      const send = byMessageId(spansNamed(done, `send ${queue}`), id);
      const process = byMessageId(spansNamed(done, `process ${queue}`), id);
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    }
  });

  it('ack with allUpTo ends every open span up to that tag, and only those', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.prefetch(4);
    const { got, arrived } = await collectDeliveries(channel, queue);
    for (let i = 0; i < 4; i++) channel.sendToQueue(queue, Buffer.from(String(i)), { messageId: `m${i}` });
    await arrived(4);
    channel.ack(got[2] as ConsumeMessage, true);
    let done = spansNamed(spans(), `process ${queue}`);
    expect(done.map((s) => s.attributes['messaging.message.id']).sort()).toEqual(['m0', 'm1', 'm2']);
    channel.ack(got[3] as ConsumeMessage);
    done = spansNamed(spans(), `process ${queue}`);
    expect(done).toHaveLength(4);
  });

  it('settle arguments are read as amqplib reads them: truthy allUpTo, falsy requeue, truthy noAck', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.prefetch(3);
    const got: ConsumeMessage[] = [];
    let arrived = deferred();
    await channel.consume(queue, (m) => {
      if (!m) return;
      got.push(m);
      if (got.length % 3 === 0) arrived.resolve();
    });
    for (let i = 0; i < 3; i++) channel.sendToQueue(queue, Buffer.from('a'), { messageId: `a${i}` });
    await arrived.promise;
    // allUpTo 1 (not `true`): amqplib acks all three at the broker; all three spans end.
    channel.ack(got[2] as ConsumeMessage, 1 as unknown as boolean);
    let done = spansNamed(spans(), `process ${queue}`);
    expect(done.map((s) => s.attributes['messaging.message.id']).sort()).toEqual(['a0', 'a1', 'a2']);

    arrived = deferred();
    tracing.current.reset();
    for (let i = 0; i < 3; i++) channel.sendToQueue(queue, Buffer.from('b'), { messageId: `b${i}` });
    await arrived.promise;
    // requeue 0 and null: amqplib drops the message (no requeue); the spans say rejected.
    channel.nack(got[3] as ConsumeMessage, false, 0 as unknown as boolean);
    channel.reject(got[4] as ConsumeMessage, null as unknown as boolean);
    // allUpTo '' (falsy): a single ack.
    channel.ack(got[5] as ConsumeMessage, '' as unknown as boolean);
    done = spansNamed(spans(), `process ${queue}`);
    expect(done).toHaveLength(3);
    const requeued = (id: string) => byMessageId(done, id).attributes['hoptrace.rabbitmq.requeue'];
    expect([requeued('b0'), requeued('b1'), requeued('b2')]).toEqual([false, false, undefined]);
    expect(byMessageId(done, 'b0').status.code).toBe(SpanStatusCode.ERROR);
    expect(byMessageId(done, 'b1').attributes['error.type']).toBe('rejected');
    expect(byMessageId(done, 'b2').attributes['hoptrace.rabbitmq.settlement']).toBe('ack');

    // noAck 1 (not `true`): the broker auto-acks; the span ends when the callback returns.
    const auto = `q-${randomUUID()}`;
    await channel.assertQueue(auto, { exclusive: true });
    const handled = deferred();
    await channel.consume(auto, (m) => m && handled.resolve(), { noAck: 1 as unknown as boolean });
    tracing.current.reset();
    channel.sendToQueue(auto, Buffer.from('c'), { messageId: 'c0' });
    await handled.promise;
    const autoDone = await waitForSpans(spans, (s) => spansNamed(s, `process ${auto}`).length === 1);
    expect(onlySpan(autoDone, `process ${auto}`).attributes['hoptrace.rabbitmq.settlement']).toBeUndefined();
    expect(tracing.current.openSpans().filter((s) => s.name === `process ${auto}`)).toHaveLength(0);
  });

  it('a settle whose message has no delivery tag, or tag 0, is read as amqplib sends it: alone it settles nothing, with allUpTo everything', async () => {
    const queue = `q-${randomUUID()}`;
    const admin = await amqp.connection.createChannel();
    await admin.assertQueue(queue, { exclusive: true });
    const consumeTwo = async (tag: number | undefined) => {
      const channel = traceChannel(await amqp.connection.createChannel());
      channel.on('error', () => undefined);
      const closed = deferred();
      channel.on('close', () => closed.resolve());
      const got: ConsumeMessage[] = [];
      await channel.consume(queue, (m) => m && got.push(m));
      await until(() => got.length === 2, 'two deliveries');
      const m = got[1] as ConsumeMessage;
      const untagged = { ...m, fields: { ...m.fields, deliveryTag: tag } } as unknown as ConsumeMessage;
      return { channel, closed, untagged };
    };
    for (let i = 0; i < 2; i++) admin.sendToQueue(queue, Buffer.from('a'), { messageId: `a${i}` });

    // Alone: amqplib sends tag 0, the broker acks nothing and closes the channel (unknown delivery
    // tag 0); both messages go back to the queue, and both spans end channel_closed, not acked.
    const first = await consumeTwo(undefined);
    first.channel.ack(first.untagged);
    await first.closed.promise;
    let done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
    for (const span of spansNamed(done, `process ${queue}`)) {
      expect(span.attributes['hoptrace.rabbitmq.settlement']).toBeUndefined();
      expect(span.attributes['error.type']).toBe('channel_closed');
    }
    expect((await admin.checkQueue(queue)).messageCount).toBe(2);

    // Tag 0 with allUpTo (given, or a missing tag): every unacked delivery of the channel; both
    // spans end acked.
    tracing.current.reset();
    const second = await consumeTwo(0);
    second.channel.ack(second.untagged, true);
    done = spansNamed(spans(), `process ${queue}`);
    expect(done.map((s) => s.attributes['hoptrace.rabbitmq.settlement'])).toEqual(['ack', 'ack']);
    await second.channel.close();
    expect((await admin.checkQueue(queue)).messageCount).toBe(0);
  });

  it('the consumer tag is recorded only with captureConsumerTag (not a conventions attribute)', async () => {
    for (const captureConsumerTag of [false, true]) {
      tracing.current.reset();
      const channel = traceChannel(await amqp.connection.createChannel(), { captureConsumerTag });
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const got = deferred<ConsumeMessage>();
      const { consumerTag } = await channel.consume(queue, (m) => {
        if (!m) return;
        channel.ack(m);
        got.resolve(m);
      });
      channel.sendToQueue(queue, Buffer.from('x'));
      await got.promise;
      const process = onlySpan(spans(), `process ${queue}`);
      expect(process.attributes['hoptrace.rabbitmq.consumer_tag']).toBe(
        captureConsumerTag ? consumerTag : undefined,
      );
      await channel.close();
    }
  });

  it('ackAll and nackAll end every open span; nackAll without requeue is an ERROR', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.prefetch(2);
    let got: ConsumeMessage[] = [];
    let batch = deferred();
    await channel.consume(queue, (m) => {
      if (!m) return;
      got.push(m);
      if (got.length === 2) batch.resolve();
    });
    for (let i = 0; i < 2; i++) channel.sendToQueue(queue, Buffer.from('a'), { messageId: `a${i}` });
    await batch.promise;
    channel.ackAll();
    let done = spansNamed(spans(), `process ${queue}`);
    expect(done).toHaveLength(2);
    expect(done.every((s) => s.attributes['hoptrace.rabbitmq.settlement'] === 'ack')).toBe(true);
    expect(done.every((s) => s.status.code === SpanStatusCode.UNSET)).toBe(true);

    got = [];
    batch = deferred();
    for (let i = 0; i < 2; i++) channel.sendToQueue(queue, Buffer.from('b'), { messageId: `b${i}` });
    await batch.promise;
    tracing.current.reset();
    channel.nackAll(false);
    done = spansNamed(spans(), `process ${queue}`);
    expect(done).toHaveLength(2);
    for (const s of done) {
      expect(s.attributes['hoptrace.rabbitmq.settlement']).toBe('nack');
      expect(s.attributes['hoptrace.rabbitmq.requeue']).toBe(false);
      expect(s.attributes['error.type']).toBe('rejected');
      expect(s.status.code).toBe(SpanStatusCode.ERROR);
    }
  });

  it('nack with requeue marks the span (no error) and the redelivery is traced again', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    let deliveries = 0;
    await channel.consume(queue, (m) => {
      if (!m) return;
      deliveries += 1;
      if (deliveries === 1) channel.nack(m);
      else channel.reject(m, false);
    });
    channel.sendToQueue(queue, Buffer.from('r'), { messageId: 'r1' });
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
    const [first, second] = spansNamed(done, `process ${queue}`) as [ReadableSpan, ReadableSpan];
    const send = onlySpan(done, `send ${queue}`);
    expect(first.attributes).toMatchObject({
      'hoptrace.rabbitmq.settlement': 'nack',
      'hoptrace.rabbitmq.requeue': true,
    });
    expect(first.status.code).toBe(SpanStatusCode.UNSET);
    expect(attr(first, 'hoptrace.rabbitmq.redelivered')).toBeUndefined();
    expect(second.attributes).toMatchObject({
      'hoptrace.rabbitmq.settlement': 'reject',
      'hoptrace.rabbitmq.requeue': false,
      'hoptrace.rabbitmq.redelivered': true,
      'error.type': 'rejected',
    });
    expect(second.status.code).toBe(SpanStatusCode.ERROR);
    expect(parentSpanId(first)).toBe(send.spanContext().spanId);
    expect(parentSpanId(second)).toBe(send.spanContext().spanId);
  });

  it('noAck: the span ends when the async handler settles; a rejection is recorded', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const boom = new TypeError('bad payload');
    const handled = deferred();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    // Whether the delivery's own span was still open once the handler had awaited something.
    const openAfterAwait: boolean[] = [];
    process.on('unhandledRejection', onUnhandled);
    try {
      await channel.consume(
        queue,
        async (m) => {
          if (!m) return;
          await new Promise((r) => setTimeout(r, 30));
          const id = m.properties.messageId;
          openAfterAwait.push(
            tracing.current.openSpans().some((s) => s.attributes['messaging.message.id'] === id),
          );
          if (m.content.toString() === 'bad') {
            handled.resolve();
            throw boom;
          }
        },
        { noAck: true },
      );
      channel.sendToQueue(queue, Buffer.from('good'), { messageId: 'good' });
      channel.sendToQueue(queue, Buffer.from('bad'), { messageId: 'bad' });
      await handled.promise;
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
      const good = byMessageId(spansNamed(done, `process ${queue}`), 'good');
      const bad = byMessageId(spansNamed(done, `process ${queue}`), 'bad');
      expect(good.status.code).toBe(SpanStatusCode.UNSET);
      expect(bad.status.code).toBe(SpanStatusCode.ERROR);
      expect(attr(bad, 'error.type')).toBe('TypeError');
      expect(attr(bad, 'hoptrace.rabbitmq.settlement')).toBeUndefined();
      expect(openAfterAwait).toEqual([true, true]);
      // Rethrown unchanged, as amqplib would see it (waited for, not slept on).
      await until(() => unhandled.includes(boom), 'the rethrown rejection');
      expect(unhandled.filter((r) => r === boom)).toHaveLength(1);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('noAck with settleTimeoutMs: a callback promise that never settles ends its span as settle_timeout', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { settleTimeoutMs: 50 });
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const called = deferred();
    await channel.consume(
      queue,
      (m) => {
        if (!m) return;
        called.resolve();
        return new Promise<void>(() => undefined); // hangs forever
      },
      { noAck: true },
    );
    channel.sendToQueue(queue, Buffer.from('x'), { messageId: 'hung' });
    await called.promise;
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const span = onlySpan(done, `process ${queue}`);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(attr(span, 'error.type')).toBe('settle_timeout');
    expect(tracing.current.openSpans().filter((s) => s.name === `process ${queue}`)).toHaveLength(0);
  });

  it('get: a receive span linked to the creation context; an empty queue gives a receive span without message', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const empty = await channel.get(queue);
    expect(empty).toBe(false);
    channel.sendToQueue(queue, Buffer.from('pull'), { messageId: 'p1' });
    let message: false | ConsumeMessage | import('amqplib').GetMessage = false;
    for (let i = 0; i < 50 && message === false; i++) {
      message = await channel.get(queue);
      if (message === false) await new Promise((r) => setTimeout(r, 20));
    }
    expect(message).not.toBe(false);
    channel.ack(message as import('amqplib').GetMessage);
    const done = spans();
    const receives = spansNamed(done, `receive ${queue}`);
    const withMessage = receives.filter((s) => s.attributes['messaging.message.id'] === 'p1');
    const withoutMessage = receives.filter((s) => s.attributes['messaging.message.id'] === undefined);
    expect(withMessage).toHaveLength(1);
    expect(withoutMessage.length).toBeGreaterThanOrEqual(1);
    const receive = withMessage[0] as ReadableSpan;
    const send = onlySpan(done, `send ${queue}`);
    expect(receive.kind).toBe(SpanKind.CLIENT);
    expect(receive.attributes).toMatchObject({
      'messaging.operation.type': 'receive',
      'messaging.destination.name': queue,
      'rabbitmq.message.delivery_tag': 1,
    });
    expect(receive.links[0]?.context.spanId).toBe(send.spanContext().spanId);
    expect(attr(withoutMessage[0] as ReadableSpan, 'rabbitmq.message.delivery_tag')).toBeUndefined();
  });

  it('dead-lettered messages keep their creation context: DLQ processing joins the original trace', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const dlx = `dlx-${randomUUID()}`;
    const dlq = `dlq-${randomUUID()}`;
    const queue = `q-${randomUUID()}`;
    await channel.assertExchange(dlx, 'fanout', { autoDelete: true });
    await channel.assertQueue(dlq, { exclusive: true });
    await channel.bindQueue(dlq, dlx, '');
    await channel.assertQueue(queue, { exclusive: true, arguments: { 'x-dead-letter-exchange': dlx } });
    await channel.consume(queue, (m) => m && channel.reject(m, false));
    await channel.consume(dlq, (m) => m && channel.ack(m));
    channel.sendToQueue(queue, Buffer.from('dead'), { messageId: 'd1' });
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${dlq}`).length === 1);
    const send = onlySpan(done, `send ${queue}`);
    const first = onlySpan(done, `process ${queue}`);
    const dead = onlySpan(done, `process ${dlq}`);
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(dead.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(parentSpanId(dead)).toBe(send.spanContext().spanId);
    expect(dead.attributes).toMatchObject({
      'hoptrace.rabbitmq.death_count': 1,
      'messaging.destination.name': `${dlx}:${queue}:${dlq}`,
      'messaging.message.id': 'd1',
    });
  });

  it('relation policies: link keeps the consumer out of the producer trace; root starts a new linked trace', async () => {
    const raw = await amqp.connection.createChannel();
    const queue = `q-${randomUUID()}`;
    const q2 = `q2-${randomUUID()}`;
    // Consumed from other connections: not exclusive, deleted with their last consumer.
    await raw.assertQueue(queue, { autoDelete: true });
    await raw.assertQueue(q2, { autoDelete: true });
    const producer = traceChannel(raw);
    const linkConn = await connect();
    const rootConn = await connect();
    try {
      const linkChannel = traceChannel(await linkConn.createChannel(), { relation: 'link' });
      const rootChannel = traceChannel(await rootConn.createChannel(), { relation: 'root' });
      await linkChannel.consume(queue, (m) => m && linkChannel.ack(m));
      producer.sendToQueue(queue, Buffer.from('l'));
      let done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
      let send = onlySpan(done, `send ${queue}`);
      let process = onlySpan(done, `process ${queue}`);
      expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(parentSpanId(process)).toBeUndefined();
      expect(process.links[0]?.context.spanId).toBe(send.spanContext().spanId);

      tracing.current.reset();
      await rootChannel.consume(q2, (m) => m && rootChannel.ack(m));
      const app = trace.getTracer('test').startSpan('app');
      context.with(trace.setSpan(context.active(), app), () => producer.sendToQueue(q2, Buffer.from('r')));
      app.end();
      done = await waitForSpans(spans, (s) => spansNamed(s, `process ${q2}`).length === 1);
      send = onlySpan(done, `send ${q2}`);
      process = onlySpan(done, `process ${q2}`);
      expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(parentSpanId(process)).toBeUndefined();
      expect(process.links).toHaveLength(1);
      expect(process.links[0]?.context.spanId).toBe(send.spanContext().spanId);
      expect(process.links[0]?.context.traceId).toBe(app.spanContext().traceId);
    } finally {
      await linkConn.close();
      await rootConn.close();
    }
  });

  it('parentLink true: the process span is a child of the send span and links to it too', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { parentLink: true });
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.consume(queue, (m) => m && channel.ack(m));
    channel.sendToQueue(queue, Buffer.from('no-link'));
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const send = onlySpan(done, `send ${queue}`);
    const process = onlySpan(done, `process ${queue}`);
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(parentSpanId(process)).toBe(send.spanContext().spanId);
    expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
  });

  it('legacyAttributes also emits the older names', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { legacyAttributes: true });
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.consume(queue, (m) => m && channel.ack(m));
    channel.sendToQueue(queue, Buffer.from('legacy'));
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    expect(onlySpan(done, `send ${queue}`).attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.system.name': 'rabbitmq',
      'messaging.operation': 'publish',
      'messaging.operation.type': 'send',
      'messaging.rabbitmq.destination.routing_key': queue,
      'rabbitmq.destination.routing_key': queue,
    });
    expect(onlySpan(done, `process ${queue}`).attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.rabbitmq.message.delivery_tag': 1,
      'rabbitmq.message.delivery_tag': 1,
    });
  });

  it('traceConnection: channels come out traced, idempotently', async () => {
    const traced = traceConnection(amqp.connection);
    expect(traceConnection(traced)).toBe(traced);
    const channel = await traced.createChannel();
    expect(traceChannel(channel)).toBe(channel);
    const confirm = await traced.createConfirmChannel();
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.consume(queue, (m) => m && channel.ack(m));
    confirm.sendToQueue(queue, Buffer.from('via connection'));
    await confirm.waitForConfirms();
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    expect(parentSpanId(onlySpan(done, `process ${queue}`))).toBe(
      onlySpan(done, `send ${queue}`).spanContext().spanId,
    );
  });
});
