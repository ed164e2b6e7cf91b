import { extractContext, injectContext } from '@hoptrace/core';
import { traceProducer } from '@hoptrace/platformatic-kafka';
import { sleep, type TestPropagator, useTestTracing } from '@hoptrace/test-kit';
import { type Context, context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, rawMessages, runCleanup, stringProducer } from './helpers.ts';

afterEach(runCleanup);

/** The baggage entries `ctx` carries, by key. */
const entries = (ctx: Context) =>
  Object.fromEntries((propagation.getBaggage(ctx)?.getAllEntries() ?? []).map(([k, e]) => [k, e.value]));

// Propagators that write each baggage entry as a header of its own, under a name made of its key,
// with the value as it is (OT: any byte 0x20-0xFF) or percent-encoded (Jaeger): non-ASCII text in
// names or values must reach the wire as UTF-8, as kafkajs and @platformatic/kafka's string
// serializers write it and as every reader (hoptrace's included) decodes it.
describe.each<TestPropagator>(['ot', 'jaeger'])('@platformatic/kafka under the %s propagator', (kind) => {
  const tracing = useTestTracing({ propagator: kind });

  it('per-entry baggage headers with non-ASCII text arrive as sent, Buffer or string serializers alike', async () => {
    const [topic] = (await createTopics(1)) as [string];
    await sleep(1000);
    const buffers = new Producer({ clientId: 'per-entry-jaeger', bootstrapBrokers: brokers() });
    cleanup.push(() => buffers.close());
    const strings = stringProducer({ clientId: 'per-entry-jaeger' });
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: `${'0'.repeat(16)}${'3'.repeat(16)}`,
      spanId: '4'.repeat(16),
      traceFlags: 1,
      isRemote: true,
    });
    const ctx = propagation.setBaggage(
      parent,
      propagation.createBaggage({ note: { value: 'café ±' }, clé: { value: 'v' }, plain: { value: 'p' } }),
    );
    // What the propagator carries of this baggage through a plain text carrier (OT skips a key that
    // is no header token).
    const expected = entries(extractContext(injectContext(ctx), ROOT_CONTEXT));
    expect(expected.note).toBe('café ±');
    await context.with(ctx, async () => {
      await traceProducer(buffers).send({ messages: [{ topic, value: Buffer.from('buffers') }] });
      await traceProducer(strings).send({ messages: [{ topic, value: 'strings' }] });
    });
    const wire = await rawMessages(topic, 2);
    for (const message of wire) {
      const received = extractContext(message.headers, ROOT_CONTEXT);
      expect(entries(received), message.value.toString()).toEqual(expected);
      expect(trace.getSpanContext(received)?.traceId, message.value.toString()).toBe(
        `${'0'.repeat(16)}${'3'.repeat(16)}`,
      );
    }
    expect(tracing.current.spans().length).toBeGreaterThan(0);
  });
});
