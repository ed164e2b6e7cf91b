import { randomUUID } from 'node:crypto';
import { traceChannel, traceConnection } from '@hoptrace/amqp';
import { brokerEndpoint, onlySpan, useTestTracing } from '@hoptrace/test-kit';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message } from 'amqplib';
import callbackApi from 'amqplib/callback_api';
import { afterEach, describe, expect, it } from 'vitest';
import { callbackChannel, callbackConnect, connect, traceparentOf } from './helpers.ts';

const tracing = useTestTracing();

type Mode = 'raw' | 'traced';
type Fn = (this: unknown, ...args: unknown[]) => unknown;

const opened: ChannelModel[] = [];
afterEach(async () => {
  for (const connection of opened.splice(0)) await connection.close().catch(() => undefined);
});

/** A connection as the application holds it: raw, or traced. */
async function connectAs(mode: Mode): Promise<ChannelModel> {
  const raw = await connect();
  opened.push(raw);
  return mode === 'raw' ? raw : traceConnection(raw);
}

/** Runs `scenario` raw, then traced: what the application sees must be the same. */
async function differential<T>(scenario: (mode: Mode) => Promise<T>): Promise<T> {
  const raw = await scenario('raw');
  tracing.current.reset();
  const traced = await scenario('traced');
  expect(traced).toEqual(raw);
  return traced;
}

/** A name no queue has: a mandatory publish to it comes back as a `return`. */
const nowhere = () => `thisfix-nowhere-${randomUUID()}`;

/** One round trip on the channel: every `return` of an earlier publish has arrived after it. */
async function roundTrip(channel: Channel): Promise<void> {
  const queue = `thisfix-rt-${randomUUID()}`;
  await channel.assertQueue(queue, { exclusive: true });
  await channel.deleteQueue(queue);
}

describe('listeners added to a traced amqplib connection or channel get it as `this`', () => {
  it('a return listener that removes itself with this.off is removed after the first return', async () => {
    await differential(async (mode) => {
      const channel = await (await connectAs(mode)).createChannel();
      const seen: string[] = [];
      const onReturn: Fn = function (this: unknown, message: unknown) {
        seen.push(`${(message as Message).content.toString()}:${String(this === channel)}`);
        (this as Channel).off('return', onReturn);
      };
      channel.on('return', onReturn);
      const routingKey = nowhere();
      channel.publish('', routingKey, Buffer.from('1'), { mandatory: true });
      channel.publish('', routingKey, Buffer.from('2'), { mandatory: true });
      await roundTrip(channel);
      return { seen, left: channel.listenerCount('return') };
    });
  });

  it('this.sendToQueue in a return listener delivers the message', async () => {
    const delivered = await differential(async (mode) => {
      const connection = await connectAs(mode);
      const channel = await connection.createChannel();
      const queue = `thisfix-q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      channel.once('return', function (this: unknown) {
        (this as Channel).sendToQueue(queue, Buffer.from('resent'));
      });
      channel.publish('', nowhere(), Buffer.from('lost'), { mandatory: true });
      const reader = await connection.createChannel();
      const message = await new Promise<ConsumeMessage>((resolve) => {
        void reader.consume(queue, (m) => m && resolve(m), { noAck: true });
      });
      return message.content.toString();
    });
    expect(delivered).toBe('resent');
  });

  it('this in close, drain and once listeners is the object the application holds', async () => {
    await differential(async (mode) => {
      const connection = await connectAs(mode);
      const channel = await connection.createConfirmChannel();
      const seen: string[] = [];
      const record = (name: string, holder: unknown) =>
        function (this: unknown) {
          seen.push(`${name}:${String(this === holder)}`);
        };
      channel.once('drain', record('drain', channel));
      channel.prependOnceListener('drain', record('drain-first', channel));
      const emitted = [channel.emit('drain'), channel.emit('drain')];
      channel.on('close', record('channel-close', channel));
      connection.on('close', record('connection-close', connection));
      await channel.close();
      await connection.close();
      return { seen, emitted };
    });
  });

  it('listeners(), rawListeners() and listenerCount() name the application listeners', async () => {
    await differential(async (mode) => {
      const channel: ConfirmChannel = await (await connectAs(mode)).createConfirmChannel();
      const a: Fn = () => undefined;
      const b: Fn = () => undefined;
      const name = (l: unknown) => (l === a ? 'a' : l === b ? 'b' : 'other');
      channel.on('return', a);
      channel.once('return', b);
      channel.on('drain', b);
      const shown = {
        listeners: channel.listeners('return').map(name),
        raw: channel
          .rawListeners('return')
          .map((l) =>
            l === a || l === b ? name(l) : `once(${name((l as { listener?: unknown }).listener)})`,
          ),
        count: channel.listenerCount('return'),
        countB: channel.listenerCount('return', b),
        drain: channel.listenerCount('drain', b),
      };
      channel.off('return', b);
      channel.removeListener('drain', b);
      return { shown, after: [channel.listenerCount('return'), channel.listenerCount('drain')] };
    });
  });

  it('a listener added to the raw channel directly is removed through the traced one', async () => {
    const connection = await connect();
    opened.push(connection);
    const raw = await connection.createChannel();
    const channel = traceChannel(raw);
    const a: Fn = () => undefined;
    raw.on('return', a);
    expect(channel.listenerCount('return', a)).toBe(1);
    channel.off('return', a);
    expect(channel.listenerCount('return')).toBe(0);
  });

  it('the callback API: this in a return listener is the traced channel, and this.sendToQueue is traced', async () => {
    const url = brokerEndpoint('rabbitmq').url;
    const connection = await callbackConnect(callbackApi, url);
    try {
      const traced = traceConnection(connection);
      const channel = await callbackChannel(traced);
      const queue = `thisfix-cb-${randomUUID()}`;
      await new Promise((resolve, reject) =>
        channel.assertQueue(queue, { exclusive: true }, (error: unknown, ok: unknown) =>
          error ? reject(error) : resolve(ok),
        ),
      );
      const same = new Promise<boolean>((resolve) => {
        channel.once('return', function (this: unknown) {
          (this as callbackApi.Channel).sendToQueue(queue, Buffer.from('resent'));
          resolve(this === channel);
        });
      });
      channel.publish('', nowhere(), Buffer.from('lost'), { mandatory: true });
      expect(await same).toBe(true);
      expect(onlySpan(tracing.current.spans(), `send ${queue}`).name).toBe(`send ${queue}`);
    } finally {
      await new Promise((resolve) => connection.close(resolve));
    }
  });
});

describe('spans of a call on `this` in a listener', () => {
  it('this.sendToQueue in a return listener makes the send span whose context the message carries', async () => {
    const connection = await connectAs('traced');
    const channel = await connection.createChannel();
    const queue = `thisfix-span-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    channel.once('return', function (this: unknown) {
      (this as Channel).sendToQueue(queue, Buffer.from('resent'));
    });
    channel.publish('', nowhere(), Buffer.from('lost'), { mandatory: true });
    const reader = await connection.createChannel();
    const message = await new Promise<ConsumeMessage>((resolve) => {
      void reader.consume(queue, (m) => m && resolve(m), { noAck: true });
    });
    const send = onlySpan(tracing.current.spans(), `send ${queue}`);
    expect(message.properties.headers?.traceparent).toBe(traceparentOf(send));
  });
});
