import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { brokerEndpoint, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ConfirmChannel, Message } from 'amqplib';
import amqplibV0 from 'amqplib-v0';
import { describe, expect, it } from 'vitest';
import { attr, useConnection } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

const amqp = useConnection();

/**
 * Publishes `mandatory` to an exchange without bindings (one message with a confirm callback, one
 * without, one routed), and notes what the application sees, in order.
 */
async function unroutable(channel: ConfirmChannel, exchange: string, queue: string): Promise<string[]> {
  const seen: string[] = [];
  channel.on('return', (message: Message) => {
    const fields = message.fields as Message['fields'] & { replyCode: number; replyText: string };
    seen.push(`return ${message.content.toString()} ${fields.replyCode} ${fields.replyText}`);
  });
  await channel.assertExchange(exchange, 'direct', { autoDelete: true });
  await channel.assertQueue(queue, { exclusive: true });
  await channel.bindQueue(queue, exchange, 'bound');
  seen.push(
    `publish ${channel.publish(exchange, 'nowhere', Buffer.from('a'), { mandatory: true }, (err: unknown) => seen.push(`confirm a ${String(err)}`))}`,
  );
  seen.push(`publish ${channel.publish(exchange, 'nowhere', Buffer.from('b'), { mandatory: true })}`);
  seen.push(`publish ${channel.publish(exchange, 'bound', Buffer.from('c'), { mandatory: true })}`);
  await channel.waitForConfirms();
  seen.push(`depth ${(await channel.checkQueue(queue)).messageCount}`);
  return seen;
}

/** What the application sees on a raw confirm channel and on a traced one, in order. */
async function differential(
  create: () => Promise<ConfirmChannel>,
): Promise<{ raw: string[]; traced: string[]; exchange: string }> {
  const id = randomUUID();
  const raw = await unroutable(await create(), `ex-raw-${id}`, `q-raw-${id}`);
  expect(spans()).toHaveLength(0);
  const exchange = `ex-${id}`;
  const traced = await unroutable(traceChannel(await create()), exchange, `q-${id}`);
  return { raw, traced, exchange };
}

/** The traced channel's three send spans: returned, returned, routed. */
async function expectReturnedSpans(exchange: string): Promise<void> {
  const sends = await waitForSpans(spans, (s) => spansNamed(s, `send ${exchange}`).length === 3);
  const [a, b, c] = spansNamed(sends, `send ${exchange}`);
  for (const returned of [a, b]) {
    expect(returned?.status.code).toBe(SpanStatusCode.ERROR);
    expect(attr(returned as never, 'error.type')).toBe('returned');
    expect(returned?.status.message).toBe('message returned by the broker: 312 NO_ROUTE');
  }
  expect(c?.status.code).toBe(SpanStatusCode.UNSET);
  expect(attr(c as never, 'error.type')).toBeUndefined();
}

describe('mandatory publishes the broker returns (basic.return)', () => {
  it('amqplib 0.10: the same return events and confirms as without hoptrace; the returned sends end ERROR returned', async () => {
    const connection = await amqplibV0.connect(brokerEndpoint('rabbitmq').url);
    try {
      const { raw, traced, exchange } = await differential(
        () => connection.createConfirmChannel() as unknown as Promise<ConfirmChannel>,
      );
      expect(traced).toEqual(raw);
      expect(raw).toContain('return b 312 NO_ROUTE');
      await expectReturnedSpans(exchange);
    } finally {
      await connection.close();
    }
  });

  it('amqplib 2.x: the application sees what it sees without hoptrace; the returned sends end ERROR returned, the routed one OK', async () => {
    const { raw, traced, exchange } = await differential(() => amqp.connection.createConfirmChannel());
    expect(raw).toEqual([
      'publish true',
      'publish true',
      'publish true',
      'return a 312 NO_ROUTE',
      'confirm a null',
      'return b 312 NO_ROUTE',
      'depth 1',
    ]);
    expect(traced).toEqual(raw);
    await expectReturnedSpans(exchange);
  });
});
