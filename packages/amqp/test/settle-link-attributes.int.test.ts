import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { onlySpan, parentSpanId, spansNamed, useTestTracing } from '@hoptrace/test-kit';
import { context, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { collectDeliveries, testMeters, useConnection } from './helpers.ts';

/**
 * A settle span of several deliveries is about several messages: each delivery's tag goes on its
 * link to that delivery's process span (semconv: per-message attributes go on the span when it is
 * about one message, else on the links). A settle of one delivery keeps the tag on the span.
 */
const tracing = useTestTracing();
const spans = () => tracing.current.spans();
const amqp = useConnection();

const TAG = 'rabbitmq.message.delivery_tag';

/** The process span whose link target is `spanId`. */
function processOf(processes: readonly ReadableSpan[], spanId: string): ReadableSpan {
  const found = processes.find((p) => p.spanContext().spanId === spanId);
  if (!found) throw new Error(`no process span ${spanId}`);
  return found;
}

describe('settle spans of several deliveries carry each delivery tag on its link (links)', () => {
  it('ack allUpTo and nackAll: one link per settled delivery with its tag; a single ack keeps the tag on the span', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), { settleSpans: true });
    const queue = `hoptrace-links-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.prefetch(4);
    const { got, arrived } = await collectDeliveries(channel, queue);
    for (const i of [1, 2, 3, 4])
      channel.sendToQueue(queue, Buffer.from(String(i)), { messageId: `m${i}`, correlationId: `c${i}` });
    await arrived(4);
    expect(got.map((m) => m.fields.deliveryTag)).toEqual([1, 2, 3, 4]);

    channel.ack(got[1] as ConsumeMessage, true); // tags 1 and 2
    channel.ack(got[2] as ConsumeMessage); // tag 3 alone
    channel.nackAll(false); // tag 4
    const done = spans();
    const processes = spansNamed(done, `process ${queue}`);
    expect(processes).toHaveLength(4);
    const tagOfProcess = (p: ReadableSpan) => p.attributes[TAG];
    const acks = spansNamed(done, `ack ${queue}`);
    expect(acks).toHaveLength(2);
    const [many, one] = acks as [ReadableSpan, ReadableSpan];

    // ack allUpTo: about two deliveries, so the count on the span and each tag on its link.
    expect(many.kind).toBe(SpanKind.CLIENT);
    expect(many.attributes['messaging.batch.message_count']).toBe(2);
    expect(many.attributes[TAG]).toBeUndefined();
    expect(many.links).toHaveLength(2);
    for (const link of many.links) {
      const process = processOf(processes, link.context.spanId);
      expect(link.context.traceId).toBe(process.spanContext().traceId);
      // Only the tag: message and conversation ids are not on a single-message settle span either.
      expect(link.attributes).toEqual({ [TAG]: tagOfProcess(process) });
    }
    expect(many.links.map((l) => l.attributes?.[TAG])).toEqual([1, 2]);

    // A single ack: about one delivery, its tag on the span; the link to its process span stays bare.
    expect(one.attributes[TAG]).toBe(3);
    expect(one.attributes['messaging.batch.message_count']).toBeUndefined();
    expect(one.links).toHaveLength(1);
    expect(one.links[0]?.context.spanId).toBe(
      processes.find((p) => p.attributes[TAG] === 3)?.spanContext().spanId,
    );
    expect(one.links[0]?.attributes).toBeUndefined();

    // nackAll: a settle of every open delivery (here one), so its tag goes on the link.
    const nack = onlySpan(done, `nack ${queue}`);
    expect(nack.attributes['messaging.batch.message_count']).toBe(1);
    expect(nack.attributes[TAG]).toBeUndefined();
    expect(nack.links.map((l) => [l.context.spanId, l.attributes])).toEqual([
      [processes.find((p) => p.attributes[TAG] === 4)?.spanContext().spanId, { [TAG]: 4 }],
    ]);
    // Settled outside any handler: settle spans are roots of their own.
    for (const span of [many, one, nack]) expect(parentSpanId(span)).toBeUndefined();
  });

  it('legacyAttributes: the older tag name on the links too, as on a single-message span', async () => {
    const channel = traceChannel(await amqp.connection.createChannel(), {
      settleSpans: true,
      legacyAttributes: true,
    });
    const queue = `hoptrace-links-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    await channel.prefetch(2);
    const { arrived } = await collectDeliveries(channel, queue);
    channel.sendToQueue(queue, Buffer.from('1'));
    channel.sendToQueue(queue, Buffer.from('2'));
    await arrived(2);
    channel.ackAll();
    const ack = onlySpan(spans(), `ack ${queue}`);
    const processes = spansNamed(spans(), `process ${queue}`);
    expect(processes.map((p) => p.attributes['messaging.rabbitmq.message.delivery_tag']).sort()).toEqual([
      1, 2,
    ]);
    expect(ack.links.map((l) => l.context.spanId).sort()).toEqual(
      processes.map((p) => p.spanContext().spanId).sort(),
    );
    expect(ack.links.map((l) => l.attributes)).toEqual([
      { [TAG]: 1, 'messaging.rabbitmq.message.delivery_tag': 1 },
      { [TAG]: 2, 'messaging.rabbitmq.message.delivery_tag': 2 },
    ]);
  });

  it('messaging.batch.message_count counts the process spans the settle ends (its links), whether or not metrics track the unsampled deliveries between them', async () => {
    for (const withMetrics of [false, true]) {
      tracing.current.reset();
      const meters = withMetrics ? testMeters() : undefined;
      const channel = traceChannel(await amqp.connection.createChannel(), {
        settleSpans: true,
        unsampled: 'skip',
        ...(meters ? { meterProvider: meters.meterProvider } : {}),
      });
      const queue = `hoptrace-links-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.prefetch(3);
      const { got, arrived } = await collectDeliveries(channel, queue);
      const unsampled = trace.setSpanContext(context.active(), {
        traceId: 'a'.repeat(32),
        spanId: 'b'.repeat(16),
        traceFlags: TraceFlags.NONE,
      });
      channel.sendToQueue(queue, Buffer.from('1'));
      context.with(unsampled, () => channel.sendToQueue(queue, Buffer.from('2')));
      channel.sendToQueue(queue, Buffer.from('3'));
      await arrived(3);
      channel.ack(got[2] as ConsumeMessage, true); // the broker settles tags 1, 2 and 3
      const done = spans();
      const processes = spansNamed(done, `process ${queue}`);
      expect(processes.map((p) => p.attributes[TAG])).toEqual([1, 3]);
      const ack = onlySpan(done, `ack ${queue}`);
      expect(ack.links.map((l) => l.attributes?.[TAG])).toEqual([1, 3]);
      expect(ack.links.map((l) => l.context.spanId)).toEqual(processes.map((p) => p.spanContext().spanId));
      expect(ack.attributes['messaging.batch.message_count']).toBe(2);
      await channel.close();
    }
  });
});
