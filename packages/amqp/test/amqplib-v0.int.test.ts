import { randomUUID } from 'node:crypto';
import { traceChannel, traceConnection } from '@hoptrace/amqp';
import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  sleep,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import amqplibV0 from 'amqplib-v0';
import callbackApiV0 from 'amqplib-v0/callback_api';
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

  it('a confirm channel closing with an unsampled publish pending first: every send span still ends (channel_closed)', async () => {
    // amqplib 0.10 calls the pending confirm callbacks on close only up to the first publish that
    // had none: an unsampled publish (nothing to end, so no callback) before sampled ones.
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const unsampled = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      traceFlags: TraceFlags.NONE,
      isRemote: true,
    });
    const connection = await amqplibV0.connect(brokerEndpoint('rabbitmq').url);
    try {
      /** The confirm callbacks amqplib called, traced or not. */
      async function publishThenClose(traced: boolean): Promise<unknown[]> {
        const raw = await connection.createConfirmChannel();
        const confirm = traced ? traceChannel(raw, { tracerProvider }) : raw;
        const calls: unknown[] = [];
        context.with(unsampled, () => confirm.sendToQueue(queue, Buffer.from('unsampled')));
        confirm.sendToQueue(queue, Buffer.from('1'), {}, (err) => calls.push(err));
        confirm.sendToQueue(queue, Buffer.from('2'));
        await confirm.close();
        return calls;
      }
      const queue = `q-${randomUUID()}`;
      const admin = await connection.createChannel();
      await admin.assertQueue(queue, { exclusive: true });
      const withoutHoptrace = await publishThenClose(false);
      expect(await publishThenClose(true)).toEqual(withoutHoptrace);
      const sends = spansNamed(exporter.getFinishedSpans(), `send ${queue}`);
      expect(sends).toHaveLength(2);
      for (const send of sends) expect(attr(send, 'error.type')).toBe('channel_closed');
    } finally {
      await connection.close();
    }
  });
  // 0.10's close handling stops at the first publish without a callback, and a later
  // waitForConfirms() then rejects for the rest: hoptrace hands amqplib no callback where the caller
  // gave none (the span ends on the channel's ack/nack event), so both stay as they are.
  it('connection lost with a callback-less publish pending first: callbacks and waitForConfirms as without hoptrace; both send spans end connection_closed, as open deliveries and gets do', async () => {
    async function run(traced: boolean): Promise<{ calls: string[]; waited: string }> {
      const connection = await amqplibV0.connect(brokerEndpoint('rabbitmq').url);
      connection.on('error', () => undefined);
      const raw = await connection.createConfirmChannel();
      const confirm = traced ? traceChannel(raw) : raw;
      confirm.on('error', () => undefined);
      const closed = deferred();
      confirm.on('close', () => closed.resolve());
      const queue = `q-${randomUUID()}`;
      await confirm.assertQueue(queue, { exclusive: true });
      const calls: string[] = [];
      confirm.sendToQueue(queue, Buffer.from('a')); // no callback
      confirm.sendToQueue(queue, Buffer.from('b'), {}, (err) => calls.push(`b ${err?.message}`));
      // The socket fails before the publishes leave: every confirm is still pending at the close.
      (
        connection as unknown as { connection: { stream: { destroy(e: Error): void } } }
      ).connection.stream.destroy(new Error('lost'));
      await closed.promise;
      await sleep(20);
      calls.push('closed');
      const waited = await confirm.waitForConfirms().then(
        () => 'resolved',
        (err: Error) => `rejected ${err.message}`,
      );
      return { calls, waited };
    }
    const withoutHoptrace = await run(false);
    expect(withoutHoptrace).toEqual({
      calls: ['closed', 'b channel closed'],
      waited: 'rejected channel closed',
    });
    tracing.current.reset();
    expect(await run(true)).toEqual(withoutHoptrace);
    const sent = (
      await waitForSpans(
        () => tracing.current.spans(),
        (spans) => spans.filter((s) => s.name.startsWith('send')).length >= 2,
      )
    ).filter((s) => s.name.startsWith('send'));
    expect(sent).toHaveLength(2);
    for (const span of sent) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes['error.type']).toBe('connection_closed');
    }
  });
  // 0.10's callback API drops the error of a get the channel closed on (2.x calls back with it):
  // the callback is never called, so only the channel's close can end the receive span.
  it('callback API get answered by a channel close (404, connection close): never called back, as without hoptrace; each receive span ends once, ERROR channel_closed / connection_closed', async () => {
    const connection = await new Promise<callbackApiV0.Connection>((resolve, reject) =>
      callbackApiV0.connect(brokerEndpoint('rabbitmq').url, (err, c) => (err ? reject(err) : resolve(c))),
    );
    const missing = `missing-${randomUUID()}`;
    const queue = `q-${randomUUID()}`;
    async function run(traced: boolean): Promise<string[]> {
      const calls: string[] = [];
      const open = () =>
        new Promise<callbackApiV0.Channel>((resolve, reject) =>
          connection.createChannel((err, ch) => {
            if (err) return reject(err);
            const channel = traced ? traceChannel(ch) : ch;
            channel.on('error', () => undefined);
            resolve(channel);
          }),
        );
      const channel = await open();
      const closed = deferred();
      channel.on('close', () => closed.resolve());
      // The broker closes the channel: no queue by that name (404).
      channel.get(missing, {}, (err) => calls.push(`missing ${err?.message}`));
      await closed.promise;
      await sleep(50);
      calls.push('closed');
      return calls;
    }
    try {
      const withoutHoptrace = await run(false);
      expect(withoutHoptrace).toEqual(['closed']);
      expect(await run(true)).toEqual(withoutHoptrace);
      const closedOn = onlySpan(
        await waitForSpans(spans, (s) => spansNamed(s, `receive ${missing}`).length === 1),
        `receive ${missing}`,
      );
      expect(closedOn.status.code).toBe(SpanStatusCode.ERROR);
      expect(closedOn.attributes['error.type']).toBe('channel_closed');
    } finally {
      await new Promise<void>((resolve) => connection.close(() => resolve()));
    }
    // A get still waiting when the application closes the connection.
    const other = await new Promise<callbackApiV0.Connection>((resolve, reject) =>
      callbackApiV0.connect(brokerEndpoint('rabbitmq').url, (err, c) => (err ? reject(err) : resolve(c))),
    );
    const calls: string[] = [];
    const channel = await new Promise<callbackApiV0.Channel>((resolve, reject) =>
      traceConnection(other).createChannel((err, ch) => (err ? reject(err) : resolve(ch))),
    );
    channel.assertQueue(queue, { exclusive: true });
    channel.get(queue, {}, (err) => calls.push(`get ${err?.message}`));
    await new Promise<void>((resolve) => other.close(() => resolve()));
    await sleep(50);
    expect(calls).toEqual([]);
    const lost = onlySpan(
      await waitForSpans(spans, (s) => spansNamed(s, `receive ${queue}`).length === 1),
      `receive ${queue}`,
    );
    expect(lost.status.code).toBe(SpanStatusCode.ERROR);
    expect(lost.attributes['error.type']).toBe('connection_closed');
  });
});
