import { randomUUID } from 'node:crypto';
import { type AmqpTracingOptions, traceChannel, traceConnection } from '@hoptrace/amqp';
import { METRIC_HOPTRACE_TIME_IN_QUEUE } from '@hoptrace/core';
import {
  deferred,
  onlySpan,
  parentSpanId,
  sleep,
  spansNamed,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import callbackApi from 'amqplib/callback_api';
import callbackApiV0 from 'amqplib-v0/callback_api';
import { describe, expect, it } from 'vitest';
import {
  brokerPort,
  callbackChannel,
  callbackConnect,
  connect,
  deliverySpans,
  settlementsOf,
  testMeters,
  useConnection,
} from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

const amqp = useConnection();

/**
 * The sent-messages metric of `total` sends to as many destinations stays within the cap (256 named
 * series plus the unnamed overflow series), and the overflow series counts every send past it.
 */
async function expectSentCapped(meters: ReturnType<typeof testMeters>, total: number): Promise<void> {
  const sent = (await meters.collect()).get('messaging.client.sent.messages')?.points ?? [];
  expect(sent.length).toBeLessThanOrEqual(257);
  const overflow = sent.find((p) => p.attributes['messaging.destination.name'] === undefined);
  expect(overflow?.value).toBe(total - (sent.length - 1));
}

const byId = (list: readonly ReadableSpan[], id: string) =>
  list.find((s) => s.attributes['messaging.message.id'] === id) as ReadableSpan;

describe('low cardinality: server-named queues and direct reply-to (12.5)', () => {
  it('two requesters on direct reply-to and two amq.gen-* queues: one span name and one metric series each', async () => {
    const meters = testMeters();
    const options = { meterProvider: meters.meterProvider };
    const server = traceConnection(amqp.connection, options);
    const serverChannel = await server.createChannel();
    const requests = `rpc-${randomUUID()}`;
    await serverChannel.assertQueue(requests, { exclusive: true });
    await serverChannel.consume(requests, (m) => {
      if (!m) return;
      serverChannel.sendToQueue(String(m.properties.replyTo), Buffer.from('pong'), {
        correlationId: m.properties.correlationId,
      });
      serverChannel.ack(m);
    });
    const requesters: ChannelModel[] = [];
    try {
      const replies: string[] = [];
      for (const id of ['r1', 'r2']) {
        const requester = await connect();
        requesters.push(requester);
        const channel = traceChannel(await requester.createChannel(), options);
        const got = deferred();
        await channel.consume(
          'amq.rabbitmq.reply-to',
          (m) => {
            if (!m) return;
            replies.push(String(m.fields.routingKey));
            got.resolve();
          },
          { noAck: true },
        );
        channel.sendToQueue(requests, Buffer.from('ping'), {
          replyTo: 'amq.rabbitmq.reply-to',
          correlationId: id,
        });
        await got.promise;
      }
      // Two server-named queues bound to one fanout exchange.
      const fanout = `fan-${randomUUID()}`;
      const listener = traceChannel(await amqp.connection.createChannel(), options);
      await listener.assertExchange(fanout, 'fanout', { autoDelete: true });
      const named: string[] = [];
      for (let i = 0; i < 2; i++) {
        const { queue } = await listener.assertQueue('', { exclusive: true });
        named.push(queue);
        await listener.bindQueue(queue, fanout, '');
        await listener.consume(queue, (m) => m && listener.ack(m));
      }
      listener.publish(fanout, '', Buffer.from('hello'));
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${fanout}`).length === 2);
      expect(new Set(replies).size).toBe(2); // two distinct reply addresses...
      const replySends = spansNamed(done, 'send amq.rabbitmq.reply-to');
      const replyProcesses = spansNamed(done, 'process amq.rabbitmq.reply-to');
      expect(replySends).toHaveLength(2); // ...one span name
      expect(replyProcesses).toHaveLength(2);
      expect(replySends.map((s) => s.attributes['messaging.destination.name']).sort()).toEqual(
        replies.sort(),
      );
      for (const s of [...replySends, ...replyProcesses]) {
        expect(s.attributes['messaging.destination.anonymous']).toBe(true);
      }
      const genProcesses = spansNamed(done, `process ${fanout}`);
      expect(genProcesses.map((s) => s.attributes['messaging.destination.name']).sort()).toEqual(
        named.map((q) => `${fanout}:${q}`).sort(),
      );
      expect(done.filter((s) => s.name.includes('amq.gen-') || s.name.includes('reply-to.'))).toEqual([]);

      const metrics = await meters.collect();
      const sent = metrics.get('messaging.client.sent.messages')?.points ?? [];
      // Direct reply-to is a template (messaging.destination.template), with no name on the metrics.
      const replyTo = (p: { attributes: Record<string, unknown> }) =>
        p.attributes['messaging.destination.template'] === 'amq.rabbitmq.reply-to';
      expect(sent.filter(replyTo)).toHaveLength(1);
      expect(sent.find(replyTo)?.value).toBe(2);
      expect(sent.find(replyTo)?.attributes['messaging.destination.name']).toBeUndefined();
      const processed = metrics.get('messaging.process.duration')?.points ?? [];
      expect(processed.filter(replyTo)).toHaveLength(1);
      expect(processed.find(replyTo)?.attributes['messaging.destination.name']).toBeUndefined();
      const processDestinations = processed.map((p) => String(p.attributes['messaging.destination.name']));
      expect(processDestinations.filter((d) => d === fanout)).toHaveLength(1);
      expect(processDestinations.some((d) => d.includes('amq.gen-') || d.includes('reply-to.'))).toBe(false);
    } finally {
      for (const r of requesters) await r.close();
      await meters.meterProvider.shutdown();
    }
  });

  it('caches keyed by traffic names are capped (12.9): 300 destinations, at most 256 metric series', async () => {
    const meters = testMeters();
    try {
      const channel = traceChannel(await amqp.connection.createConfirmChannel(), {
        meterProvider: meters.meterProvider,
      });
      const prefix = `nowhere-${randomUUID()}`;
      for (let i = 0; i < 300; i++) channel.sendToQueue(`${prefix}-${i}`, Buffer.from('x'));
      await channel.waitForConfirms();
      await expectSentCapped(meters, 300);
      expect(spans().filter((s) => s.name.startsWith(`send ${prefix}`))).toHaveLength(300);
    } finally {
      await meters.meterProvider.shutdown();
    }
  });

  it('the cap holds across the channels of one traced connection: channels opened one after another never add series past it', async () => {
    const meters = testMeters();
    try {
      const connection = traceConnection(amqp.connection, { meterProvider: meters.meterProvider });
      const prefix = `nowhere-${randomUUID()}`;
      // A channel per batch of work, as applications that reopen channels (after a channel error,
      // or per task) do: 4 channels, 100 new destinations each.
      for (let c = 0; c < 4; c++) {
        const channel = await connection.createConfirmChannel();
        for (let i = 0; i < 100; i++) channel.sendToQueue(`${prefix}-${c}-${i}`, Buffer.from('x'));
        await channel.waitForConfirms();
        await channel.close();
      }
      await expectSentCapped(meters, 400);
    } finally {
      await meters.meterProvider.shutdown();
    }
  });

  it('the cap holds across wrappers on one MeterProvider: a connection traced again after a reconnect, and channels traced one by one, never add series past it', async () => {
    const meters = testMeters();
    const options = { meterProvider: meters.meterProvider };
    const second = await connect();
    try {
      const prefix = `nowhere-${randomUUID()}`;
      // An application that reconnects traces each new connection: 2 connections, 100 destinations each.
      for (const [c, raw] of [amqp.connection, second].entries()) {
        const channel = await traceConnection(raw, options).createConfirmChannel();
        for (let i = 0; i < 100; i++) channel.sendToQueue(`${prefix}-c${c}-${i}`, Buffer.from('x'));
        await channel.waitForConfirms();
        await channel.close();
      }
      // And one that traces each channel it opens: 2 channels, 100 destinations each.
      for (let c = 0; c < 2; c++) {
        const channel = traceChannel(await amqp.connection.createConfirmChannel(), options);
        for (let i = 0; i < 100; i++) channel.sendToQueue(`${prefix}-ch${c}-${i}`, Buffer.from('x'));
        await channel.waitForConfirms();
        await channel.close();
      }
      await expectSentCapped(meters, 400);
    } finally {
      await second.close().catch(() => undefined);
      await meters.meterProvider.shutdown();
    }
  });
});

describe('the graph is what the relation asks for, even when channels are made inside a span (12.10)', () => {
  for (const relation of ['parent', 'link', 'root'] as const) {
    it(`relation ${relation}: connection, channel and consumer created inside app.startup never parent the process span`, async () => {
      const queue = `q-${randomUUID()}`;
      const producer = traceChannel(await amqp.connection.createChannel());
      await producer.assertQueue(queue, { autoDelete: true });
      const tracer = trace.getTracer('app');
      const startup = tracer.startSpan('app.startup');
      let consumerConnection: ChannelModel | undefined;
      try {
        await context.with(trace.setSpan(context.active(), startup), async () => {
          consumerConnection = traceConnection(await connect(), { relation });
          const channel = await consumerConnection.createChannel();
          await channel.consume(queue, (m) => m && channel.ack(m));
        });
        startup.end();
        producer.sendToQueue(queue, Buffer.from('x'));
        const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
        const send = onlySpan(done, `send ${queue}`);
        const process = onlySpan(done, `process ${queue}`);
        expect(process.spanContext().traceId).not.toBe(startup.spanContext().traceId);
        if (relation === 'parent') {
          expect(parentSpanId(process)).toBe(send.spanContext().spanId);
          expect(process.links).toHaveLength(0);
        } else {
          expect(parentSpanId(process)).toBeUndefined();
          expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
          expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
        }
      } finally {
        await consumerConnection?.close();
      }
    });
  }
});

describe('hop budget across a relay that forwards the consumed headers (12.11)', () => {
  it('six hops with maxHops 3: hops 1-3 in the original trace, then one new trace linked to it', async () => {
    const queues = Array.from({ length: 6 }, (_, i) => `hop${i + 1}-${randomUUID()}`);
    const options: AmqpTracingOptions = { traceBudget: { maxHops: 3 } };
    const channel = traceChannel(await amqp.connection.createChannel(), options);
    for (const q of queues) await channel.assertQueue(q, { exclusive: true });
    const last = deferred();
    for (const [i, q] of queues.entries()) {
      await channel.consume(q, (m) => {
        if (!m) return;
        const next = queues[i + 1];
        // The relay pattern: forward the consumed message with its own headers.
        if (next)
          channel.sendToQueue(next, m.content, { headers: m.properties.headers, messageId: `hop${i + 2}` });
        else last.resolve();
        channel.ack(m);
      });
    }
    const app = trace.getTracer('app').startSpan('request');
    context.with(trace.setSpan(context.active(), app), () =>
      channel.sendToQueue(queues[0] as string, Buffer.from('relay'), { messageId: 'hop1' }),
    );
    app.end();
    await last.promise;
    const done = await waitForSpans(
      spans,
      (s) => s.filter((x) => x.name.startsWith('process hop')).length === 6,
    );
    const processes = queues.map((q) => onlySpan(done, `process ${q}`));
    const hops = processes.map((p) => p.attributes['hoptrace.hop']);
    const original = app.spanContext().traceId;
    const firstSend = onlySpan(done, `send ${queues[0]}`);
    expect(hops.slice(0, 3)).toEqual([1, 2, 3]);
    for (const p of processes.slice(0, 3)) expect(p.spanContext().traceId).toBe(original);
    // Hop 4 would exceed the budget: a new trace, linked to where the message came from.
    const fourth = processes[3] as ReadableSpan;
    expect(fourth.attributes['hoptrace.trace_budget.exceeded']).toBe(true);
    expect(fourth.spanContext().traceId).not.toBe(original);
    expect(parentSpanId(fourth)).toBeUndefined();
    expect(fourth.links[0]?.context.traceId).toBe(original);
    // Within the budget the forwarded headers keep the first send's context (a context in the caller's
    // headers is kept; only its hop counter is brought up to date), so every hop in budget is its child.
    for (const p of processes.slice(0, 3)) expect(parentSpanId(p)).toBe(firstSend.spanContext().spanId);
    expect(fourth.links.map((l) => l.context.spanId)).toEqual([firstSend.spanContext().spanId]);
    // Past the budget, the relay of the old headers sends the new trace: hops 5 and 6 continue it,
    // counting from 1, with no further restart.
    const restarted = processes.slice(3);
    expect(new Set(restarted.map((p) => p.spanContext().traceId))).toEqual(
      new Set([fourth.spanContext().traceId]),
    );
    expect(hops.slice(3)).toEqual([0, 1, 2]);
    for (const p of restarted.slice(1)) {
      expect(p.attributes['hoptrace.trace_budget.exceeded']).toBeUndefined();
      expect(p.links).toEqual([]);
    }
    // Every relay send runs inside its process span.
    for (const [i, q] of queues.slice(1).entries()) {
      const send = onlySpan(done, `send ${q}`);
      expect(parentSpanId(send)).toBe(processes[i]?.spanContext().spanId);
    }
    expect(firstSend.spanContext().traceId).toBe(original);
  });
});

describe('recover and settle timing (12.13)', () => {
  it('recover(): open delivery spans end as recovered, the redeliveries get spans of their own', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const held: ConsumeMessage[] = [];
    const redelivered: ConsumeMessage[] = [];
    await channel.consume(queue, (m) => {
      if (!m) return;
      if (m.fields.redelivered) {
        redelivered.push(m);
        channel.ack(m);
      } else held.push(m);
    });
    for (const id of ['a', 'b', 'c']) channel.sendToQueue(queue, Buffer.from(id), { messageId: id });
    await until(() => held.length === 3, 'three deliveries');
    await channel.recover();
    const recovered = spansNamed(spans(), `process ${queue}`).filter(
      (s) => s.attributes['hoptrace.rabbitmq.settlement'] === 'recovered',
    );
    expect(recovered).toHaveLength(3);
    expect(recovered.every((s) => s.attributes['hoptrace.rabbitmq.redelivered'] === undefined)).toBe(true);
    for (const s of recovered) expect(s.status.code).toBe(SpanStatusCode.UNSET);
    await until(() => redelivered.length === 3, 'three redeliveries');
    const done = spansNamed(spans(), `process ${queue}`);
    expect(done).toHaveLength(6);
    const sends = spansNamed(spans(), `send ${queue}`);
    expect(sends).toHaveLength(3);
    for (const id of ['a', 'b', 'c']) {
      const pair = done.filter((s) => s.attributes['messaging.message.id'] === id);
      expect(pair).toHaveLength(2);
      const again = pair.find((s) => s.attributes['hoptrace.rabbitmq.redelivered'] === true) as ReadableSpan;
      const first = byId(recovered, id);
      expect(again.attributes['hoptrace.rabbitmq.settlement']).toBe('ack');
      expect(again.spanContext().spanId).not.toBe(first.spanContext().spanId);
      // Both deliveries are children of that message's send span, in its trace.
      const send = byId(sends, id);
      for (const delivery of [first, again]) {
        expect(parentSpanId(delivery)).toBe(send.spanContext().spanId);
        expect(delivery.spanContext().traceId).toBe(send.spanContext().traceId);
      }
    }
  });

  // A recover the broker never answers (the channel closes first) redelivers nothing: the open
  // deliveries end with the close, as without the recover.
  for (const how of ['channel closing', 'channel closed by an earlier request (404)'] as const) {
    it(`recover() the channel closes before answering (${how}): the rejection as without hoptrace; open deliveries end channel_closed, not recovered`, async () => {
      async function run(traced: boolean): Promise<{ outcome: string; queue: string }> {
        const raw = await amqp.connection.createChannel();
        const channel = traced ? traceChannel(raw) : raw;
        channel.on('error', () => undefined);
        const closed = deferred();
        channel.on('close', () => closed.resolve());
        const queue = `amqpedge-recover-${randomUUID()}`;
        await channel.assertQueue(queue, { exclusive: true });
        const held: ConsumeMessage[] = [];
        await channel.consume(queue, (m) => {
          if (m) held.push(m);
        });
        for (const id of ['a', 'b']) channel.sendToQueue(queue, Buffer.from(id), { messageId: id });
        await until(() => held.length === 2, 'two deliveries');
        if (how === 'channel closing') void channel.close().catch(() => undefined);
        // Waiting for its answer, the 404 closes the channel: the recover behind it is never sent.
        else void channel.checkQueue(`amqpedge-missing-${randomUUID()}`).catch(() => undefined);
        const outcome = await channel.recover().then(
          () => 'recovered',
          (e: Error) => `rejected ${e.message}`,
        );
        await closed.promise;
        return { outcome, queue };
      }
      const withoutHoptrace = await run(false);
      expect(withoutHoptrace.outcome).toMatch(/^rejected /);
      const { outcome, queue } = await run(true);
      expect(outcome).toBe(withoutHoptrace.outcome);
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
      for (const span of spansNamed(done, `process ${queue}`)) {
        expect(span.attributes['hoptrace.rabbitmq.settlement']).toBeUndefined();
        expect(span.status.code).toBe(SpanStatusCode.ERROR);
        expect(span.attributes['error.type']).toBe('channel_closed');
      }
    });
  }

  it('callback API recover(cb): answered, the open deliveries end recovered; answered by the close (404 of the request before it), they end channel_closed; the callback as without hoptrace', async () => {
    const connection = await callbackConnect();
    try {
      async function run(traced: boolean, failing: boolean): Promise<{ outcome: string; queue: string }> {
        const raw = await callbackChannel(connection);
        const channel = traced ? traceChannel(raw) : raw;
        channel.on('error', () => undefined);
        const queue = `amqpedge-recover-cb-${randomUUID()}`;
        await new Promise((resolve, reject) =>
          channel.assertQueue(queue, { exclusive: true }, (err, ok) => (err ? reject(err) : resolve(ok))),
        );
        const held: ConsumeMessage[] = [];
        channel.consume(queue, (m) => {
          if (m && !m.fields.redelivered) held.push(m);
        });
        for (const id of ['a', 'b']) channel.sendToQueue(queue, Buffer.from(id), { messageId: id });
        await until(() => held.length === 2, 'two deliveries');
        if (failing) channel.checkQueue(`amqpedge-missing-${randomUUID()}`, () => undefined);
        const outcome = await new Promise<string>((resolve) =>
          channel.recover((err) => resolve(err ? `error ${err.message}` : 'recovered')),
        );
        if (!failing) await new Promise<void>((resolve) => channel.close(() => resolve()));
        return { outcome, queue };
      }
      for (const failing of [false, true]) {
        const withoutHoptrace = await run(false, failing);
        const { outcome, queue } = await run(true, failing);
        expect(outcome).toBe(withoutHoptrace.outcome);
        const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length >= 2);
        const first = spansNamed(done, `process ${queue}`).filter(
          (s) => s.attributes['hoptrace.rabbitmq.redelivered'] === undefined,
        );
        expect(first).toHaveLength(2);
        for (const span of first) {
          if (failing) {
            expect(outcome).toMatch(/^error /);
            expect(span.attributes['hoptrace.rabbitmq.settlement']).toBeUndefined();
            expect(span.attributes['error.type']).toBe('channel_closed');
          } else {
            expect(outcome).toBe('recovered');
            expect(span.attributes['hoptrace.rabbitmq.settlement']).toBe('recovered');
            expect(span.status.code).toBe(SpanStatusCode.UNSET);
          }
        }
      }
    } finally {
      await new Promise<void>((resolve) => connection.close(() => resolve()));
    }
  });

  const depthOf = (channel: callbackApi.Channel, queue: string) =>
    new Promise<number>((resolve, reject) =>
      channel.checkQueue(queue, (err, ok) => (err ? reject(err) : resolve(ok.messageCount))),
    );

  // Deliveries the broker sent before it read the recover reach the client after the call and before
  // its answer (RabbitMQ answers before it redelivers): it requeued them too, so they end recovered
  // when the callback runs, as the deliveries open at the call do, not at the channel's close.
  for (const [major, withCallback] of [
    ['2.x', true],
    ['0.10', true],
    ['2.x', false],
    ['0.10', false],
  ] as const) {
    it(`callback API recover(${withCallback ? 'cb' : ''}), amqplib ${major}: deliveries in flight at the call end recovered with the answer; the application sees the same as without hoptrace`, async () => {
      const lib = major === '2.x' ? callbackApi : callbackApiV0;
      const connection = await callbackConnect(lib);
      try {
        async function run(traced: boolean): Promise<{ order: string[]; queue: string }> {
          const raw = await callbackChannel(connection);
          const channel = traced ? traceChannel(raw) : raw;
          const queue = `amqpdiff-inflight-${randomUUID()}`;
          await new Promise((resolve, reject) =>
            channel.assertQueue(queue, { exclusive: true }, (err, ok) => (err ? reject(err) : resolve(ok))),
          );
          for (const id of ['a', 'b', 'c']) channel.sendToQueue(queue, Buffer.from(id), { messageId: id });
          // All three queued before the consumer starts: the broker sends them at once.
          while ((await depthOf(channel, queue)) < 3) await sleep(20);
          const order: string[] = [];
          channel.consume(queue, (m) => {
            if (!m) return;
            order.push(`${m.fields.redelivered ? 'redelivered' : 'delivered'} ${m.properties.messageId}`);
            // Called on the first delivery: the broker sent the other two before reading it.
            if (m.fields.deliveryTag === 1) {
              if (withCallback) channel.recover((err) => order.push(`recover ${String(err)}`));
              else channel.recover();
            }
            if (m.fields.redelivered) channel.ack(m);
          });
          await until(
            () => order.filter((o) => o.startsWith('redelivered')).length === 3,
            'three redeliveries',
          );
          if (traced) {
            // Before the close: every first delivery ended with the broker's answer.
            expect(settlementsOf(spans(), queue, false)).toEqual(['recovered', 'recovered', 'recovered']);
            for (const span of deliverySpans(spans(), queue, false))
              expect(span.status.code).toBe(SpanStatusCode.UNSET);
          }
          await new Promise<void>((resolve) => channel.close(() => resolve()));
          return { order, queue };
        }
        const withoutHoptrace = await run(false);
        expect(withoutHoptrace.order).toEqual([
          'delivered a',
          'delivered b',
          'delivered c',
          ...(withCallback ? ['recover null'] : []),
          'redelivered a',
          'redelivered b',
          'redelivered c',
        ]);
        const { order, queue } = await run(true);
        expect(order).toEqual(withoutHoptrace.order);
        const done = spansNamed(spans(), `process ${queue}`);
        expect(done).toHaveLength(6);
        expect(settlementsOf(done, queue, true)).toEqual(['ack', 'ack', 'ack']);
      } finally {
        await new Promise<void>((resolve) => connection.close(() => resolve()));
      }
    });
  }

  it('settleSpans: the ack span and its duration metric enclose the real call (the process span ends inside it)', async () => {
    const meters = testMeters();
    try {
      const raw = await amqp.connection.createChannel();
      // amqplib's own ack, observed: which spans are open while it runs.
      const openDuringAck: string[][] = [];
      const realAck = raw.ack;
      raw.ack = function ack(this: Channel, ...args: Parameters<Channel['ack']>) {
        openDuringAck.push(tracing.current.openSpans().map((s) => s.name));
        return realAck.apply(this, args);
      };
      const channel = traceChannel(raw, { settleSpans: true, meterProvider: meters.meterProvider });
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const got = deferred<ConsumeMessage>();
      await channel.consume(queue, (m) => m && got.resolve(m));
      channel.sendToQueue(queue, Buffer.from('x'));
      channel.ack(await got.promise);
      const ack = onlySpan(spans(), `ack ${queue}`);
      const process = onlySpan(spans(), `process ${queue}`);
      // The ack span was open during amqplib's call (started before it), and ended after the process span.
      expect(openDuringAck).toEqual([[`process ${queue}`, `ack ${queue}`]]);
      expect(spans().indexOf(process)).toBeLessThan(spans().indexOf(ack));
      expect(ack.links.map((l) => l.context.spanId)).toEqual([process.spanContext().spanId]);
      const durations = (await meters.collect()).get('messaging.client.operation.duration')?.points ?? [];
      const settle = durations.find((p) => p.attributes['messaging.operation.name'] === 'ack');
      expect(settle?.value).toMatchObject({ count: 1 });
    } finally {
      await meters.meterProvider.shutdown();
    }
  });
});

describe('time in queue from the AMQP timestamp property (12.17)', () => {
  it('seconds (the AMQP unit) and milliseconds are both read; no timestamp, no record', async () => {
    const meters = testMeters();
    try {
      const channel: Channel = traceChannel(await amqp.connection.createChannel(), {
        meterProvider: meters.meterProvider,
      });
      const queue = `q-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.consume(queue, (m) => m && channel.ack(m));
      const now = Date.now();
      channel.sendToQueue(queue, Buffer.from('s'), { timestamp: Math.floor(now / 1000) - 60 });
      channel.sendToQueue(queue, Buffer.from('ms'), { timestamp: now - 60_000 });
      channel.sendToQueue(queue, Buffer.from('none'));
      await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 3);
      const metric = (await meters.collect()).get(METRIC_HOPTRACE_TIME_IN_QUEUE);
      expect(metric?.unit).toBe('s');
      expect(metric?.points).toHaveLength(1);
      expect(metric?.points[0]?.attributes).toEqual({
        'messaging.system.name': 'rabbitmq',
        'messaging.operation.name': 'process',
        'messaging.destination.name': queue,
        'server.address': expect.any(String),
        'server.port': brokerPort(),
      });
      const value = metric?.points[0]?.value as { count: number; min: number; max: number };
      expect(value.count).toBe(2);
      expect(value.min).toBeGreaterThanOrEqual(59);
      expect(value.max).toBeLessThan(3600);
    } finally {
      await meters.meterProvider.shutdown();
    }
  });
});

