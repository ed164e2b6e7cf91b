import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { deferred, parentSpanId, spansNamed, until, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { connect } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

/** Closes only the connection this test opened, found by its `connection_name`. */
function closeConnectionNamed(name: string): void {
  const out = execFileSync(
    'rabbitmqctl',
    ['list_connections', 'pid', 'client_properties', '-q', '--no-table-headers'],
    {
      encoding: 'utf8',
    },
  );
  const line = out.split('\n').find((l) => l.includes(`"${name}"`));
  if (!line) throw new Error(`no RabbitMQ connection named ${name}`);
  const pid = line.split('\t')[0] as string;
  execFileSync('rabbitmqctl', ['close_connection', pid, 'hoptrace fault test']);
}

describe('bad input from the wire', () => {
  it('headers of every AMQP type and malformed trace headers: delivered unaltered, processing starts a new trace', async () => {
    const connection = await connect();
    try {
      const channel = traceChannel(await connection.createChannel());
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const base = {
        n: 42,
        f: 1.5,
        neg: -7,
        big: 2 ** 40,
        yes: true,
        no: false,
        nested: { a: 1, s: 'x', deeper: { z: false, list: [1, 2] } },
        buf: Buffer.from([0, 1, 255]),
        arr: [1, 'two', true, { k: 'v' }],
        str: 'plain',
      };
      const malformed: Record<string, unknown>[] = [
        { traceparent: 'garbage' },
        { traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` },
        { traceparent: `ff-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, tracestate: 'x=1' },
        { traceparent: 12345 },
        { traceparent: Buffer.from([0xff, 0xfe, 0x00]) },
        { traceparent: { nested: 'table' } },
        { traceparent: true, baggage: '%%%;;;=' },
        { tracestate: 'only=state', baggage: 'k=v' },
      ];
      const received: ConsumeMessage[] = [];
      await channel.consume(queue, (m) => {
        if (!m) return;
        received.push(m);
        channel.ack(m);
      });
      const sent = malformed.map((extra, i) => ({ ...base, ...extra, i }));
      for (const [i, headers] of sent.entries()) {
        channel.sendToQueue(queue, Buffer.from(`body-${i}`), { headers, messageId: `bad-${i}` });
      }
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === sent.length);
      expect(received).toHaveLength(sent.length);
      const sends = spansNamed(done, `send ${queue}`);
      for (const [i, message] of received.entries()) {
        expect(message.content.toString()).toBe(`body-${i}`);
        const sentHeaders = sent[i] as Record<string, unknown>;
        if ('traceparent' in sentHeaders) {
          // The sender's own (malformed) traceparent is never overwritten, and nothing is added.
          expect(message.properties.headers).toEqual(sentHeaders);
        } else {
          // No trace context at all (only tracestate/baggage): ours is added, theirs kept as sent.
          const send = sends.find((s) => s.attributes['messaging.message.id'] === `bad-${i}`) as ReadableSpan;
          expect(message.properties.headers).toEqual({
            ...sentHeaders,
            traceparent: `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`,
          });
        }
      }
      for (const process of spansNamed(done, `process ${queue}`)) {
        const id = String(process.attributes['messaging.message.id']);
        const send = sends.find((s) => s.attributes['messaging.message.id'] === id) as ReadableSpan;
        const sentHeaders = sent[Number(id.slice('bad-'.length))] as Record<string, unknown>;
        if ('traceparent' in sentHeaders) {
          expect(parentSpanId(process)).toBeUndefined();
          expect(process.links).toHaveLength(0);
          expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
        } else {
          expect(parentSpanId(process)).toBe(send.spanContext().spanId);
        }
        expect(process.status.code).toBe(SpanStatusCode.UNSET);
      }
    } finally {
      await connection.close();
    }
  });
});

describe('connection loss mid-stream (rabbitmqctl close_connection on our own connection)', () => {
  it('ends every open span with connection_closed, and the app’s reconnect sees unacked messages again, traced', async () => {
    const name = `hoptrace-fault-${randomUUID()}`;
    const queue = `fault-${randomUUID()}`;
    const ids = ['m0', 'm1', 'm2', 'm3', 'm4'];
    const admin = await connect();
    const adminChannel = traceChannel(await admin.createChannel());
    await adminChannel.assertQueue(queue, { durable: false });
    const processed = new Set<string>();
    let first: ChannelModel | undefined;
    let second: ChannelModel | undefined;
    try {
      first = await connect(name);
      const lost = deferred<unknown>();
      first.on('close', (err) => lost.resolve(err));
      first.on('error', () => undefined);
      const channel = traceChannel(await first.createChannel());
      await channel.prefetch(10);
      const held: ConsumeMessage[] = [];
      await channel.consume(queue, (m) => {
        if (!m) return;
        const id = String(m.properties.messageId);
        if (id === 'm0' || id === 'm1') {
          processed.add(id);
          channel.ack(m);
        } else {
          held.push(m); // still "processing" when the connection drops
        }
      });
      for (const id of ids) adminChannel.sendToQueue(queue, Buffer.from(id), { messageId: id });
      await until(() => held.length === 3 && processed.size === 2);
      expect(tracing.current.openSpans()).toHaveLength(3);

      closeConnectionNamed(name);
      await lost.promise;
      const afterLoss = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 5);
      const lostSpans = spansNamed(afterLoss, `process ${queue}`).filter((s) => s.attributes['error.type']);
      expect(lostSpans.map((s) => s.attributes['messaging.message.id']).sort()).toEqual(['m2', 'm3', 'm4']);
      for (const s of lostSpans) {
        expect(s.attributes['error.type']).toBe('connection_closed');
        expect(s.status.code).toBe(SpanStatusCode.ERROR);
      }
      expect(tracing.current.openSpans()).toHaveLength(0);

      // The application's own reconnect logic: a new connection, consume again.
      second = await connect(`${name}-2`);
      const again = traceChannel(await second.createChannel());
      const redelivered = new Set<string>();
      await again.consume(queue, (m) => {
        if (!m) return;
        const id = String(m.properties.messageId);
        processed.add(id);
        if (m.fields.redelivered) redelivered.add(id);
        again.ack(m);
      });
      await until(() => processed.size === ids.length);
      expect([...processed].sort()).toEqual(ids);
      expect([...redelivered].sort()).toEqual(['m2', 'm3', 'm4']);
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 8);
      const sends = spansNamed(done, `send ${queue}`);
      for (const id of ['m2', 'm3', 'm4']) {
        const send = sends.find((s) => s.attributes['messaging.message.id'] === id) as ReadableSpan;
        const traced = spansNamed(done, `process ${queue}`).filter(
          (s) => s.attributes['messaging.message.id'] === id,
        );
        expect(traced).toHaveLength(2);
        const retry = traced.find(
          (s) => s.attributes['hoptrace.rabbitmq.redelivered'] === true,
        ) as ReadableSpan;
        expect(retry.attributes['hoptrace.rabbitmq.settlement']).toBe('ack');
        expect(retry.spanContext().traceId).toBe(send.spanContext().traceId);
        expect(parentSpanId(retry)).toBe(send.spanContext().spanId);
      }
    } finally {
      await adminChannel.deleteQueue(queue).catch(() => undefined);
      await second?.close().catch(() => undefined);
      await admin.close().catch(() => undefined);
    }
  });
});
