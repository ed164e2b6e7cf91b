import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { deferred, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import type { Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { brokerPort, connect, testMeters, useConnection } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();
const amqp = useConnection();

const INSTRUMENTS = [
  'messaging.client.operation.duration',
  'messaging.process.duration',
  'messaging.client.sent.messages',
  'messaging.client.consumed.messages',
] as const;

describe('metric attributes on a real broker (metrics2)', () => {
  it('every point of the four messaging metrics carries server.address and server.port, as the spans do', async () => {
    const meters = testMeters();
    try {
      const channel = traceChannel(await amqp.connection.createChannel(), {
        meterProvider: meters.meterProvider,
        settleSpans: true,
      });
      const queue = `metrics2-server-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.consume(queue, (m) => m && channel.ack(m));
      channel.sendToQueue(queue, Buffer.from('m1'));
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
      channel.sendToQueue(queue, Buffer.from('m2'));
      await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
      await channel.get(queue);
      const server = {
        'server.address': spansNamed(done, `send ${queue}`)[0]?.attributes['server.address'],
        'server.port': brokerPort(),
      };
      expect(server['server.address']).toBeTypeOf('string');
      const metrics = await meters.collect();
      for (const name of INSTRUMENTS) {
        const points = metrics.get(name)?.points ?? [];
        expect(points.length, name).toBeGreaterThan(0);
        for (const point of points) expect(point.attributes, name).toMatchObject(server);
      }
    } finally {
      await meters.meterProvider.shutdown();
    }
  });

  it('direct reply-to: metrics put amq.rabbitmq.reply-to in messaging.destination.template, not in the name', async () => {
    const meters = testMeters();
    const options = { meterProvider: meters.meterProvider };
    const requester = await connect();
    try {
      const server = traceChannel(await amqp.connection.createChannel(), options);
      const requests = `metrics2-rpc-${randomUUID()}`;
      await server.assertQueue(requests, { exclusive: true });
      await server.consume(requests, (m) => {
        if (!m) return;
        server.sendToQueue(String(m.properties.replyTo), Buffer.from('pong'));
        server.ack(m);
      });
      const channel = traceChannel(await requester.createChannel(), options);
      const got = deferred();
      await channel.consume('amq.rabbitmq.reply-to', (m) => m && got.resolve(), { noAck: true });
      channel.sendToQueue(requests, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to' });
      await got.promise;
      const done = await waitForSpans(
        spans,
        (s) => spansNamed(s, 'process amq.rabbitmq.reply-to').length === 1,
      );
      // The spans: the template as messaging.destination.template, the full address as the name.
      const replySend = spansNamed(done, 'send amq.rabbitmq.reply-to')[0];
      expect(replySend?.attributes['messaging.destination.template']).toBe('amq.rabbitmq.reply-to');
      expect(String(replySend?.attributes['messaging.destination.name'])).toMatch(
        /^amq\.rabbitmq\.reply-to\./,
      );

      const metrics = await meters.collect();
      const replyPoints = (name: string) =>
        (metrics.get(name)?.points ?? []).filter(
          (p) =>
            p.attributes['messaging.destination.template'] !== undefined ||
            String(p.attributes['messaging.destination.name'] ?? '').startsWith('amq.rabbitmq.reply-to'),
        );
      for (const name of [
        'messaging.client.sent.messages',
        'messaging.client.operation.duration',
        'messaging.process.duration',
        'messaging.client.consumed.messages',
      ]) {
        const points = replyPoints(name);
        expect(points.length, name).toBe(1);
        expect(points[0]?.attributes['messaging.destination.template'], name).toBe('amq.rabbitmq.reply-to');
        expect(points[0]?.attributes['messaging.destination.name'], name).toBeUndefined();
      }
    } finally {
      await requester.close();
      await meters.meterProvider.shutdown();
    }
  });

  it("a settle of a message got with get() names its queue, as its receive and a consumed message's settle do", async () => {
    const meters = testMeters();
    try {
      const channel = traceChannel(await amqp.connection.createChannel(), {
        meterProvider: meters.meterProvider,
        settleSpans: true,
      });
      const queue = `metrics2-get-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      channel.sendToQueue(queue, Buffer.from('a'));
      channel.sendToQueue(queue, Buffer.from('b'));
      channel.sendToQueue(queue, Buffer.from('c'));
      const got: Message[] = [];
      while (got.length < 3) {
        const message = await channel.get(queue);
        if (message) got.push(message);
      }
      channel.nack(got[0] as Message, false, false);
      channel.ack(got[1] as Message);
      channel.reject(got[2] as Message, false);
      await channel.close();
      const settles = spans().filter((s) =>
        ['ack', 'nack', 'reject'].includes(String(s.attributes['messaging.operation.name'])),
      );
      expect(settles.map((s) => s.name).sort()).toEqual([`ack ${queue}`, `nack ${queue}`, `reject ${queue}`]);
      const durations = (await meters.collect()).get('messaging.client.operation.duration')?.points ?? [];
      const destinationOf = Object.fromEntries(
        durations.map((p) => [
          p.attributes['messaging.operation.name'],
          p.attributes['messaging.destination.name'],
        ]),
      );
      expect(destinationOf).toEqual({ send: queue, receive: queue, nack: queue, ack: queue, reject: queue });
    } finally {
      await meters.meterProvider.shutdown();
    }
  });
});
