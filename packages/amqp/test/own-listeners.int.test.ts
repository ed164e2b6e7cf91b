import { randomUUID } from 'node:crypto';
import { traceConnection } from '@hoptrace/amqp';
import { spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from './helpers.ts';

const tracing = useTestTracing();

type Mode = 'raw' | 'traced';

const opened: ChannelModel[] = [];
afterEach(async () => {
  for (const connection of opened.splice(0)) await connection.close().catch(() => undefined);
});

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

describe("hoptrace's own listeners on a traced channel", () => {
  it('are left out of listeners(), rawListeners(), listenerCount() and eventNames()', async () => {
    await differential(async (mode) => {
      const connection = await connectAs(mode);
      const shown = [];
      for (const channel of [await connection.createChannel(), await connection.createConfirmChannel()]) {
        shown.push(
          ['close', 'delivery', 'ack', 'nack', 'error'].map((event) => ({
            event,
            count: channel.listenerCount(event),
            listeners: channel.listeners(event).length,
            raw: channel.rawListeners(event).length,
          })),
          channel.eventNames(),
        );
      }
      return shown;
    });
  });

  it("are kept through the application's removeAllListeners(): a channel that then closes still ends its deliveries' spans", async () => {
    await differential(async (mode) => {
      const connection = await connectAs(mode);
      const channel = await connection.createChannel();
      const queue = `thisfix-own-${randomUUID()}`;
      await channel.assertQueue(queue);
      channel.sendToQueue(queue, Buffer.from('held'));
      const delivered = new Promise<ConsumeMessage>((resolve) => {
        void channel.consume(queue, (m) => m && resolve(m));
      });
      const message = await delivered;
      const cleared = [channel.removeAllListeners('close') === channel, channel.listenerCount('close')];
      channel.removeAllListeners();
      await channel.close();
      const cleanup = await connection.createChannel();
      await cleanup.deleteQueue(queue);
      if (mode === 'traced') {
        await until(
          () => spansNamed(tracing.current.spans(), `process ${queue}`).length === 1,
          'the process span',
        );
        expect(tracing.current.openSpans()).toHaveLength(0);
      }
      return { content: message.content.toString(), cleared };
    });
  });
});
