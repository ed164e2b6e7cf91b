import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { brokerEndpoint, sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import amqplib from 'amqplib';
import amqplibV0 from 'amqplib-v0';
import { describe, expect, it } from 'vitest';
import { deliverySpans, settlementsOf } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();

// The promise API's recover(): deliveries the broker sent before it read the request reach the
// client after the call and before its answer. The broker requeued them too (it answers before it
// redelivers), so their process spans end recovered with the answer, as the callback API's do.
describe('promise API recover() with deliveries in flight', () => {
  // `busy`: the event loop is held after the call, so amqplib reads the answer and the redeliveries
  // after it in one go, before any promise reaction runs.
  for (const [major, busy] of [
    ['2.x', false],
    ['0.10', false],
    ['2.x', true],
    ['0.10', true],
  ] as const) {
    it(`amqplib ${major}${busy ? ', answer read with the redeliveries' : ''}: deliveries in flight at the call end recovered with the answer; the application sees the same as without hoptrace`, async () => {
      const lib = major === '2.x' ? amqplib : amqplibV0;
      const connection = await lib.connect(brokerEndpoint('rabbitmq').url);
      try {
        async function run(traced: boolean): Promise<{ order: string[]; queue: string }> {
          const raw = await connection.createChannel();
          const channel = traced ? traceChannel(raw) : raw;
          const queue = `amqpmisc-inflight-${randomUUID()}`;
          await channel.assertQueue(queue, { exclusive: true });
          for (const id of ['a', 'b', 'c']) channel.sendToQueue(queue, Buffer.from(id), { messageId: id });
          // All three queued before the consumer starts: the broker sends them at once.
          while ((await channel.checkQueue(queue)).messageCount < 3) await sleep(20);
          const order: string[] = [];
          let recovered: Promise<unknown> | undefined;
          await channel.consume(queue, (m) => {
            if (!m) return;
            order.push(`${m.fields.redelivered ? 'redelivered' : 'delivered'} ${m.properties.messageId}`);
            // Called on the first delivery: the broker sent the other two before reading it.
            if (m.fields.deliveryTag === 1) {
              recovered = channel.recover();
              if (busy) {
                const until = Date.now() + 300;
                while (Date.now() < until);
              }
            }
            // Acked a task later: a redelivery is still open when the recover's promise fulfils.
            if (m.fields.redelivered) setImmediate(() => channel.ack(m));
          });
          await until(
            () => order.filter((o) => o.startsWith('redelivered')).length === 3,
            'three redeliveries',
          );
          await recovered;
          if (traced) {
            // Before the close: every first delivery ended with the broker's answer.
            expect(settlementsOf(spans(), queue, false)).toEqual(['recovered', 'recovered', 'recovered']);
            for (const span of deliverySpans(spans(), queue, false))
              expect(span.status.code).toBe(SpanStatusCode.UNSET);
            expect(settlementsOf(spans(), queue, true)).toEqual(['ack', 'ack', 'ack']);
          }
          await channel.close();
          return { order, queue };
        }
        const withoutHoptrace = await run(false);
        expect(withoutHoptrace.order.slice(0, 3)).toEqual(['delivered a', 'delivered b', 'delivered c']);
        const { order, queue } = await run(true);
        expect(order).toEqual(withoutHoptrace.order);
        expect(spansNamed(spans(), `process ${queue}`)).toHaveLength(6);
      } finally {
        await connection.close();
      }
    });
  }
});
