import { randomUUID } from 'node:crypto';
import { traceChannel, traceConnection } from '@hoptrace/amqp';
import { ERROR_SHUTDOWN, endOpenSpans } from '@hoptrace/core';
import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import {
  context,
  createTraceState,
  metrics,
  propagation,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import amqplib, { type ConsumeMessage, type GetMessage } from 'amqplib';
import callbackApi from 'amqplib/callback_api';
import amqplibV0 from 'amqplib-v0';
import callbackApiV0 from 'amqplib-v0/callback_api';
import { describe, expect, it } from 'vitest';
import {
  attr,
  brokerPort,
  callbackChannel,
  callbackConnect,
  collectDeliveries,
  connect,
  testMeters,
  traceparentOf,
  useConnection,
} from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

const amqp = useConnection();

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

describe('side by side with other instrumentation (standard W3C headers)', () => {
  it('a raw amqplib consumer sees a valid traceparent of the send span', async () => {
    const producer = traceChannel(await amqp.connection.createChannel());
    const raw = await amqp.connection.createChannel();
    const queue = `q-${randomUUID()}`;
    await raw.assertQueue(queue, { exclusive: true });
    const got = deferred<ConsumeMessage>();
    await raw.consume(queue, (m) => {
      if (!m) return;
      raw.ack(m);
      got.resolve(m);
    });
    producer.sendToQueue(queue, Buffer.from('interop'));
    const message = await got.promise;
    const send = onlySpan(spans(), `send ${queue}`);
    const traceparent = String(message.properties.headers?.traceparent);
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(traceparent).toBe(traceparentOf(send));
    expect(spans()).toHaveLength(1); // the raw consumer made no span
  });

  it('a traceparent another tool injected is continued by the traced consumer, and kept by a traced publish', async () => {
    const raw = await amqp.connection.createChannel();
    const consumer = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await raw.assertQueue(queue, { exclusive: true });
    const got: ConsumeMessage[] = [];
    await consumer.consume(queue, (m) => {
      if (!m) return;
      got.push(m);
      consumer.ack(m);
    });
    const traceparent = `00-${TRACE_ID}-${SPAN_ID}-01`;
    raw.sendToQueue(queue, Buffer.from('foreign'), { headers: { traceparent }, messageId: 'raw' });
    // A traced publish whose caller injected its own context: kept, and the send span links to it.
    const producer = traceChannel(raw);
    producer.sendToQueue(queue, Buffer.from('own'), { headers: { traceparent }, messageId: 'own' });
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
    for (const p of spansNamed(done, `process ${queue}`)) {
      expect(p.spanContext().traceId).toBe(TRACE_ID);
      expect(parentSpanId(p)).toBe(SPAN_ID);
    }
    expect(got.map((m) => m.properties.headers?.traceparent)).toEqual([traceparent, traceparent]);
    const send = onlySpan(done, `send ${queue}`);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.links[0]?.context.spanId).toBe(SPAN_ID);
  });
});

describe('a traceparent the caller set as an amqplib typed value ({ "!": "string", value })', () => {
  it("is the caller's own context, as the plain string: kept alone (no tracestate of another trace added), the send span a CLIENT span linked to it", async () => {
    const raw = await amqp.connection.createChannel();
    const traced = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await raw.assertQueue(queue, { exclusive: true });
    const traceparent = `00-${TRACE_ID}-${SPAN_ID}-01`;
    // The publish runs inside another trace whose context carries a tracestate of its own.
    const active = trace.setSpanContext(context.active(), {
      traceId: 'c'.repeat(32),
      spanId: 'd'.repeat(16),
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: createTraceState('vendor=other-trace'),
    });
    const headers = { traceparent: { '!': 'string', value: traceparent } };
    context.with(active, () => {
      raw.sendToQueue(queue, Buffer.from('raw'), { headers });
      traced.sendToQueue(queue, Buffer.from('traced'), { headers });
    });
    const got: ConsumeMessage[] = [];
    await raw.consume(queue, (m) => m && got.push(m), { noAck: true });
    await until(() => got.length === 2, 'both messages');
    const [asRaw, asTraced] = got.map((m) => m.properties.headers);
    expect(asRaw).toEqual({ traceparent });
    expect(asTraced).toEqual(asRaw);
    const send = onlySpan(spans(), `send ${queue}`);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
    expect(headers).toEqual({ traceparent: { '!': 'string', value: traceparent } });
  });
});

