import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deadLetterOptions, traceChannel } from '@hoptrace/amqp';
import {
  brokerEndpoint,
  type Deferred,
  deferred,
  onlySpan,
  parentSpanId,
  sleep,
  spansNamed,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Channel, ConsumeMessage } from 'amqplib';
import { describe, expect, it, vi } from 'vitest';
import { traceparentOf, useConnection } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

const amqp = useConnection();

class StockError extends Error {
  readonly code = 'STOCK_UNAVAILABLE';
}
const classifyError = (error: unknown) =>
  error instanceof StockError ? { type: error.code, retryable: false } : undefined;

/** Reads one message from `queue` in a separate Node process that loads plain amqplib and nothing else. */
/** Consumes (and acks) `queue`; resolves with the first message it delivers. */
async function firstArrival(channel: Channel, queue: string): Promise<Deferred<ConsumeMessage>> {
  const arrived = deferred<ConsumeMessage>();
  await channel.consume(queue, (m) => {
    if (!m) return;
    channel.ack(m);
    arrived.resolve(m);
  });
  return arrived;
}

function readRawInAnotherProcess(queue: string): {
  headers: Record<string, unknown>;
  properties: Record<string, unknown>;
  content: string;
} {
  const amqplibPath = createRequire(import.meta.url).resolve('amqplib');
  const script = join(tmpdir(), `hoptrace-raw-read-${randomUUID()}.cjs`);
  writeFileSync(
    script,
    `const amqplib = require(${JSON.stringify(amqplibPath)});
(async () => {
  const connection = await amqplib.connect(process.argv[2]);
  const channel = await connection.createChannel();
  let message = false;
  for (let i = 0; i < 100 && !message; i++) {
    message = await channel.get(process.argv[3], { noAck: true });
    if (!message) await new Promise((r) => setTimeout(r, 20));
  }
  const otel = Object.keys(require.cache).filter((k) => k.includes('@opentelemetry'));
  const { headers, ...rest } = message.properties;
  const properties = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  process.stdout.write(JSON.stringify({ headers, properties, content: message.content.toString(), otel }));
  await connection.close();
})().catch((e) => { console.error(e); process.exit(1); });
`,
  );
  const out = execFileSync(process.execPath, [script, brokerEndpoint('rabbitmq').url, queue], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const parsed = JSON.parse(out) as {
    headers: Record<string, unknown>;
    properties: Record<string, unknown>;
    content: string;
    otel: string[];
  };
  expect(parsed.otel).toEqual([]); // no OpenTelemetry in that process
  return parsed;
}

describe('broker dead-lettering (x-death)', () => {
  it('the DLQ consumer continues the original trace and shows the death reason, count, original queue and exchange', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const dlx = `dlx-${randomUUID()}`;
    const dlq = `dlq-${randomUUID()}`;
    const queue = `q-${randomUUID()}`;
    const ttlQueue = `ttl-${randomUUID()}`;
    await channel.assertExchange(dlx, 'fanout', { autoDelete: true });
    await channel.assertQueue(dlq, { exclusive: true });
    await channel.bindQueue(dlq, dlx, '');
    await channel.assertQueue(queue, { exclusive: true, arguments: { 'x-dead-letter-exchange': dlx } });
    await channel.assertQueue(ttlQueue, {
      exclusive: true,
      arguments: { 'x-dead-letter-exchange': dlx, 'x-message-ttl': 1 },
    });
    await channel.consume(queue, (m) => m && channel.nack(m, false, false));
    await channel.consume(dlq, (m) => m && channel.ack(m));
    channel.sendToQueue(queue, Buffer.from('dead'), { messageId: 'rejected' });
    channel.sendToQueue(ttlQueue, Buffer.from('late'), { messageId: 'expired' });
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${dlq}`).length === 2);
    const dead = (id: string) =>
      spansNamed(done, `process ${dlq}`).find((s) => s.attributes['messaging.message.id'] === id);
    const rejected = dead('rejected');
    const expired = dead('expired');
    const failed = onlySpan(done, `process ${queue}`);
    expect(failed.attributes['error.type']).toBe('rejected');
    expect(parentSpanId(rejected as never)).toBe(onlySpan(done, `send ${queue}`).spanContext().spanId);
    expect(rejected?.attributes).toMatchObject({
      'hoptrace.rabbitmq.death_count': 1,
      'hoptrace.rabbitmq.death.reason': 'rejected',
      'hoptrace.rabbitmq.death.queue': queue,
      'messaging.destination.name': `${dlx}:${queue}:${dlq}`,
    });
    expect(parentSpanId(expired as never)).toBe(onlySpan(done, `send ${ttlQueue}`).spanContext().spanId);
    expect(expired?.attributes).toMatchObject({
      'hoptrace.rabbitmq.death_count': 1,
      'hoptrace.rabbitmq.death.reason': 'expired',
      'hoptrace.rabbitmq.death.queue': ttlQueue,
    });
  });
});

describe('deadLetterOptions: an application republishing a failed message to its own dead-letter exchange', () => {
  it('classified failure, lineage headers, DLQ span continues the trace and links to the failed attempt; input never mutated', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { classifyError });
    const dlx = `dlx-${randomUUID()}`;
    const dlq = `dlq-${randomUUID()}`;
    const queue = `q-${randomUUID()}`;
    await channel.assertExchange(dlx, 'direct', { autoDelete: true });
    // Read from another process too: not exclusive, deleted once its last consumer goes.
    await channel.assertQueue(dlq, { autoDelete: true });
    await channel.bindQueue(dlq, dlx, queue);
    await channel.assertQueue(queue, { exclusive: true });
    const reasons: unknown[] = [];
    const onUnhandled = (reason: unknown) => reasons.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const failure = new StockError('sku 42 is out of stock');
    const held: ConsumeMessage[] = [];
    const headersSeen = deferred<{ before: string; after: string; same: boolean }>();
    try {
      await channel.consume(queue, async (m) => {
        if (!m) return;
        await Promise.resolve();
        const before = JSON.stringify(m.properties);
        const options = deadLetterOptions(m, failure, { queue, classifyError });
        channel.publish(dlx, queue, m.content, options);
        held.push(m); // acked once the failure is recorded (an ack ends the span)
        headersSeen.resolve({
          before,
          after: JSON.stringify(m.properties),
          same: options.headers === m.properties.headers,
        });
        throw failure; // the attempt failed: its span says so
      });
      const dlqMessages: ConsumeMessage[] = [];
      channel.sendToQueue(queue, Buffer.from('order 42'), {
        messageId: 'order-42',
        correlationId: 'c-42',
        contentType: 'application/json',
        expiration: '60000',
        headers: { tenant: 'acme' },
      });
      const seen = await headersSeen.promise;
      expect(seen.after).toBe(seen.before);
      expect(seen.same).toBe(false);
      await until(() => reasons.includes(failure), 'the handler’s rejection');
      channel.ack(held[0] as ConsumeMessage);

      // A plain client with no OpenTelemetry reads the lineage.
      const raw = readRawInAnotherProcess(dlq);
      let done: readonly ReadableSpan[] = spans();
      const send = onlySpan(done, `send ${queue}`);
      const failed = onlySpan(done, `process ${queue}`);
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(failed.attributes['error.type']).toBe('STOCK_UNAVAILABLE');
      expect(failed.attributes['hoptrace.error.retryable']).toBe(false);
      expect(raw.content).toBe('order 42');
      // Properties kept, expiration dropped (as RabbitMQ does for dead letters).
      expect(raw.properties).toEqual({
        messageId: 'order-42',
        correlationId: 'c-42',
        contentType: 'application/json',
      });
      expect(raw.headers).toMatchObject({
        tenant: 'acme',
        traceparent: traceparentOf(send),
        'hoptrace-original-destination': queue,
        'hoptrace-error-type': 'STOCK_UNAVAILABLE',
        'hoptrace-error-message': 'sku 42 is out of stock',
        'hoptrace-error-retryable': 'false',
        'hoptrace-attempts': '1',
        'hoptrace-failed-traceparent': traceparentOf(failed),
      });

      // The same copy through a traced consumer: continues the trace, links to the failed attempt.
      tracing.current.reset();
      channel.publish(dlx, queue, Buffer.from('order 42'), { headers: raw.headers, messageId: 'again' });
      await channel.consume(dlq, (m) => {
        if (!m) return;
        dlqMessages.push(m);
        channel.ack(m);
      });
      done = await waitForSpans(spans, (s) => spansNamed(s, `process ${dlq}`).length === 1);
      const dead = onlySpan(done, `process ${dlq}`);
      expect(dead.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(parentSpanId(dead)).toBe(send.spanContext().spanId);
      expect(dead.status.code).toBe(SpanStatusCode.UNSET);
      expect(dead.links).toHaveLength(1);
      expect(dead.links[0]?.context.spanId).toBe(failed.spanContext().spanId);
      const lineage = {
        'hoptrace.failure.destination': queue,
        'hoptrace.failure.error.type': 'STOCK_UNAVAILABLE',
        'hoptrace.failure.retryable': false,
        'hoptrace.failure.attempts': 1,
      };
      expect(dead.links[0]?.attributes).toEqual(lineage);
      expect(dead.attributes).toMatchObject(lineage);
      expect(dlqMessages).toHaveLength(1);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a handler that dead-letters without throwing still ends its attempt ERROR with the classified code', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { classifyError });
    const queue = `q-${randomUUID()}`;
    const dlq = `dlq-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.assertQueue(dlq, { exclusive: true });
    const parked = deferred<ConsumeMessage>();
    await channel.consume(queue, (m) => {
      if (!m) return;
      // Spring-style: publish the dead-letter copy, then ack the original; nothing is thrown.
      channel.sendToQueue(dlq, m.content, deadLetterOptions(m, new StockError('sku 7 is gone'), { queue }));
      channel.ack(m);
    });
    await channel.consume(dlq, (m) => {
      if (!m) return;
      channel.ack(m);
      parked.resolve(m);
    });
    channel.sendToQueue(queue, Buffer.from('order 7'), { messageId: 'order-7' });
    await parked.promise;
    const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${dlq}`).length === 1);
    const failed = onlySpan(done, `process ${queue}`);
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed.attributes['error.type']).toBe('STOCK_UNAVAILABLE');
    expect(failed.attributes['hoptrace.rabbitmq.settlement']).toBe('ack');
    const dead = onlySpan(done, `process ${dlq}`);
    expect(dead.links.map((l) => l.context.spanId)).toEqual([failed.spanContext().spanId]);
    expect(dead.links[0]?.attributes?.['hoptrace.failure.error.type']).toBe('STOCK_UNAVAILABLE');
    // A message that did not come from a traced channel: nothing to mark, nothing thrown.
    expect(() =>
      deadLetterOptions({ fields: {}, properties: { headers: {} } }, new StockError('x'), { queue }),
    ).not.toThrow();
  });

  it('marks the attempt of the message given, on its own channel, when two channels hold the same delivery tag; a spread copy counts as the message', async () => {
    const a = traceChannel(await amqp.connection.createChannel(), { classifyError });
    const b = traceChannel(await amqp.connection.createChannel(), { classifyError });
    const queueA = `q-a-${randomUUID()}`;
    const queueB = `q-b-${randomUUID()}`;
    await a.assertQueue(queueA, { exclusive: true });
    await b.assertQueue(queueB, { exclusive: true });
    const heldA = deferred<ConsumeMessage>();
    const heldB = deferred<ConsumeMessage>();
    await a.consume(queueA, (m) => m && heldA.resolve(m));
    await b.consume(queueB, (m) => m && heldB.resolve(m));
    a.sendToQueue(queueA, Buffer.from('a'), { messageId: 'a' });
    b.sendToQueue(queueB, Buffer.from('b'), { messageId: 'b' });
    const [mA, mB] = await Promise.all([heldA.promise, heldB.promise]);
    // Each channel's first delivery: the same tag on both.
    expect(mA.fields.deliveryTag).toBe(mB.fields.deliveryTag);
    // A copy of B's message (as a framework re-wrapping deliveries would pass) names B's delivery.
    deadLetterOptions({ ...mB }, new StockError('sku 9 is gone'), { queue: queueB });
    // A look-alike with the same tag but other fields is not a delivery hoptrace handed out.
    deadLetterOptions(
      { fields: { ...mA.fields }, properties: { headers: {} } },
      new StockError('not this one'),
      { queue: queueA },
    );
    a.ack(mA);
    b.ack(mB);
    const done = await waitForSpans(
      spans,
      (s) => spansNamed(s, `process ${queueA}`).length + spansNamed(s, `process ${queueB}`).length === 2,
    );
    const processA = onlySpan(done, `process ${queueA}`);
    const processB = onlySpan(done, `process ${queueB}`);
    expect(processB.status.code).toBe(SpanStatusCode.ERROR);
    expect(processB.attributes['error.type']).toBe('STOCK_UNAVAILABLE');
    expect(processA.status.code).toBe(SpanStatusCode.UNSET);
    expect(processA.attributes['error.type']).toBeUndefined();
  });

  // RabbitMQ 3.x drops the CC header from a message it dead-letters to a given routing key (its own
  // routing keys would otherwise route the copy again); 4.x keeps the header but does not route the
  // dead letter by it. A copy republished with deadLetterOptions is published anew, so RabbitMQ would
  // route it by its CC: it must not ride along.
  it('a message published with CC: the copy routes only where the caller sends it, as broker dead-lettering does (no CC header)', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const exchange = `ex-${randomUUID()}`;
    const queue = `q-${randomUUID()}`;
    const audit = `audit-${randomUUID()}`;
    const dlq = `dlq-${randomUUID()}`;
    const brokerDlq = `broker-dlq-${randomUUID()}`;
    await channel.assertExchange(exchange, 'direct', { autoDelete: true });
    await channel.assertQueue(dlq, { exclusive: true });
    await channel.assertQueue(brokerDlq, { exclusive: true });
    await channel.assertQueue(queue, {
      exclusive: true,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': brokerDlq },
    });
    await channel.assertQueue(audit, { exclusive: true });
    await channel.bindQueue(queue, exchange, 'orders');
    await channel.bindQueue(audit, exchange, audit);
    const audited: string[] = [];
    await channel.consume(audit, (m) => {
      if (!m) return;
      audited.push(m.content.toString());
      channel.ack(m);
    });
    let attempt = 0;
    await channel.consume(queue, (m) => {
      if (!m) return;
      attempt++;
      if (attempt === 1) {
        // the application parks the failed message in its own DLQ (default exchange)
        channel.sendToQueue(dlq, m.content, deadLetterOptions(m, new StockError('sku 7 is gone'), { queue }));
        channel.ack(m);
      } else channel.nack(m, false, false); // broker dead-lettering, for comparison
    });
    const parked = await firstArrival(channel, dlq);
    const deadLettered = await firstArrival(channel, brokerDlq);
    channel.publish(exchange, 'orders', Buffer.from('order 7'), { CC: [audit] });
    const copy = await parked.promise;
    channel.publish(exchange, 'orders', Buffer.from('order 8'), { CC: [audit] });
    const brokerCopy = await deadLettered.promise;
    await waitForSpans(spans, (s) => spansNamed(s, `process ${brokerDlq}`).length === 1);
    await sleep(200);
    // The audit queue got each message once, from the original publishes only.
    expect(audited.sort()).toEqual(['order 7', 'order 8']);
    expect(spansNamed(spans(), `process ${audit}`)).toHaveLength(2);
    // The broker's copy: no CC on 3.x; on 4.x CC kept but not routed by (the audit count above).
    expect(brokerCopy.content.toString()).toBe('order 8');
    expect(copy.properties.headers?.CC).toBeUndefined();
    expect(copy.properties.headers?.['hoptrace-error-type']).toBe('STOCK_UNAVAILABLE');
  });

  // A quorum queue counts redeliveries in `x-delivery-count`; it describes that delivery, not the
  // message. RabbitMQ's own dead-lettering drops it and keeps the dead-letter history (`x-death`,
  // `x-first-death-*`); a copy that carried it would show a first delivery as redelivered (a quorum
  // queue only writes the header on a redelivery, so a stale one stays).
  it('a quorum queue redelivery: the copy keeps x-death and x-first-death-* but not x-delivery-count, as broker dead-lettering does', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const id = randomUUID();
    const first = `amqpfix-first-${id}`;
    const quorum = `amqpfix-qq-${id}`;
    const parking = `amqpfix-parking-qq-${id}`;
    const brokerDlq = `amqpfix-broker-dlq-${id}`;
    await channel.assertQueue(brokerDlq, { exclusive: true });
    try {
      for (const name of [quorum, parking]) {
        await channel.assertQueue(name, {
          durable: true,
          arguments: {
            'x-queue-type': 'quorum',
            ...(name === quorum
              ? { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': brokerDlq }
              : {}),
          },
        });
      }
      // dead-lettered once by the broker into the quorum queue, so the message has a death history
      await channel.assertQueue(first, {
        exclusive: true,
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': quorum },
      });
      const deliveries: ConsumeMessage[] = [];
      await channel.consume(quorum, (m) => {
        if (!m) return;
        deliveries.push(m);
        const attempt = deliveries.filter((d) => d.content.equals(m.content)).length;
        if (attempt === 1)
          channel.nack(m); // requeued: the next delivery has x-delivery-count 1
        else if (m.content.toString() === 'copy') {
          channel.sendToQueue(
            parking,
            m.content,
            deadLetterOptions(m, new StockError('gone'), { queue: quorum }),
          );
          channel.ack(m);
        } else channel.nack(m, false, false); // broker dead-lettering, for comparison
      });
      const parked = await firstArrival(channel, parking);
      const deadLettered = await firstArrival(channel, brokerDlq);
      await channel.consume(first, (m) => m && channel.nack(m, false, false));
      channel.sendToQueue(first, Buffer.from('copy'), { headers: { mine: 'kept' } });
      const copy = await parked.promise;
      channel.sendToQueue(first, Buffer.from('broker'), { headers: { mine: 'kept' } });
      const brokerCopy = await deadLettered.promise;
      const original = deliveries.find((d) => d.content.toString() === 'copy' && d.fields.redelivered);
      expect(original?.properties.headers?.['x-delivery-count']).toBe(1);
      const brokerHeaders = brokerCopy.properties.headers ?? {};
      const copyHeaders = copy.properties.headers ?? {};
      expect(brokerHeaders['x-delivery-count']).toBeUndefined();
      expect(copyHeaders['x-delivery-count']).toBeUndefined();
      const history = (h: Record<string, unknown>) =>
        Object.keys(h)
          .filter((k) => k.startsWith('x-'))
          .sort();
      expect(history(copyHeaders)).toEqual(history(brokerHeaders));
      for (const name of ['x-death', 'x-first-death-queue', 'x-first-death-reason', 'x-first-death-exchange'])
        expect(copyHeaders[name]).toEqual(original?.properties.headers?.[name]);
      expect(copyHeaders.mine).toBe('kept');
    } finally {
      await channel.deleteQueue(quorum).catch(() => undefined);
      await channel.deleteQueue(parking).catch(() => undefined);
    }
  });

  it('defaults: attempts from x-death or an earlier copy, destination from the routing key; bad options throw', () => {
    const source = {
      fields: { exchange: '', routingKey: 'orders' },
      properties: {
        headers: {
          'x-death': [{ count: 2, reason: 'rejected', queue: 'orders' }],
          'hoptrace-original-offset': '7',
        },
        messageId: 'm',
        expiration: '100',
      },
    };
    const frozen = JSON.stringify(source);
    const out = deadLetterOptions(source, 'a string was thrown');
    expect(JSON.stringify(source)).toBe(frozen);
    expect(out.headers).toMatchObject({
      'hoptrace-original-destination': 'orders',
      'hoptrace-attempts': '3',
      'hoptrace-error-type': '_OTHER',
    });
    expect(out.headers['hoptrace-original-offset']).toBeUndefined();
    // delivery annotations of the original's delivery go; the dead-letter history stays
    const annotated = deadLetterOptions(
      {
        fields: { exchange: '', routingKey: 'orders' },
        properties: {
          headers: {
            'x-delivery-count': 3,
            'x-acquired-count': 4,
            'x-stream-offset': 12,
            'x-last-death-queue': 'orders',
            'x-first-death-queue': 'orders',
          },
        },
      },
      null,
    );
    expect(Object.keys(annotated.headers).filter((k) => k.startsWith('x-'))).toEqual([
      'x-last-death-queue',
      'x-first-death-queue',
    ]);
    expect(out.expiration).toBeUndefined();
    expect(out.messageId).toBe('m');
    const again = deadLetterOptions(
      { fields: { exchange: 'ex', routingKey: 'rk' }, properties: { headers: out.headers } },
      null,
    );
    expect(again.headers['hoptrace-attempts']).toBe('4');
    expect(again.headers['hoptrace-original-destination']).toBe('ex:rk');
    expect(() => deadLetterOptions(source, null, { attempts: -1 })).toThrow(TypeError);
    expect(() => deadLetterOptions(source, null, { queue: 42 as never })).toThrow(TypeError);
    expect(() => deadLetterOptions(null as never, null)).toThrow(TypeError);
    // A context that is not one (a plain object) said as such; before, the copy went without
    // hoptrace-failed-traceparent and only a diag warning told.
    expect(() => deadLetterOptions(source, null, { context: {} as never })).toThrow(
      'deadLetterOptions: expected `options.context` to be an OpenTelemetry Context or undefined, got an object',
    );
  });

  it('a huge hoptrace-attempts from a raw publisher is refused by its size, never decoded: attempts come from x-death', async () => {
    // A short numeric header: anything over 32 characters (or bytes) is not a count hoptrace wrote,
    // and it is not decoded to find that out. Before, a 60 KB byte-array value (amqplib sends header tables up to 64 KB) was decoded whole
    // on every dead-letter call.
    const raw = await amqp.connection.createChannel();
    const queue = `harden-dl-${randomUUID()}`;
    await raw.assertQueue(queue, { exclusive: true });
    const huge = Buffer.alloc(60_000, '7');
    const death = [{ count: 2, reason: 'rejected', queue }];
    raw.sendToQueue(queue, Buffer.from('a'), { headers: { 'hoptrace-attempts': huge, 'x-death': death } });
    raw.sendToQueue(queue, Buffer.from('b'), {
      headers: { 'hoptrace-attempts': '7'.repeat(60_000), 'x-death': death },
    });
    // A short value still counts, as bytes (a byte-array header) too.
    raw.sendToQueue(queue, Buffer.from('c'), { headers: { 'hoptrace-attempts': Buffer.from('5') } });
    const received: ConsumeMessage[] = [];
    await raw.consume(queue, (m) => m && received.push(m), { noAck: true });
    await until(() => received.length === 3, 'three raw messages');
    expect(Buffer.isBuffer(received[0]?.properties.headers?.['hoptrace-attempts'])).toBe(true);
    const decoded: number[] = [];
    // Every decoding of a Buffer to text goes through toString (hoptrace's header reads do).
    const bytes = Buffer.prototype as { toString(...args: unknown[]): string };
    const originalToString = bytes.toString;
    const spy = vi.spyOn(bytes, 'toString').mockImplementation(function (this: Buffer, ...args) {
      decoded.push(this.length);
      return originalToString.apply(this, args);
    });
    let attempts: unknown[];
    try {
      attempts = received.map((m) => deadLetterOptions(m, new StockError('x')).headers['hoptrace-attempts']);
    } finally {
      spy.mockRestore();
    }
    expect(attempts).toEqual(['3', '3', '6']);
    expect(decoded.filter((length) => length > 32)).toEqual([]);
    await raw.close();
  });
});