describe('time in queue: an implausible AMQP timestamp records nothing', () => {
  it('far future, 1 s after the epoch, a huge value: no record; a publisher a few seconds ahead records 0', async () => {
    const meters = testMeters();
    try {
      const channel: Channel = traceChannel(await amqp.connection.createChannel(), {
        meterProvider: meters.meterProvider,
      });
      const queue = `amqpfix-tiq-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.consume(queue, (m) => m && channel.ack(m));
      const now = Date.now();
      const stamps = {
        'future-s': Math.floor(now / 1000) + 86_400, // a day ahead, in seconds
        'future-ms': now + 86_400_000, // a day ahead, in milliseconds
        epoch: 1, // one second after the epoch: 56 years in the queue
        huge: 2 ** 52, // read as milliseconds: the year 142,000
        'old-ms': 1_000_000_000_000, // 2001 in milliseconds: decades in the queue
        skew: Math.floor(now / 1000) + 5, // a publisher clock 5 s ahead
        real: Math.floor(now / 1000) - 60, // a minute in the queue
      };
      for (const [id, timestamp] of Object.entries(stamps))
        channel.sendToQueue(queue, Buffer.from(id), { timestamp, messageId: id });
      await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 7);
      const value = (await meters.collect()).get(METRIC_HOPTRACE_TIME_IN_QUEUE)?.points[0]?.value as {
        count: number;
        min: number;
        max: number;
      };
      expect(value.count).toBe(2);
      expect(value.min).toBe(0);
      expect(value.max).toBeGreaterThanOrEqual(59);
      expect(value.max).toBeLessThan(120);
    } finally {
      await meters.meterProvider.shutdown();
    }
  });
});

describe('time in queue: a redelivery is not the start of processing', () => {
  it('a message nacked with requeue and redelivered records its time in queue once, as BullMQ records a job’s first start only', async () => {
    const meters = testMeters();
    try {
      const channel: Channel = traceChannel(await amqp.connection.createChannel(), {
        meterProvider: meters.meterProvider,
      });
      const queue = `amqpfix-tiq-redelivered-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.consume(queue, (m) => {
        if (!m) return;
        if (m.fields.redelivered) channel.ack(m);
        else channel.nack(m); // requeued: delivered again
      });
      channel.sendToQueue(queue, Buffer.from('x'), { timestamp: Math.floor(Date.now() / 1000) - 60 });
      await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
      const value = (await meters.collect()).get(METRIC_HOPTRACE_TIME_IN_QUEUE)?.points[0]?.value as {
        count: number;
      };
      expect(value.count).toBe(1);
    } finally {
      await meters.meterProvider.shutdown();
    }
  });
});

