import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import { spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { describe, expect, it } from 'vitest';
import { brokerPort, testMeters, useConnection } from './helpers.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();
const amqp = useConnection();

const INSTRUMENTS = [
  'messaging.client.operation.duration',
  'messaging.process.duration',
  'messaging.client.sent.messages',
  'messaging.client.consumed.messages',
] as const;

describe('metric attributes on a real broker (metrics2)', () => {
  it('every point of the four messaging metrics carries server.address and server.port, as the spans do', async () => {
    const meters = testMeters();
    try {
      const channel = traceChannel(await amqp.connection.createChannel(), {
        meterProvider: meters.meterProvider,
        settleSpans: true,
      });
      const queue = `metrics2-server-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.consume(queue, (m) => m && channel.ack(m));
      channel.sendToQueue(queue, Buffer.from('m1'));
      const done = await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 1);
      channel.sendToQueue(queue, Buffer.from('m2'));
      await waitForSpans(spans, (s) => spansNamed(s, `process ${queue}`).length === 2);
      await channel.get(queue);
      const server = {
        'server.address': spansNamed(done, `send ${queue}`)[0]?.attributes['server.address'],
        'server.port': brokerPort(),
      };
      expect(server['server.address']).toBeTypeOf('string');
      const metrics = await meters.collect();
      for (const name of INSTRUMENTS) {
        const points = metrics.get(name)?.points ?? [];
        expect(points.length, name).toBeGreaterThan(0);
        for (const point of points) expect(point.attributes, name).toMatchObject(server);
      }
    } finally {
      await meters.meterProvider.shutdown();
    }
  });
});
