import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { deferred, useTestTracing } from '@hoptrace/test-kit';
import { context, trace } from '@opentelemetry/api';
import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { useConnection } from './helpers.ts';

useTestTracing();
const amqp = useConnection();
const STALE = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;

describe('amqplib: caller headers naming a propagation field in another case', () => {
  it('a stale Traceparent/TRACESTATE/Baggage is not published beside the fresh traceparent; other headers as sent', async () => {
    const admin = await amqp.connection.createChannel();
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `amqpfix-todayrev-case-${randomUUID()}`;
    await admin.assertQueue(queue, { exclusive: true });
    const arrived = deferred<ConsumeMessage>();
    await admin.consume(queue, (m) => m && arrived.resolve(m), { noAck: true }); // a plain consumer
    const headers = { Traceparent: STALE, TRACESTATE: 'old=1', Baggage: 'tenant=stale', app: 'a', n: 7 };
    const request = trace.getTracer('app').startSpan('request');
    context.with(trace.setSpan(context.active(), request), () =>
      channel.sendToQueue(queue, Buffer.from('v'), { headers }),
    );
    request.end();
    expect(Object.keys(headers)).toEqual(['Traceparent', 'TRACESTATE', 'Baggage', 'app', 'n']);
    const wire = (await arrived.promise).properties.headers ?? {};
    const names = Object.keys(wire);
    expect(names.filter((k) => k.toLowerCase() === 'traceparent')).toEqual(['traceparent']);
    expect(names.filter((k) => ['tracestate', 'baggage'].includes(k.toLowerCase()))).toEqual([]);
    expect(String(wire.traceparent).split('-')[1]).toBe(request.spanContext().traceId);
    expect(wire.app).toBe('a');
    expect(wire.n).toBe(7);
  });
});