describe('routing keys: recorded by default, with a switch, never in span names (12.4)', () => {
  it('captureRoutingKey false leaves them out of every span; on by default a 255-byte key is recorded, not named', async () => {
    const exchange = `topic-${randomUUID()}`;
    const key = `order.${'9'.repeat(249)}`; // AMQP's longest routing key: 255 bytes
    for (const captureRoutingKey of [false, true]) {
      tracing.current.reset();
      const channel = traceChannel(await amqp.connection.createChannel(), {
        captureRoutingKey,
        settleSpans: true,
      });
      await channel.assertExchange(exchange, 'topic', { autoDelete: true });
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, exchange, 'order.#');
      await channel.consume(queue, (m) => m && channel.ack(m));
      channel.publish(exchange, key, Buffer.from('x'));
      const done = await waitForSpans(spans, (s) => spansNamed(s, `ack ${exchange}`).length === 1);
      const send = onlySpan(done, `send ${exchange}`);
      const process = onlySpan(done, `process ${exchange}`);
      for (const span of [send, process]) {
        expect(span.attributes['rabbitmq.destination.routing_key']).toBe(captureRoutingKey ? key : undefined);
      }
      expect(send.attributes['messaging.destination.name']).toBe(
        captureRoutingKey ? `${exchange}:${key}` : exchange,
      );
      expect(process.attributes['messaging.destination.name']).toBe(
        captureRoutingKey ? `${exchange}:${key}:${queue}` : `${exchange}:${queue}`,
      );
      expect(JSON.stringify(done.map((s) => [s.name, s.attributes])).includes(key)).toBe(captureRoutingKey);
      expect(done.some((s) => s.name.includes(key))).toBe(false);
      await channel.close();
    }
  });
});

