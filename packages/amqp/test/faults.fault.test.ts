import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_MAX_OPEN_DELIVERIES, deadLetterOptions, traceChannel } from '@hoptrace/amqp';
import {
  brokerEndpoint,
  deferred,
  makePropagator,
  onlySpan,
  parentSpanId,
  spansNamed,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { propagation, SpanStatusCode, type TextMapPropagator } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ChannelModel, ConsumeMessage, GetMessage } from 'amqplib';
import amqplib from 'amqplib';
import { describe, expect, it } from 'vitest';
import { callbackChannel, callbackConnect, connect } from './helpers.ts';

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

describe('a hostile x-death header from a raw publisher', () => {
  it('death_count sums only non-negative integer counts, never past the safe integer range; the message arrives as sent', async () => {
    const connection = await connect();
    try {
      const raw = await connection.createChannel();
      const channel = traceChannel(await connection.createChannel());
      const queue = `q-${randomUUID()}`;
      await raw.assertQueue(queue, { exclusive: false, autoDelete: true });
      const deaths: Record<string, unknown[]> = {
        negative: [{ count: -5, reason: 'rejected' }],
        fraction: [{ count: 1.5 }, { count: 2 }],
        huge: [{ count: 2 ** 62 }, { count: 2 ** 62 }, { count: 1 }],
        mixed: [{ count: -1 }, { count: 3 }, { count: 0.25 }, {}],
      };
      const expected: Record<string, number> = {
        negative: 0,
        fraction: 2,
        huge: Number.MAX_SAFE_INTEGER,
        mixed: 3,
      };
      const received: ConsumeMessage[] = [];
      await channel.consume(queue, (m) => {
        if (!m) return;
        received.push(m);
        channel.ack(m);
      });
      for (const [id, xDeath] of Object.entries(deaths)) {
        raw.sendToQueue(queue, Buffer.from(id), { messageId: id, headers: { 'x-death': xDeath } });
      }
      const ids = Object.keys(deaths);
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === ids.length);
      expect(received.map((m) => m.properties.headers?.['x-death'])).toEqual(ids.map((id) => deaths[id]));
      for (const id of ids) {
        const process = spansNamed(done, `process ${queue}`).find(
          (s) => s.attributes['messaging.message.id'] === id,
        );
        expect(process?.attributes['hoptrace.rabbitmq.death_count'], id).toBe(expected[id]);
        expect(process?.status.code).toBe(SpanStatusCode.UNSET);
      }
      await raw.close();
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

/** Values a handler or a getter may throw that are not Errors (12.1). */
function hostileValues(): { label: string; value: unknown }[] {
  const throwing = {
    get message(): string {
      throw new Error('message getter');
    },
    get name(): string {
      throw new Error('name getter');
    },
    toString(): string {
      throw new Error('toString');
    },
  };
  const trap = () => {
    throw new Error('proxy trap');
  };
  return [
    { label: 'null', value: null },
    { label: 'undefined', value: undefined },
    { label: 'number', value: 0 },
    { label: 'string', value: 'plain string' },
    { label: 'boolean', value: false },
    { label: 'null prototype', value: Object.assign(Object.create(null), { message: 'np' }) },
    { label: 'throwing getters', value: throwing },
    {
      label: 'hostile proxy',
      value: new Proxy({}, { get: trap, getPrototypeOf: trap, ownKeys: trap, has: trap }),
    },
    { label: 'Error', value: new RangeError('plain') },
  ];
}

describe('whatever is thrown reaches the host unchanged (12.1, 12.2)', () => {
  it('an async consume callback rejecting with any value: the same value reaches amqplib, the span ends ERROR', async () => {
    const connection = await connect();
    const reasons: unknown[] = [];
    const onUnhandled = (reason: unknown) => reasons.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const channel = traceChannel(await connection.createChannel());
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const values = hostileValues();
      await channel.consume(
        queue,
        async (m) => {
          if (!m) return;
          await Promise.resolve();
          throw values[Number(m.properties.messageId)]?.value;
        },
        { noAck: true },
      );
      for (const i of values.keys()) channel.sendToQueue(queue, Buffer.from('x'), { messageId: String(i) });
      const done = await waitForSpans(
        spans,
        (s) => spansNamed(s, `process ${queue}`).length === values.length,
      );
      await until(() => reasons.length >= values.length, 'the rejections amqplib left unhandled');
      for (const [i, { label, value }] of values.entries()) {
        expect(
          reasons.some((r) => Object.is(r, value)),
          label,
        ).toBe(true);
        const span = spansNamed(done, `process ${queue}`).find(
          (s) => s.attributes['messaging.message.id'] === String(i),
        ) as ReadableSpan;
        expect(span.status.code, label).toBe(SpanStatusCode.ERROR);
        expect(typeof span.attributes['error.type'], label).toBe('string');
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await connection.close();
    }
  });

  it('a classifier that throws changes nothing: the host gets its error, the span falls back to the default error.type', async () => {
    const connection = await connect();
    const reasons: unknown[] = [];
    const onUnhandled = (reason: unknown) => reasons.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const channel = traceChannel(await connection.createChannel(), {
        classifyError: () => {
          throw new Error('classifier bug');
        },
      });
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const failure = new RangeError('out of range');
      await channel.consume(
        queue,
        async (m) => {
          if (m) throw failure;
        },
        { noAck: true },
      );
      channel.sendToQueue(queue, Buffer.from('x'));
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
      await until(() => reasons.includes(failure), 'the handler’s rejection');
      expect(onlySpan(done, `process ${queue}`).attributes['error.type']).toBe('RangeError');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await connection.close();
    }
  });

  it('a sync consume callback throwing any value: amqplib sees exactly what it sees without hoptrace, the span ends ERROR', async () => {
    /** What amqplib made of the throw: the channel's or the connection's error, by message. */
    async function outcome(traced: boolean, value: unknown): Promise<string> {
      const connection = await connect();
      const seen = deferred<string>();
      connection.on('error', (e: Error) => seen.resolve(`connection error: ${e.message}`));
      connection.on('close', () => seen.resolve('connection closed'));
      try {
        const raw = await connection.createChannel();
        const channel = traced ? traceChannel(raw) : raw;
        channel.on('error', (e: Error) => seen.resolve(`channel error: ${e.message}`));
        const queue = `q-${randomUUID()}`;
        await channel.assertQueue(queue, { exclusive: true });
        await channel.consume(queue, (m) => {
          if (m) throw value;
        });
        channel.sendToQueue(queue, Buffer.from('x'));
        return await seen.promise;
      } finally {
        await connection.close().catch(() => undefined);
      }
    }
    for (const { label, value } of hostileValues()) {
      tracing.current.reset();
      const traced = await outcome(true, value);
      const done = await waitForSpans(spans, (s) => s.some((x) => x.name.startsWith('process ')));
      const process = done.find((s) => s.name.startsWith('process ')) as ReadableSpan;
      expect(process.status.code, label).toBe(SpanStatusCode.ERROR);
      expect(traced, label).toBe(await outcome(false, value));
    }
  });

  it('publish options whose headers throw any value from a getter: the caller gets that value, the send span ends ERROR (plain and confirm channels)', async () => {
    const connection = await connect();
    try {
      const plain = traceChannel(await connection.createChannel());
      const confirm = traceChannel(await connection.createConfirmChannel());
      const queue = `q-${randomUUID()}`;
      await plain.assertQueue(queue, { exclusive: true });
      for (const channel of [plain, confirm]) {
        for (const { label, value } of hostileValues()) {
          tracing.current.reset();
          const headers = {
            ok: 'kept',
            get traceparent(): string {
              throw value;
            },
            get custom(): string {
              throw value;
            },
          };
          let caught: unknown = 'nothing thrown';
          try {
            channel.sendToQueue(queue, Buffer.from('x'), { headers, messageId: label });
          } catch (error) {
            caught = error;
          }
          expect(Object.is(caught, value), label).toBe(true);
          const send = onlySpan(spans(), `send ${queue}`);
          expect(send.status.code, label).toBe(SpanStatusCode.ERROR);
          expect(tracing.current.openSpans(), label).toHaveLength(0);
        }
      }
      // Nothing reached the queue, and the channels still work.
      confirm.sendToQueue(queue, Buffer.from('after'));
      await confirm.waitForConfirms();
      expect((await plain.checkQueue(queue)).messageCount).toBe(1);
    } finally {
      await connection.close();
    }
  });
});

describe('hostile header sizes are refused before any parser sees them (12.3)', () => {
  it('60 KB baggage, tracestate and traceparent (amqplib encodes at most 64 KB of headers): the propagator never gets them, processing goes on', async () => {
    // A propagator that records the longest value the header getter ever handed it.
    const real = makePropagator('w3c');
    let longest = 0;
    const spy: TextMapPropagator = {
      inject: (ctx, carrier, setter) => real.inject(ctx, carrier, setter),
      extract: (ctx, carrier, getter) =>
        real.extract(ctx, carrier, {
          keys: (c) => getter.keys(c),
          get: (c, key) => {
            const value = getter.get(c, key);
            const length = Array.isArray(value) ? value.join(',').length : (value?.length ?? 0);
            longest = Math.max(longest, length);
            return value;
          },
        }),
      fields: () => real.fields(),
    };
    propagation.disable();
    propagation.setGlobalPropagator(spy);
    const connection = await connect();
    try {
      const raw = await connection.createChannel();
      const channel = traceChannel(await connection.createChannel(), { baggageAttributes: ['tenant'] });
      const queue = `q-${randomUUID()}`;
      await raw.assertQueue(queue, { exclusive: true });
      await channel.consume(queue, (m) => m && channel.ack(m));
      const big = 60_000; // amqplib encodes at most 64 KB of headers per message
      const valid = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
      const huge = {
        baggage: { traceparent: valid, baggage: `tenant=acme,${'k=v,'.repeat(big / 4)}` },
        tracestate: { traceparent: valid, tracestate: `v=${'x'.repeat(big)}` },
        traceparent: { traceparent: `${valid}-${'0'.repeat(big)}` },
        members: { traceparent: valid, baggage: Array.from({ length: 65 }, (_, i) => `k${i}=v`).join(',') },
      };
      for (const [id, headers] of Object.entries(huge)) {
        raw.sendToQueue(queue, Buffer.from(id), { headers, messageId: id });
      }
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 4);
      expect(longest).toBeLessThanOrEqual(512);
      const byId = (id: string) =>
        spansNamed(done, `process ${queue}`).find(
          (s) => s.attributes['messaging.message.id'] === id,
        ) as ReadableSpan;
      // The valid traceparent still counts; the oversized baggage and tracestate are as if absent.
      for (const id of ['baggage', 'tracestate', 'members']) {
        expect(byId(id).spanContext().traceId, id).toBe('a'.repeat(32));
        expect(byId(id).attributes.tenant, id).toBeUndefined();
        expect(byId(id).spanContext().traceState?.serialize() ?? '', id).toBe('');
        expect(byId(id).status.code, id).toBe(SpanStatusCode.UNSET);
      }
      // An oversized traceparent: a new trace.
      expect(byId('traceparent').spanContext().traceId).not.toBe('a'.repeat(32));
      expect(parentSpanId(byId('traceparent'))).toBeUndefined();
    } finally {
      propagation.disable();
      propagation.setGlobalPropagator(real);
      await connection.close();
    }
  });
});

describe('un-acked deliveries are bounded, and multiple settles end exactly what they settle (12.6, 12.7)', () => {
  it('default bound 1000: the oldest spans end untracked; allUpTo acks and nacks end only tags up to theirs; every message is still settled by amqplib', async () => {
    const connection = await connect();
    try {
      const channel = traceChannel(await connection.createChannel());
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const total = DEFAULT_MAX_OPEN_DELIVERIES + 5;
      const got: ConsumeMessage[] = [];
      await channel.consume(queue, (m) => {
        if (m) got.push(m); // never acked in the handler
      });
      for (let i = 0; i < total; i++)
        channel.sendToQueue(queue, Buffer.from(String(i)), { messageId: String(i) });
      await until(() => got.length === total, 'every delivery');
      const pushedOut = spansNamed(
        await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 5),
        `process ${queue}`,
      );
      expect(pushedOut.map((s) => s.attributes['messaging.message.id']).sort()).toEqual([
        '0',
        '1',
        '2',
        '3',
        '4',
      ]);
      for (const span of pushedOut) {
        expect(span.attributes['hoptrace.rabbitmq.settlement']).toBe('untracked');
        expect(span.status.code).toBe(SpanStatusCode.UNSET);
        expect(span.events.find((e) => e.name === 'hoptrace.untracked')?.attributes).toEqual({
          'hoptrace.max_open_deliveries': DEFAULT_MAX_OPEN_DELIVERIES,
        });
      }
      expect(tracing.current.openSpans()).toHaveLength(DEFAULT_MAX_OPEN_DELIVERIES);

      // ack(msg 500, allUpTo): ends 5..500 (0..4 are already ended), nothing past it.
      channel.ack(got[500] as ConsumeMessage, true);
      let done = spansNamed(spans(), `process ${queue}`);
      expect(done).toHaveLength(501);
      expect(done.filter((s) => s.attributes['hoptrace.rabbitmq.settlement'] === 'ack')).toHaveLength(496);
      expect(tracing.current.openSpans()).toHaveLength(total - 501);
      // A single out-of-order ack, then nack(allUpTo, no requeue) over it.
      channel.ack(got[700] as ConsumeMessage);
      channel.nack(got[800] as ConsumeMessage, true, false);
      done = spansNamed(spans(), `process ${queue}`);
      expect(done).toHaveLength(801);
      const nacked = done.filter((s) => s.attributes['hoptrace.rabbitmq.settlement'] === 'nack');
      expect(nacked).toHaveLength(299);
      expect(nacked.every((s) => s.attributes['error.type'] === 'rejected')).toBe(true);
      channel.ack(got[total - 1] as ConsumeMessage, true);
      expect(tracing.current.openSpans()).toHaveLength(0);
      expect(spansNamed(spans(), `process ${queue}`)).toHaveLength(total);
      // amqplib settled every message, including the ones whose spans were pushed out.
      const check = await channel.checkQueue(queue);
      expect(check.messageCount).toBe(0);
    } finally {
      await connection.close();
    }
  });

  it('the broker closing the channel (a double ack) ends every open span with channel_closed', async () => {
    const connection = await connect();
    try {
      const channel = traceChannel(await connection.createChannel());
      channel.on('error', () => undefined);
      const closed = deferred();
      channel.on('close', () => closed.resolve());
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue);
      const got: ConsumeMessage[] = [];
      await channel.consume(queue, (m) => {
        if (m) got.push(m);
      });
      for (let i = 0; i < 4; i++)
        channel.sendToQueue(queue, Buffer.from(String(i)), { messageId: String(i) });
      await until(() => got.length === 4, 'four deliveries');
      channel.ack(got[0] as ConsumeMessage);
      channel.ack(got[0] as ConsumeMessage); // PRECONDITION_FAILED: unknown delivery tag
      await closed.promise;
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 4);
      const aborted = done.filter((s) => s.attributes['error.type'] === 'channel_closed');
      expect(aborted.map((s) => s.attributes['messaging.message.id']).sort()).toEqual(['1', '2', '3']);
      for (const span of aborted) expect(span.status.code).toBe(SpanStatusCode.ERROR);
      const cleanup = await connection.createChannel();
      await cleanup.deleteQueue(queue);
    } finally {
      await connection.close();
    }
  });
  it('an allUpTo ack with a tag this channel never delivered (another channel’s message): the broker acks nothing and closes the channel, as without hoptrace; every open span ends channel_closed, none ack', async () => {
    const connection = await connect();
    try {
      const other = await connection.createChannel();
      const foreignQueue = `q-${randomUUID()}`;
      await other.assertQueue(foreignQueue, { exclusive: true });
      const foreign: ConsumeMessage[] = [];
      await other.consume(foreignQueue, (m) => {
        if (m) foreign.push(m);
      });
      for (let i = 0; i < 10; i++) other.sendToQueue(foreignQueue, Buffer.from(String(i)));
      await until(() => foreign.length === 10, 'ten deliveries on the other channel');
      const stranger = foreign[9] as ConsumeMessage; // delivery tag 10 on the other channel

      /** Acks `stranger` with allUpTo on a channel holding three deliveries; what stays queued. */
      async function run(traced: boolean): Promise<{ events: string[]; queued: number }> {
        const raw = await connection.createChannel();
        const channel = traced ? traceChannel(raw) : raw;
        const events: string[] = [];
        channel.on('error', (e: Error) => events.push(`error ${e.message.slice(0, 64)}`));
        const closed = deferred();
        channel.on('close', () => closed.resolve());
        const queue = `q-${randomUUID()}`;
        await other.assertQueue(queue);
        const got: ConsumeMessage[] = [];
        await channel.consume(queue, (m) => {
          if (m) got.push(m);
        });
        for (let i = 0; i < 3; i++)
          other.sendToQueue(queue, Buffer.from(String(i)), { messageId: String(i) });
        await until(() => got.length === 3, 'three deliveries');
        channel.ack(stranger, true); // PRECONDITION_FAILED: unknown delivery tag 10
        await closed.promise;
        const { messageCount } = await other.checkQueue(queue);
        await other.deleteQueue(queue);
        return { events, queued: messageCount };
      }
      const withoutHoptrace = await run(false);
      expect(withoutHoptrace.queued).toBe(3);
      expect(await run(true)).toEqual(withoutHoptrace);
      const done = await waitForSpans(
        spans,
        (s) => s.filter((p) => p.name.startsWith('process ')).length === 3,
      );
      for (const span of done.filter((s) => s.name.startsWith('process '))) {
        expect(span.attributes['hoptrace.rabbitmq.settlement']).toBeUndefined();
        expect(span.attributes['error.type']).toBe('channel_closed');
        expect(span.status.code).toBe(SpanStatusCode.ERROR);
      }
    } finally {
      await connection.close();
    }
  });
  it('an allUpTo settle naming a message already settled (nacked or acked alone, or delivered to a noAck consumer or get): the broker settles nothing and closes the channel, as without hoptrace; the open spans below it end channel_closed, none ack', async () => {
    const connection = await connect();
    type Settled = 'nack' | 'ack' | 'noAck consume' | 'noAck get';
    try {
      const admin = await connection.createChannel();
      /** Three deliveries open, then a fourth settled already, named again by an allUpTo ack. */
      async function run(traced: boolean, how: Settled): Promise<{ events: string[]; queued: number }> {
        const raw = await connection.createChannel();
        const channel = traced ? traceChannel(raw) : raw;
        const events: string[] = [];
        channel.on('error', (e: Error) => events.push(`error ${e.message.slice(0, 80)}`));
        const closed = deferred();
        channel.on('close', () => closed.resolve());
        const queue = `q-${randomUUID()}`;
        const other = `q-${randomUUID()}`;
        await admin.assertQueue(queue);
        await admin.assertQueue(other, { exclusive: true });
        const got: ConsumeMessage[] = [];
        await channel.consume(queue, (m) => {
          if (m) got.push(m);
        });
        const count = how === 'nack' || how === 'ack' ? 4 : 3;
        for (let i = 0; i < count; i++)
          admin.sendToQueue(queue, Buffer.from(String(i)), { messageId: `${how}-${i}` });
        await until(() => got.length === count, 'the deliveries');
        let last: ConsumeMessage;
        if (how === 'nack' || how === 'ack') {
          last = got[3] as ConsumeMessage;
          if (how === 'nack') channel.nack(last, false, false);
          else channel.ack(last);
        } else {
          admin.sendToQueue(other, Buffer.from('settled on delivery'));
          const fourth = deferred<ConsumeMessage>();
          if (how === 'noAck get') {
            let message: ConsumeMessage | false = false;
            while (!message) message = (await channel.get(other, { noAck: true })) as ConsumeMessage | false;
            fourth.resolve(message);
          } else {
            await channel.consume(other, (m) => m && fourth.resolve(m), { noAck: true });
          }
          last = await fourth.promise;
        }
        expect(last.fields.deliveryTag).toBe(4);
        channel.ack(last, true); // PRECONDITION_FAILED: unknown delivery tag 4
        await closed.promise;
        const { messageCount } = await admin.checkQueue(queue);
        await admin.deleteQueue(queue);
        return { events, queued: messageCount };
      }
      for (const how of ['nack', 'ack', 'noAck consume', 'noAck get'] as const) {
        const withoutHoptrace = await run(false, how);
        expect(withoutHoptrace.queued).toBe(3); // tags 1-3 were never acked: requeued at the close
        expect(await run(true, how)).toEqual(withoutHoptrace);
        const opened = how === 'nack' || how === 'ack' ? 4 : 3;
        const ours = (s: readonly ReadableSpan[]) =>
          s.filter((p) => String(p.attributes['messaging.message.id']).startsWith(`${how}-`));
        const process = ours(await waitForSpans(spans, (s) => ours(s).length === opened));
        const byId = (id: number) =>
          process.find((s) => s.attributes['messaging.message.id'] === `${how}-${id}`);
        for (const id of [0, 1, 2]) {
          expect(byId(id)?.attributes['hoptrace.rabbitmq.settlement']).toBeUndefined();
          expect(byId(id)?.attributes['error.type']).toBe('channel_closed');
          expect(byId(id)?.status.code).toBe(SpanStatusCode.ERROR);
        }
        if (opened === 4) expect(byId(3)?.attributes['hoptrace.rabbitmq.settlement']).toBe(how);
        tracing.current.reset();
      }
    } finally {
      await connection.close();
    }
  });
  it('an allUpTo ack naming the tag of a message a raw consumer of the same channel got settles the traced deliveries below it', async () => {
    const connection = await connect();
    try {
      const raw = await connection.createChannel();
      const channel = traceChannel(raw);
      const tracedQueue = `q-${randomUUID()}`;
      const rawQueue = `q-${randomUUID()}`;
      await raw.assertQueue(tracedQueue, { exclusive: true });
      await raw.assertQueue(rawQueue, { exclusive: true });
      const traced: ConsumeMessage[] = [];
      await channel.consume(tracedQueue, (m) => {
        if (m) traced.push(m);
      });
      for (let i = 0; i < 2; i++) raw.sendToQueue(tracedQueue, Buffer.from(String(i)));
      await until(() => traced.length === 2, 'two traced deliveries');
      // A consumer on the raw channel object (the same channel, not traced) gets the next tag.
      const untraced: ConsumeMessage[] = [];
      await raw.consume(rawQueue, (m) => {
        if (m) untraced.push(m);
      });
      raw.sendToQueue(rawQueue, Buffer.from('raw'));
      await until(() => untraced.length === 1, 'the raw delivery');
      const last = untraced[0] as ConsumeMessage;
      expect(last.fields.deliveryTag).toBe(3);
      channel.ack(last, true); // acks tags 1-3: both traced deliveries and the raw one
      const done = await waitForSpans(
        spans,
        (s) => s.filter((p) => p.name.startsWith('process ')).length === 2,
      );
      for (const span of done.filter((s) => s.name.startsWith('process '))) {
        expect(span.attributes['hoptrace.rabbitmq.settlement']).toBe('ack');
        expect(span.status.code).toBe(SpanStatusCode.UNSET);
      }
      const { messageCount } = await raw.checkQueue(tracedQueue);
      expect(messageCount).toBe(0);
    } finally {
      await connection.close();
    }
  });
  // A raw `get` on the same channel takes the next tag without hoptrace seeing it, so an allUpTo
  // settle naming it looks like another channel's message (a greater tag than any delivery seen). The
  // broker settles every delivery up to it; hoptrace knows once the channel shows a tag at least as
  // great (the broker numbers each channel's deliveries 1, 2, 3..., and a refused settle closes the
  // channel first).
  it('an allUpTo ack or drop naming a message got through the raw channel: the broker settles every delivery below it, as without hoptrace; their spans end with that outcome at the next delivery', async () => {
    const connection = await connect();
    try {
      const admin = await connection.createChannel();
      /** Three deliveries open, a raw get (tag 4), an allUpTo settle of it, then a fifth delivery. */
      async function run(
        traced: boolean,
        how: 'ack' | 'drop',
      ): Promise<{ events: string[]; queued: number }> {
        const raw = await connection.createChannel();
        const channel = traced ? traceChannel(raw) : raw;
        const events: string[] = [];
        channel.on('error', (e: Error) => events.push(`error ${e.message.slice(0, 80)}`));
        const queue = `amqpfix-q-${randomUUID()}`;
        const pulled = `amqpfix-pulled-${randomUUID()}`;
        await admin.assertQueue(queue);
        await admin.assertQueue(pulled, { exclusive: true });
        const got: ConsumeMessage[] = [];
        await channel.consume(queue, (m) => {
          if (m) got.push(m);
        });
        for (let i = 0; i < 3; i++)
          admin.sendToQueue(queue, Buffer.from(String(i)), { messageId: `${how}-${i}` });
        await until(() => got.length === 3, 'three deliveries');
        admin.sendToQueue(pulled, Buffer.from('pulled'));
        let message: GetMessage | false = false;
        while (!message) message = await raw.get(pulled); // not through hoptrace
        expect(message.fields.deliveryTag).toBe(4);
        if (how === 'ack') channel.ack(message, true);
        else channel.nack(message, true, false);
        admin.sendToQueue(queue, Buffer.from('3'), { messageId: `${how}-3` });
        await until(() => got.length === 4, 'the fifth delivery');
        channel.ack(got[3] as ConsumeMessage);
        await sleep(100);
        await raw.close(); // anything not settled would be requeued now
        const { messageCount } = await admin.checkQueue(queue);
        await admin.deleteQueue(queue);
        return { events, queued: messageCount };
      }
      for (const how of ['ack', 'drop'] as const) {
        const withoutHoptrace = await run(false, how);
        expect(withoutHoptrace).toEqual({ events: [], queued: 0 });
        expect(await run(true, how)).toEqual(withoutHoptrace);
        const ours = (s: readonly ReadableSpan[]) =>
          s.filter((p) => String(p.attributes['messaging.message.id']).startsWith(`${how}-`));
        const process = ours(await waitForSpans(spans, (s) => ours(s).length === 4));
        for (const span of process.filter((p) => p.attributes['messaging.message.id'] !== `${how}-3`)) {
          expect(span.attributes['hoptrace.rabbitmq.settlement']).toBe(how === 'ack' ? 'ack' : 'nack');
          expect(span.attributes['error.type']).toBe(how === 'ack' ? undefined : 'rejected');
        }
        tracing.current.reset();
      }
    } finally {
      await connection.close();
    }
  });
  // recover() after such a settle: the broker handles the settle first, so the deliveries up to its
  // tag were settled (the channel would have closed on a refused one) and are not redelivered; their
  // spans must not end as recovered.
  it('recover() after an allUpTo ack naming a raw get: the deliveries below it are acked, not recovered, as without hoptrace', async () => {
    const connection = await connect();
    try {
      const admin = await connection.createChannel();
      async function run(traced: boolean): Promise<{ events: string[]; delivered: number; queued: number }> {
        const raw = await connection.createChannel();
        const channel = traced ? traceChannel(raw) : raw;
        const events: string[] = [];
        channel.on('error', (e: Error) => events.push(`error ${e.message.slice(0, 80)}`));
        const queue = `amqpfix-todayrev-recover-${randomUUID()}`;
        const pulled = `amqpfix-todayrev-pulled-${randomUUID()}`;
        await admin.assertQueue(queue);
        await admin.assertQueue(pulled, { exclusive: true });
        const got: ConsumeMessage[] = [];
        await channel.consume(queue, (m) => {
          if (m) got.push(m);
        });
        for (let i = 0; i < 2; i++)
          admin.sendToQueue(queue, Buffer.from(String(i)), { messageId: `rec-${i}` });
        await until(() => got.length === 2, 'two deliveries');
        admin.sendToQueue(pulled, Buffer.from('pulled'));
        let message: GetMessage | false = false;
        while (!message) message = await raw.get(pulled); // not through hoptrace
        expect(message.fields.deliveryTag).toBe(3);
        channel.ack(message, true);
        await channel.recover(); // nothing left unacked: nothing redelivered
        admin.sendToQueue(queue, Buffer.from('2'), { messageId: 'rec-2' });
        await until(() => got.length >= 3, 'the third delivery');
        channel.ack(got[2] as ConsumeMessage);
        await sleep(100);
        const delivered = got.length;
        await raw.close();
        const { messageCount } = await admin.checkQueue(queue);
        await admin.deleteQueue(queue);
        return { events, delivered, queued: messageCount };
      }
      const withoutHoptrace = await run(false);
      expect(withoutHoptrace).toEqual({ events: [], delivered: 3, queued: 0 });
      expect(await run(true)).toEqual(withoutHoptrace);
      const ours = (s: readonly ReadableSpan[]) =>
        s.filter((p) => String(p.attributes['messaging.message.id']).startsWith('rec-'));
      const process = ours(await waitForSpans(spans, (s) => ours(s).length === 3));
      for (const span of process) {
        expect(span.attributes['hoptrace.rabbitmq.settlement']).toBe('ack');
        expect(span.attributes['error.type']).toBeUndefined();
      }
    } finally {
      await connection.close();
    }
  });
  it('a promise get answered in the same read as a later delivery: an allUpTo ack of that delivery settles it', async () => {
    const connection = await connect();
    const other = await connect();
    try {
      const raw = await connection.createChannel();
      const channel = traceChannel(raw);
      const consumed = `q-${randomUUID()}`;
      const pulled = `q-${randomUUID()}`;
      await raw.assertQueue(consumed, { autoDelete: true });
      await raw.assertQueue(pulled, { autoDelete: true });
      const publisher = await other.createChannel();
      publisher.sendToQueue(pulled, Buffer.from('pulled'));
      // The get below must find it: wait until RabbitMQ counts it (another connection published it).
      while ((await raw.checkQueue(pulled)).messageCount < 1) await sleep(20);
      const traced: ConsumeMessage[] = [];
      await channel.consume(consumed, (m) => {
        if (m) traced.push(m);
      });
      // amqplib stops reading this connection (our own socket) until both answers are in, then reads
      // the get-ok (tag 1) and the delivery (tag 2) in one go: the get's promise settles after both.
      const stream = (connection as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection
        .stream;
      const readers = stream.listeners('readable') as ((...args: unknown[]) => void)[];
      stream.removeAllListeners('readable');
      const got = channel.get(pulled) as Promise<GetMessage | false>;
      await sleep(150);
      publisher.sendToQueue(consumed, Buffer.from('pushed'));
      await sleep(150);
      for (const reader of readers) stream.on('readable', reader);
      const message = await got;
      expect((message as GetMessage).fields.deliveryTag).toBe(1);
      await until(() => traced.length === 1, 'the delivery');
      expect(traced[0]?.fields.deliveryTag).toBe(2);
      channel.ack(traced[0] as ConsumeMessage, true); // RabbitMQ settles tags 1 and 2
      await sleep(200);
      expect((await raw.checkQueue(consumed)).messageCount).toBe(0);
      const done = await waitForSpans(spans, (s) => s.some((p) => p.name.startsWith('process ')), 3000);
      const process = done.filter((s) => s.name.startsWith('process '));
      expect(process).toHaveLength(1);
      expect(process[0]?.attributes['hoptrace.rabbitmq.settlement']).toBe('ack');
      expect(process[0]?.status.code).toBe(SpanStatusCode.UNSET);
    } finally {
      await connection.close();
      await other.close();
    }
  });
});

