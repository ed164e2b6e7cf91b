import { randomUUID } from 'node:crypto';
import { traceChannel, traceConnection } from '@hoptrace/amqp';
import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { context, SpanKind, trace } from '@opentelemetry/api';
import amqplibV0 from 'amqplib-v0';
import { describe, expect, it } from 'vitest';
import { attr, brokerPort, traceparentOf } from './helpers.ts';

// The same trace-shape checks against amqplib 0.10.x (npm alias `amqplib-v0`), so both majors are proven.

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

describe('amqplib 0.10 (amqplib-v0)', () => {
  it('reports a 0.10 version', async () => {
    const pkg = (await import('amqplib-v0/package.json', { with: { type: 'json' } })).default as {
      version: string;
    };
    expect(pkg.version.startsWith('0.10.')).toBe(true);
  });

  it('publish -> consume -> ack: process is a child of send, ended on ack; confirm channel and get', async () => {
    const connection = traceConnection(await amqplibV0.connect(brokerEndpoint('rabbitmq').url));
    try {
      const channel = await connection.createChannel();
      const confirm = await connection.createConfirmChannel();
      expect(traceChannel(channel)).toBe(channel);
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const seen = deferred<string | undefined>();
      await channel.consume(queue, (m) => {
        if (!m) return;
        seen.resolve(String(m.properties.headers?.traceparent));
        channel.ack(m);
      });
      const app = trace.getTracer('test').startSpan('app');
      const confirmed = deferred<unknown>();
      context.with(trace.setSpan(context.active(), app), () =>
        confirm.sendToQueue(queue, Buffer.from('v0'), { messageId: 'v0-1' }, (err) => confirmed.resolve(err)),
      );
      app.end();
      expect(await confirmed.promise).toBeNull();
      const traceparent = await seen.promise;
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
      const send = onlySpan(done, `send ${queue}`);
      const process = onlySpan(done, `process ${queue}`);
      expect(traceparent).toBe(traceparentOf(send));
      expect(send.kind).toBe(SpanKind.PRODUCER);
      expect(process.kind).toBe(SpanKind.CONSUMER);
      expect(parentSpanId(send)).toBe(app.spanContext().spanId);
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
      expect(process.spanContext().traceId).toBe(app.spanContext().traceId);
      expect(process.links).toEqual([]);
      expect(process.attributes).toMatchObject({
        'messaging.destination.name': queue,
        'rabbitmq.message.delivery_tag': 1,
        'messaging.message.id': 'v0-1',
        'hoptrace.rabbitmq.settlement': 'ack',
        'server.port': brokerPort(),
      });
      expect(attr(send, 'server.address')).toBe('127.0.0.1');

      confirm.sendToQueue(`missing-${randomUUID()}`, Buffer.from('x'));
      await confirm.waitForConfirms();
      const empty = await channel.get(queue);
      expect(empty).toBe(false);
      expect(spansNamed(spans(), `receive ${queue}`)).toHaveLength(1);
    } finally {
      await connection.close();
    }
  });
});
