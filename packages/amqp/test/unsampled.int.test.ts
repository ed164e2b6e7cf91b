import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { deferred, useTestTracing } from '@hoptrace/test-kit';
import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { connect } from './helpers.ts';

// Sampling off (AlwaysOff): the SDK records nothing.
const tracing = useTestTracing({ sampled: false });

describe('sampling off (16)', () => {
  it('no span is recorded, and the trace id still flows through a consumer to its downstream sends', async () => {
    const connection = await connect();
    try {
      const channel = traceChannel(await connection.createChannel());
      const raw = await connection.createChannel();
      const id = randomUUID();
      const first = `in-${id}`;
      const second = `out-${id}`;
      await channel.assertQueue(first, { exclusive: true });
      await channel.assertQueue(second, { exclusive: true });
      await channel.consume(first, (m) => {
        if (!m) return;
        channel.sendToQueue(second, m.content, { messageId: m.properties.messageId });
        channel.ack(m);
      });
      const relayed: ConsumeMessage[] = [];
      const all = deferred();
      await raw.consume(second, (m) => {
        if (!m) return;
        relayed.push(m);
        raw.ack(m);
        if (relayed.length === 4) all.resolve();
      });
      const traceIds = ['a', 'b', 'c', 'd'].map((c) => c.repeat(32));
      // The last one with flags W3C does not define (not sampled): they are not handed on (written
      // as they came, OpenTelemetry's propagator would send `-0fe`, which no extractor accepts).
      const flags = ['00', '00', '00', 'fe'];
      for (const [i, traceId] of traceIds.entries()) {
        raw.sendToQueue(first, Buffer.from(String(i)), {
          messageId: String(i),
          headers: { traceparent: `00-${traceId}-${'1'.repeat(16)}-${flags[i]}` },
        });
      }
      await all.promise;
      for (const m of relayed) {
        const i = Number(m.properties.messageId);
        const sent = traceIds[i] as string;
        const out = i === 3 ? '02' : '00';
        expect(String(m.properties.headers?.traceparent)).toMatch(
          new RegExp(`^00-${sent}-[0-9a-f]{16}-${out}$`),
        );
      }
      expect(tracing.current.spans()).toEqual([]);
      expect(tracing.current.openSpans()).toEqual([]);
    } finally {
      await connection.close();
    }
  });

  it('a confirm channel with nothing recording: the caller’s callback gets amqplib’s arguments, the context still travels', async () => {
    const connection = await connect();
    try {
      const confirm = traceChannel(await connection.createConfirmChannel());
      const queue = `q-${randomUUID()}`;
      await confirm.assertQueue(queue, { exclusive: true });
      const confirmed = deferred<unknown[]>();
      confirm.sendToQueue(queue, Buffer.from('x'), {}, (...args: unknown[]) => confirmed.resolve(args));
      expect(await confirmed.promise).toEqual([null]);
      await confirm.waitForConfirms();
      const got = await confirm.get(queue);
      expect(got && String(got.properties.headers?.traceparent)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(tracing.current.spans()).toEqual([]);
    } finally {
      await connection.close();
    }
  });
});