// RabbitMQ refuses a publish whose user-id property is not the publishing connection's user (406,
// channel closed). Its own dead-lettering keeps user-id (no publish happens); a copy an application
// republishes is published by the consumer's user, so the property cannot come along.
describe('deadLetterOptions when the consumer authenticates as another user than the publisher', () => {
  it('the copy of a message published with userId is accepted: the channel stays open, the copy arrives, the original is acked', async () => {
    const user = `hoptrace-dl-${randomUUID()}`;
    execFileSync('rabbitmqctl', ['add_user', user, 'secret']);
    const producer = await connect();
    let consumerConnection: ChannelModel | undefined;
    try {
      execFileSync('rabbitmqctl', ['set_permissions', '-p', '/', user, '.*', '.*', '.*']);
      const url = new URL(brokerEndpoint('rabbitmq').url);
      url.username = user;
      url.password = 'secret';
      consumerConnection = await amqplib.connect(url.toString());
      const channel = traceChannel(await consumerConnection.createChannel());
      const errors: string[] = [];
      const closed = deferred<undefined>();
      channel.on('error', (error: Error) => errors.push(error.message));
      channel.on('close', () => closed.resolve(undefined));
      const queue = `q-${randomUUID()}`;
      const dlq = `dlq-${randomUUID()}`;
      await channel.assertQueue(queue, { autoDelete: true });
      await channel.assertQueue(dlq, { exclusive: true });
      const parked = deferred<ConsumeMessage>();
      await channel.consume(dlq, (m) => {
        if (!m) return;
        channel.ack(m);
        parked.resolve(m);
      });
      await channel.consume(queue, (m) => {
        if (!m) return;
        channel.sendToQueue(dlq, m.content, deadLetterOptions(m, new Error('out of stock'), { queue }));
        channel.ack(m);
      });
      const publisher = traceChannel(await producer.createChannel());
      publisher.sendToQueue(queue, Buffer.from('order 9'), { userId: 'guest', messageId: 'order-9' });
      const copy = await Promise.race([parked.promise, closed.promise]);
      expect(errors).toEqual([]);
      expect(copy?.properties.messageId).toBe('order-9');
      expect(copy?.properties.userId).toBeUndefined();
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${dlq}`).length === 1);
      const failed = onlySpan(done, `process ${queue}`);
      expect(failed.attributes['hoptrace.rabbitmq.settlement']).toBe('ack');
      expect(failed.attributes['error.type']).toBe('Error');
      const dead = onlySpan(done, `process ${dlq}`);
      expect(parentSpanId(dead)).toBe(onlySpan(done, `send ${queue}`).spanContext().spanId);
      expect(dead.links.map((l) => l.context.spanId)).toEqual([failed.spanContext().spanId]);
      await publisher.close();
    } finally {
      await consumerConnection?.close().catch(() => undefined);
      await producer.close().catch(() => undefined);
      execFileSync('rabbitmqctl', ['delete_user', user]);
    }
  });
});

// amqplib 2.x calls a confirm callback still waiting when its channel closes with `channel closed`
// from the channel's own `close` listener, before the connection marks itself closed: the send span
// must still tell a lost connection from a closed channel, as a callback-less send does.
describe('a confirm send with a callback pending when the connection goes (amqplib 2.x)', () => {
  type Loss = 'socket error' | 'client close';
  async function run(traced: boolean, loss: Loss): Promise<string[]> {
    const connection = await connect();
    connection.on('error', () => undefined);
    const raw = await connection.createConfirmChannel();
    const confirm = traced ? traceChannel(raw) : raw;
    confirm.on('error', () => undefined);
    const closed = deferred();
    confirm.on('close', () => closed.resolve());
    const queue = `amqpf-${randomUUID()}`;
    await confirm.assertQueue(queue, { exclusive: true });
    const calls: string[] = [];
    confirm.sendToQueue(queue, Buffer.from('a'), { messageId: 'with-cb' }, (err) =>
      calls.push(`a ${err?.message}`),
    );
    confirm.sendToQueue(queue, Buffer.from('b'), { messageId: 'no-cb' });
    if (loss === 'socket error')
      (
        connection as unknown as { connection: { stream: { destroy(e: Error): void } } }
      ).connection.stream.destroy(new Error('lost'));
    else void connection.close().catch(() => undefined);
    await closed.promise;
    await sleep(20);
    calls.push('closed');
    return calls;
  }

  for (const loss of ['socket error', 'client close'] as const) {
    it(`${loss}: the callback gets what it gets without hoptrace; both send spans end connection_closed`, async () => {
      const withoutHoptrace = await run(false, loss);
      expect(withoutHoptrace).toEqual(['a channel closed', 'closed']);
      tracing.current.reset();
      expect(await run(true, loss)).toEqual(withoutHoptrace);
      const sent = (
        await waitForSpans(spans, (s) => s.filter((x) => x.name.startsWith('send ')).length === 2)
      ).filter((s) => s.name.startsWith('send '));
      expect(sent.map((s) => s.attributes['messaging.message.id']).sort()).toEqual(['no-cb', 'with-cb']);
      for (const span of sent) {
        expect(span.status.code, String(span.attributes['messaging.message.id'])).toBe(SpanStatusCode.ERROR);
        expect(span.attributes['error.type'], String(span.attributes['messaging.message.id'])).toBe(
          'connection_closed',
        );
      }
    });
  }

  it('a channel the broker closes (404 on a publish): the pending confirm sends end channel_closed', async () => {
    const connection = await connect();
    try {
      const confirm = traceChannel(await connection.createConfirmChannel());
      confirm.on('error', () => undefined);
      const closed = deferred();
      confirm.on('close', () => closed.resolve());
      const queue = `amqpf-${randomUUID()}`;
      await confirm.assertQueue(queue, { exclusive: true });
      const calls: string[] = [];
      confirm.publish(
        `amqpf-missing-${randomUUID()}`,
        'k',
        Buffer.from('x'),
        { messageId: 'missing' },
        (err) => calls.push(`missing ${err?.message}`),
      );
      confirm.sendToQueue(queue, Buffer.from('x'), { messageId: 'after' }, (err) =>
        calls.push(`after ${err?.message}`),
      );
      await closed.promise;
      expect(calls).toEqual(['missing channel closed', 'after channel closed']);
      const sent = (
        await waitForSpans(spans, (s) => s.filter((x) => x.name.startsWith('send ')).length === 2)
      ).filter((s) => s.name.startsWith('send '));
      for (const span of sent) {
        expect(span.status.code).toBe(SpanStatusCode.ERROR);
        expect(span.attributes['error.type']).toBe('channel_closed');
      }
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
});

// amqplib answers a get still waiting when its channel closes with its own "Channel ended, no reply
// will be forthcoming" error (the promise API rejects with it; 2.x's callback API calls back with it).
describe('a get still waiting when its channel closes: receive ends channel_closed / connection_closed', () => {
  type Close = 'socket error' | 'client close' | 'broker closes the channel';
  const ended = 'Channel ended, no reply will be forthcoming';

  function close(connection: ChannelModel, how: Close): void {
    if (how === 'socket error')
      (
        connection as unknown as { connection: { stream: { destroy(e: Error): void } } }
      ).connection.stream.destroy(new Error('lost'));
    else if (how === 'client close') void connection.close().catch(() => undefined);
  }

  for (const [how, type] of [
    ['socket error', 'connection_closed'],
    ['client close', 'connection_closed'],
    ['broker closes the channel', 'channel_closed'],
  ] as const) {
    it(`promise API, ${how}: the rejection as without hoptrace; the span ends ${type}`, async () => {
      async function run(traced: boolean): Promise<string[]> {
        const connection = await connect();
        connection.on('error', () => undefined);
        try {
          const raw = await connection.createChannel();
          const channel = traced ? traceChannel(raw) : raw;
          channel.on('error', () => undefined);
          const closed = deferred();
          channel.on('close', () => closed.resolve());
          const queue = `amqpf-${randomUUID()}`;
          await channel.assertQueue(queue, { exclusive: true });
          const outcomes: string[] = [];
          // A 404 closes the channel before the broker reads the get.
          if (how === 'broker closes the channel')
            channel.checkExchange(`amqpf-missing-${randomUUID()}`).catch(() => outcomes.push('check failed'));
          // On a client close, as get(queue, options, fn): the promise API ignores fn and answers by its promise.
          const get = (
            how === 'client close'
              ? (channel.get as unknown as (...a: unknown[]) => Promise<GetMessage | false>).call(
                  channel,
                  queue,
                  {},
                  () => outcomes.push('fn called'),
                )
              : channel.get(queue)
          ) as Promise<GetMessage | false>;
          const got = get.then(
            (m) => outcomes.push(`get ${String(m)}`),
            (e: Error) => outcomes.push(`get rejected ${e.message}`),
          );
          close(connection, how);
          await closed.promise;
          await got;
          // The order of two promises' handlers is not amqplib's to keep (a traced call takes a tick more).
          return outcomes.sort();
        } finally {
          await connection.close().catch(() => undefined);
        }
      }
      const withoutHoptrace = await run(false);
      expect(withoutHoptrace).toContain(`get rejected ${ended}`);
      tracing.current.reset();
      expect(await run(true)).toEqual(withoutHoptrace);
      const receive = (await waitForSpans(spans, (s) => s.some((x) => x.name.startsWith('receive ')))).filter(
        (s) => s.name.startsWith('receive '),
      );
      expect(receive).toHaveLength(1);
      expect(receive[0]?.status.code).toBe(SpanStatusCode.ERROR);
      expect(receive[0]?.attributes['error.type']).toBe(type);
    });
  }

  it('callback API (amqplib 2.x), client close: the callback gets what it gets without hoptrace; the span ends connection_closed', async () => {
    async function run(traced: boolean): Promise<string[]> {
      const connection = await callbackConnect();
      connection.on('error', () => undefined);
      const raw = await callbackChannel(connection);
      const channel = traced ? traceChannel(raw) : raw;
      channel.on('error', () => undefined);
      const closed = deferred();
      channel.on('close', () => closed.resolve());
      const queue = `amqpf-${randomUUID()}`;
      await new Promise((resolve, reject) =>
        channel.assertQueue(queue, { exclusive: true }, (err, ok) => (err ? reject(err) : resolve(ok))),
      );
      const calls: string[] = [];
      channel.get(queue, {}, (err, m) => calls.push(err ? `get ${err.message}` : `get ${String(m)}`));
      connection.close();
      await closed.promise;
      await sleep(20);
      calls.push('closed');
      return calls;
    }
    const withoutHoptrace = await run(false);
    expect(withoutHoptrace).toEqual([`get ${ended}`, 'closed']);
    tracing.current.reset();
    expect(await run(true)).toEqual(withoutHoptrace);
    const receive = (await waitForSpans(spans, (s) => s.some((x) => x.name.startsWith('receive ')))).filter(
      (s) => s.name.startsWith('receive '),
    );
    expect(receive).toHaveLength(1);
    expect(receive[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(receive[0]?.attributes['error.type']).toBe('connection_closed');
  });
});