describe('the consume callback is called as amqplib calls it', () => {
  it('no `this`, the message as delivered (sampled, and on the unsampled fast path)', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const raw = await amqp.connection.createChannel();
    const queue = `q-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const seen: { self: unknown; message: ConsumeMessage }[] = [];
    await channel.consume(queue, function handler(this: unknown, m) {
      if (!m) return;
      seen.push({ self: this, message: m });
      channel.ack(m);
    });
    channel.sendToQueue(queue, Buffer.from('traced'));
    // A message whose parent is not sampled: the unsampled fast path calls the handler directly.
    raw.sendToQueue(queue, Buffer.from('unsampled'), {
      headers: { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-00` },
    });
    raw.sendToQueue(queue, Buffer.from('unsampled again'), {
      headers: { traceparent: `00-${'e'.repeat(32)}-${'d'.repeat(16)}-00` },
    });
    await until(() => seen.length === 3, 'three deliveries');
    expect(seen.map((s) => s.self)).toEqual([undefined, undefined, undefined]);
    expect(seen.map((s) => s.message.content.toString())).toEqual(['traced', 'unsampled', 'unsampled again']);
  });

  it('a returned thenable that is not a native promise is left alone, as amqplib leaves it: its `then` is never called', async () => {
    const reasons: unknown[] = [];
    const onUnhandled = (reason: unknown) => reasons.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const noAck of [false, true]) {
        const channel = traceChannel(await amqp.connection.createChannel());
        const queue = `q-${randomUUID()}`;
        await channel.assertQueue(queue, { exclusive: true });
        let thenCalls = 0;
        let delivered = 0;
        await channel.consume(
          queue,
          (m) => {
            if (!m) return;
            delivered++;
            if (!noAck) channel.ack(m);
            // Another promise library, or a lazy query builder that runs (here: fails) on `then`.
            return {
              then(_resolve: unknown, reject: (reason: unknown) => void) {
                thenCalls++;
                reject('ran on then');
              },
            } as unknown as undefined;
          },
          { noAck },
        );
        channel.sendToQueue(queue, Buffer.from('x'));
        await until(() => delivered === 1, 'the delivery');
        const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(thenCalls).toBe(0);
        expect(reasons).toEqual([]);
        expect(onlySpan(done, `process ${queue}`).status.code).toBe(SpanStatusCode.UNSET);
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