describe('publish options reach amqplib as the caller built them', () => {
  it('options and headers built on a prototype (shared defaults, a class): every inherited field is sent, as without hoptrace', async () => {
    const raw = await amqp.connection.createChannel();
    const traced = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await raw.assertQueue(queue, { exclusive: true });
    const defaultHeaders = Object.freeze({ tenant: 'acme', schema: 3 });
    const defaults = Object.freeze({ persistent: true, contentType: 'application/json', appId: 'orders' });
    class Options {
      messageId = 'm-1';
      get correlationId(): string {
        return 'c-1';
      }
    }
    const built = () => [
      Object.assign(Object.create(defaults), { headers: Object.create(defaultHeaders) }),
      new Options(),
    ];
    for (const options of built()) raw.sendToQueue(queue, Buffer.from('raw'), options);
    for (const options of built()) traced.sendToQueue(queue, Buffer.from('traced'), options);
    // Two channels: RabbitMQ orders each channel's messages, not the two channels' against each
    // other, nor against a get on the first: poll until all four are in, then pair them by sender.
    const got: GetMessage[] = [];
    const deadline = Date.now() + 5000;
    while (got.length < 4 && Date.now() < deadline) {
      const m = await raw.get(queue, { noAck: true });
      if (m) got.push(m);
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(got).toHaveLength(4);
    const propertiesOf = (sent: string) =>
      got
        .filter((m) => m.content.toString() === sent)
        .map((m) => {
          const { traceparent, ...headers } = m.properties.headers ?? {};
          expect(traceparent === undefined).toBe(sent === 'raw');
          return { ...m.properties, headers };
        });
    const properties = [...propertiesOf('raw'), ...propertiesOf('traced')];
    expect(properties).toHaveLength(4);
    expect(properties[2]).toEqual(properties[0]);
    expect(properties[3]).toEqual(properties[1]);
    expect(properties[2]).toMatchObject({
      deliveryMode: 2,
      contentType: 'application/json',
      appId: 'orders',
    });
    expect(properties[2]?.headers).toEqual({ tenant: 'acme', schema: 3 });
    expect(properties[3]).toMatchObject({ messageId: 'm-1', correlationId: 'c-1' });
  });
});

describe('span lifecycle', () => {
  it('closing the channel ends open process spans with channel_closed', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue);
    const got = deferred();
    await channel.consume(queue, (m) => m && got.resolve());
    channel.sendToQueue(queue, Buffer.from('never acked'));
    await got.promise;
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${queue}`]);
    await channel.close();
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const process = onlySpan(done, `process ${queue}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(attr(process, 'error.type')).toBe('channel_closed');
    const cleanup = await amqp.connection.createChannel();
    await cleanup.deleteQueue(queue);
  });

  it('closing the connection ends open process spans with connection_closed', async () => {
    const own = await connect();
    const channel = traceChannel(await own.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const got = deferred();
    await channel.consume(queue, (m) => m && got.resolve());
    channel.sendToQueue(queue, Buffer.from('never acked'));
    await got.promise;
    await own.close();
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    expect(attr(onlySpan(done, `process ${queue}`), 'error.type')).toBe('connection_closed');
  });

  it('a handler that throws synchronously: recorded, rethrown to amqplib (which closes the channel), span ended', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const closed = deferred();
    channel.on('close', () => closed.resolve());
    channel.on('error', () => undefined);
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.consume(queue, (m) => {
      if (m) throw new RangeError('sync failure');
    });
    channel.sendToQueue(queue, Buffer.from('boom'));
    await closed.promise;
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const process = onlySpan(done, `process ${queue}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(attr(process, 'error.type')).toBe('RangeError'); // the handler's failure, not the close
    expect(process.events.filter((e) => e.name === 'exception')).toHaveLength(1);
  });

  it('settleTimeoutMs force-ends a never-settled span with settle_timeout; a later ack still reaches amqplib', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { settleTimeoutMs: 100 });
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const got = deferred<ConsumeMessage>();
    await channel.consume(queue, (m) => m && got.resolve(m));
    channel.sendToQueue(queue, Buffer.from('slow'));
    const message = await got.promise;
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const process = onlySpan(done, `process ${queue}`);
    expect(attr(process, 'error.type')).toBe('settle_timeout');
    expect(process.status.message).toContain('settleTimeoutMs');
    channel.ack(message);
    const check = await channel.checkQueue(queue);
    expect(check.messageCount).toBe(0);
    expect(spansNamed(spans(), `process ${queue}`)).toHaveLength(1);
  });

  it('endOpenSpans (process shutdown) ends an un-acked delivery with shutdown; the ack afterwards still reaches amqplib', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const got = deferred<ConsumeMessage>();
    await channel.consume(queue, (m) => m && got.resolve(m));
    channel.sendToQueue(queue, Buffer.from('held'));
    const message = await got.promise;
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${queue}`]);
    expect(endOpenSpans()).toBe(1);
    const process = onlySpan(spans(), `process ${queue}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(attr(process, 'error.type')).toBe(ERROR_SHUTDOWN);
    // The client is left alone: the delivery is still the application's to settle.
    channel.ack(message);
    const check = await channel.checkQueue(queue);
    expect(check.messageCount).toBe(0);
    expect(spansNamed(spans(), `process ${queue}`)).toHaveLength(1);
  });

  it('settleSpans: one ack span (CLIENT, settle) linked to the process spans it settled', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { settleSpans: true });
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.prefetch(2);
    const { got, arrived } = await collectDeliveries(channel, queue);
    channel.sendToQueue(queue, Buffer.from('1'));
    channel.sendToQueue(queue, Buffer.from('2'));
    await arrived(2);
    channel.ack(got[1] as ConsumeMessage, true);
    const done = spans();
    const ack = onlySpan(done, `ack ${queue}`);
    const processes = spansNamed(done, `process ${queue}`);
    expect(ack.kind).toBe(SpanKind.CLIENT);
    expect(ack.attributes).toMatchObject({
      'messaging.operation.type': 'settle',
      'messaging.operation.name': 'ack',
      'messaging.batch.message_count': 2,
    });
    expect(ack.links.map((l) => l.context.spanId).sort()).toEqual(
      processes.map((p) => p.spanContext().spanId).sort(),
    );
  });

  it('baggage allow-list and hop budget reach the process span', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), {
      baggageAttributes: ['tenant.id'],
      traceBudget: { maxHops: 1 },
    });
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.consume(queue, (m) => m && channel.ack(m));
    const bag = propagation.createBaggage({ 'tenant.id': { value: 'acme' }, secret: { value: 's' } });
    context.with(propagation.setBaggage(context.active(), bag), () =>
      channel.sendToQueue(queue, Buffer.from('b')),
    );
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
    const process = onlySpan(done, `process ${queue}`);
    expect(process.attributes['tenant.id']).toBe('acme');
    expect(process.attributes.secret).toBeUndefined();
    expect(process.attributes['hoptrace.hop']).toBe(1);
    expect(parentSpanId(process)).toBe(onlySpan(done, `send ${queue}`).spanContext().spanId);
  });

  it('records the four messaging metrics', async () => {
    const { meterProvider, collect } = testMeters();
    try {
      const channel = traceChannel(await amqp.connection.createChannel(), {
        meterProvider,
        settleSpans: true,
      });
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.consume(queue, (m) => m && channel.ack(m));
      channel.sendToQueue(queue, Buffer.from('m1'));
      channel.sendToQueue(queue, Buffer.from('m2'));
      await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
      await channel.get(queue);
      const collected = await collect();
      const names = new Map([...collected].map(([name, metric]) => [name, metric.points]));
      const sent = names.get('messaging.client.sent.messages');
      expect(sent).toEqual([
        {
          attributes: {
            'messaging.system.name': 'rabbitmq',
            'messaging.operation.name': 'send',
            'messaging.operation.type': 'send',
            'messaging.destination.name': queue,
            'server.address': expect.any(String),
            'server.port': brokerPort(),
          },
          value: 2,
        },
      ]);
      const consumed = names.get('messaging.client.consumed.messages');
      expect(consumed?.find((d) => d.attributes['messaging.operation.name'] === 'process')?.value).toBe(2);
      const processDuration = names.get('messaging.process.duration');
      expect(processDuration?.[0]?.value).toMatchObject({ count: 2 });
      const opDuration = names.get('messaging.client.operation.duration') ?? [];
      // The conventions give messaging.client.operation.duration messaging.operation.type.
      expect(
        opDuration
          .map(
            (d) => `${d.attributes['messaging.operation.name']}:${d.attributes['messaging.operation.type']}`,
          )
          .sort(),
      ).toEqual(['ack:settle', 'receive:receive', 'send:send']);
      expect(processDuration?.[0]?.attributes['messaging.operation.type']).toBeUndefined();
    } finally {
      await meterProvider.shutdown();
      metrics.disable();
    }
  });
});

describe('a confirm callback that throws on close (amqplib 2.x handler-error)', () => {
  it('the open process spans and the other unconfirmed sends still end; the app sees what it sees without hoptrace', async () => {
    /** What the application observes on a confirm channel whose confirm callback rethrows the close error. */
    async function run(traced: boolean): Promise<string[]> {
      const connection = await connect();
      const events: string[] = [];
      try {
        const raw = await connection.createConfirmChannel();
        const channel = traced ? traceChannel(raw) : raw;
        channel.on('error', (e: Error) => events.push(`error ${e.message.slice(0, 40)}`));
        const handled = deferred();
        channel.on('handler-error', (e: Error, event: string) => {
          events.push(`handler-error ${event} ${e.message}`);
          handled.resolve();
        });
        channel.on('close', () => events.push('close')); // never called: the emit stopped at the throw
        const queue = `q-${randomUUID()}`;
        await channel.assertQueue(queue, { exclusive: true });
        channel.sendToQueue(queue, Buffer.from('x'));
        await channel.waitForConfirms();
        const got: ConsumeMessage[] = [];
        await channel.consume(queue, (m) => {
          if (m) got.push(m);
        });
        await until(() => got.length === 1, 'one delivery');
        // The common `if (err) throw err` callback, on a publish the broker refuses by closing the
        // channel (404): amqplib calls it from its `close` listener, and it throws there.
        const missing = `missing-${randomUUID()}`;
        channel.publish(missing, 'k', Buffer.from('y'), {}, (err) => {
          events.push(`confirm ${err?.message}`);
          if (err) throw err;
        });
        channel.publish(missing, 'k', Buffer.from('z'), {}, (err) => events.push(`confirm ${err?.message}`));
        await handled.promise;
      } finally {
        await connection.close();
      }
      return events;
    }
    const withoutHoptrace = await run(false);
    expect(withoutHoptrace).toContain('handler-error close channel closed');
    expect(await run(true)).toEqual(withoutHoptrace);
    const done = spans();
    const process = done.filter((s) => s.name.startsWith('process '));
    expect(process).toHaveLength(1);
    expect(attr(process[0] as (typeof done)[number], 'error.type')).toBe('channel_closed');
    const sends = done.filter((s) => s.name.startsWith('send missing-'));
    expect(sends).toHaveLength(2);
    for (const send of sends) expect(attr(send, 'error.type')).toBe('channel_closed');
  });
});

describe('promise API: get(queue, options, fn)', () => {
  it('the promise answers (a third argument is ignored by amqplib): the receive span ends, fn is never called', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    channel.sendToQueue(queue, Buffer.from('p'));
    await waitForSpans(spans, (s) => spansNamed(s, `send ${queue}`).length === 1);
    let calls = 0;
    const got = await (
      channel as unknown as { get(q: string, o: object, fn: () => void): Promise<unknown> }
    ).get(queue, {}, () => calls++);
    expect((got as { content: Buffer }).content.toString()).toBe('p');
    expect(calls).toBe(0);
    const receive = onlySpan(
      await waitForSpans(spans, (s) => spansNamed(s, `receive ${queue}`).length === 1),
      `receive ${queue}`,
    );
    expect(attr(receive, 'messaging.destination.name')).toBe(queue);
    await channel.close();
  });
});

// The broker answers a get of a queue that does not exist by closing the channel (404). amqplib says
// so differently in each major and API (2.x: an Error of the close, both APIs; 0.10: the promise
// rejects with the close frame, the callback is never called); the receive span says it one way.
describe('a get the broker closes the channel on (404: no such queue), amqplib 2.x and 0.10, both APIs', () => {
  const url = brokerEndpoint('rabbitmq').url;
  type Get = (traced: boolean, queue: string) => Promise<{ outcome: string; close: () => Promise<void> }>;

  /** Opens a channel, gets `queue`, waits for the close; what the application saw. */
  function promiseGet(lib: typeof amqplib): Get {
    return async (traced, queue) => {
      const connection = await lib.connect(url);
      const raw = await connection.createChannel();
      const channel = traced ? traceChannel(raw) : raw;
      channel.on('error', () => undefined);
      const closed = deferred();
      channel.on('close', () => closed.resolve());
      const answer = await channel.get(queue).then(
        (m) => `resolved ${String(m)}`,
        (e: unknown) =>
          e instanceof Error
            ? `rejected ${e.message.replace(queue, 'Q')}`
            : `rejected ${JSON.stringify(e).replace(queue, 'Q')}`,
      );
      await closed.promise;
      return { outcome: answer, close: () => connection.close().catch(() => undefined) };
    };
  }

  function callbackGet(lib: typeof callbackApi): Get {
    return async (traced, queue) => {
      const connection = await callbackConnect(lib, url);
      const raw = await callbackChannel(connection);
      const channel = traced ? traceChannel(raw) : raw;
      channel.on('error', () => undefined);
      const closed = deferred();
      channel.on('close', () => closed.resolve());
      const calls: string[] = [];
      channel.get(queue, {}, (err, m) =>
        calls.push(err ? `error ${String(err.message).replace(queue, 'Q')}` : `ok ${String(m)}`),
      );
      await closed.promise;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return {
        outcome: calls.join(', ') || 'never called',
        close: () => new Promise<void>((resolve) => connection.close(() => resolve())),
      };
    };
  }

  for (const [name, get] of [
    ['amqplib 2.x, promise API', promiseGet(amqplib)],
    ['amqplib 2.x, callback API', callbackGet(callbackApi)],
    ['amqplib 0.10, promise API', promiseGet(amqplibV0 as unknown as typeof amqplib)],
    ['amqplib 0.10, callback API', callbackGet(callbackApiV0 as unknown as typeof callbackApi)],
  ] as const) {
    it(`${name}: the application sees what it sees without hoptrace; one receive span, ERROR channel_closed`, async () => {
      const untraced = await get(false, `amqpedge-missing-${randomUUID()}`);
      await untraced.close();
      const queue = `amqpedge-missing-${randomUUID()}`;
      const traced = await get(true, queue);
      try {
        expect(traced.outcome).toBe(untraced.outcome);
        const receive = onlySpan(
          await waitForSpans(spans, (s) => spansNamed(s, `receive ${queue}`).length === 1),
          `receive ${queue}`,
        );
        expect(receive.status.code).toBe(SpanStatusCode.ERROR);
        expect(attr(receive, 'error.type')).toBe('channel_closed');
        expect(receive.status.message).toMatch(/^channel closed /);
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(spansNamed(spans(), `receive ${queue}`)).toHaveLength(1);
      } finally {
        await traced.close();
      }
    });
  }
});

describe('callback API (amqplib/callback_api)', () => {
  it('publish (confirm, with callback) + consume + ack on callback-API channels', async () => {
    const conn = await callbackConnect();
    try {
      const traced = traceConnection(conn);
      const channel = await callbackChannel(traced);
      const confirm = await new Promise<callbackApi.ConfirmChannel>((resolve, reject) =>
        traced.createConfirmChannel((err, ch) => (err ? reject(err) : resolve(ch))),
      );
      expect(traceChannel(channel)).toBe(channel);
      const queue = `q-${randomUUID()}`;
      await new Promise<void>((resolve, reject) =>
        channel.assertQueue(queue, { exclusive: true }, (err) => (err ? reject(err) : resolve())),
      );
      const consumed = deferred<ConsumeMessage>();
      const consumeOk = deferred<unknown>();
      channel.consume(
        queue,
        (m) => {
          if (!m) return;
          channel.ack(m);
          consumed.resolve(m);
        },
        {},
        (err, ok) => (err ? consumeOk.reject(err) : consumeOk.resolve(ok)),
      );
      expect(await consumeOk.promise).toHaveProperty('consumerTag');
      const confirmed = deferred<unknown>();
      confirm.sendToQueue(queue, Buffer.from('cb'), { messageId: 'cb1' }, (err) => confirmed.resolve(err));
      expect(await confirmed.promise).toBeNull();
      const message = await consumed.promise;
      expect(message.content.toString()).toBe('cb');
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
      const send = onlySpan(done, `send ${queue}`);
      const process = onlySpan(done, `process ${queue}`);
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
      expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(attr(process, 'hoptrace.rabbitmq.settlement')).toBe('ack');

      // get with a callback
      confirm.sendToQueue(queue.replace('q-', 'none-'), Buffer.from('x')); // unroutable: fine
      const got = deferred<unknown>();
      channel.get(queue, {}, (err, m) => (err ? got.reject(err) : got.resolve(m)));
      expect(await got.promise).toBe(false);
      await waitForSpans(spans, (s) => spansNamed(s, `receive ${queue}`).length === 1);
      await new Promise<void>((resolve) => confirm.waitForConfirms(() => resolve()));
    } finally {
      await new Promise<void>((resolve) => conn.close(() => resolve()));
    }
  });

  it('get(queue, cb): amqplib takes the function as options and never calls it; the receive span still ends', async () => {
    const conn = await callbackConnect();
    try {
      const open = (traced: boolean) => callbackChannel(traced ? traceConnection(conn) : conn);
      const queue = `q-${randomUUID()}`;
      const admin = await open(false);
      await new Promise<void>((resolve, reject) =>
        admin.assertQueue(queue, {}, (err) => (err ? reject(err) : resolve())),
      );
      /** Calls of the function passed where amqplib expects options, and the queue depth after. */
      async function run(channel: callbackApi.Channel): Promise<{ calls: number; depth: number }> {
        await new Promise<void>((resolve) => admin.purgeQueue(queue, () => resolve()));
        channel.sendToQueue(queue, Buffer.from('m'));
        let calls = 0;
        // Typed as the callback API's optional-options form some callers assume exists.
        (channel as unknown as { get(q: string, cb: () => void): unknown }).get(queue, () => calls++);
        await new Promise<void>((resolve) => channel.close(() => resolve())); // the got message returns
        const depthNow = () =>
          new Promise<number>((resolve, reject) =>
            admin.checkQueue(queue, (err, ok) => (err ? reject(err) : resolve(ok.messageCount))),
          );
        // The requeue may show a moment after the close (RabbitMQ 4.x, about 1 in 40): wait up to 2 s.
        let depth = await depthNow();
        for (let i = 0; i < 40 && depth === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          depth = await depthNow();
        }
        return { calls, depth };
      }
      const withoutHoptrace = await run(await open(false));
      expect(await run(await open(true))).toEqual(withoutHoptrace);
      expect(spansNamed(spans(), `receive ${queue}`)).toHaveLength(1);
      await new Promise<void>((resolve) => admin.deleteQueue(queue, {}, () => resolve()));
    } finally {
      await new Promise<void>((resolve) => conn.close(() => resolve()));
    }
  });

  it('methods that return the channel for chaining return the traced channel: a chained ack ends its span', async () => {
    const conn = await callbackConnect();
    try {
      const channel = await callbackChannel(traceConnection(conn));
      const queue = `q-${randomUUID()}`;
      await new Promise<void>((resolve, reject) =>
        channel.assertQueue(queue, { exclusive: true }, (err) => (err ? reject(err) : resolve())),
      );
      const received: ConsumeMessage[] = [];
      const consumed = channel.consume(queue, (m) => {
        if (m) received.push(m);
      });
      expect(consumed).toBe(channel);
      for (const body of ['a', 'b', 'c', 'd']) channel.sendToQueue(queue, Buffer.from(body));
      await until(() => received.length === 4, 'four deliveries');
      const [a, b, c, d] = received as [ConsumeMessage, ConsumeMessage, ConsumeMessage, ConsumeMessage];
      // amqplib's callback API chains (its typings say void): each returns the channel it was called on.
      interface Chaining {
        ack(message: ConsumeMessage): Chaining;
        nack(message: ConsumeMessage): Chaining;
        reject(message: ConsumeMessage): Chaining;
      }
      const chaining = channel as unknown as Chaining;
      expect(chaining.ack(a).ack(b).nack(c).reject(d)).toBe(channel);
      expect(channel.get(queue, {}, () => undefined)).toBe(channel);
      expect(channel.recover(() => undefined)).toBe(channel);
      expect(channel.ackAll()).toBe(channel);
      expect(channel.nackAll()).toBe(channel);
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length >= 4);
      const settlements = spansNamed(done, `process ${queue}`)
        .slice(0, 4)
        .map((s) => attr(s, 'hoptrace.rabbitmq.settlement'));
      expect(settlements).toEqual(['ack', 'ack', 'nack', 'reject']);
    } finally {
      await new Promise<void>((resolve) => conn.close(() => resolve()));
    }
  });
});
