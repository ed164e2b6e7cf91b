import { traceConsumer } from '@hoptrace/platformatic-kafka';
import { until, useTestTracing } from '@hoptrace/test-kit';
import { describe, expect, it } from 'vitest';
import { fakeConsumer, message } from './fakes.ts';

const tracing = useTestTracing();

/** The ended process span of the message at `offset`. */
const ended = (offset: number) =>
  tracing.current.spans().find((s) => s.attributes['kafka.offset'] === offset);

describe('a consumer close that fails leaves the consumer open, and its spans bounded', () => {
  it('after a failed close, a message held past maxProcessingMs still ends (timed out), and the next close ends what is open', async () => {
    const fake = fakeConsumer();
    let failures = 1;
    const raw = {
      ...fake.consumer,
      close: async () => {
        if (failures-- > 0) throw new Error('leave group failed');
      },
    };
    const consumer = traceConsumer(raw, { maxProcessingMs: 40 });
    const stream = (await consumer.consume()) as AsyncIterable<unknown>;
    const iterator = stream[Symbol.asyncIterator]();
    fake.stream.push(message(new Map(), 1n));
    await iterator.next();
    await expect(consumer.close()).rejects.toThrow('leave group failed');
    // The consumer is still open (the client reopens it on a failed close): consumption goes on.
    fake.stream.push(message(new Map(), 2n));
    await iterator.next(); // message 1 is done; message 2 is held
    // Waits for the sweep (no fixed sleep deciding the outcome): it must end message 2 while it is held.
    await until(() => ended(2) !== undefined, 'message 2 ended by maxProcessingMs', 5000);
    expect(ended(2)?.attributes['hoptrace.process.timed_out']).toBe(true);
    expect(tracing.current.openSpans()).toHaveLength(0);

    fake.stream.push(message(new Map(), 3n));
    await iterator.next(); // message 3 held until the consumer closes
    await consumer.close();
    expect(ended(3), 'message 3 ended by the successful close').toBeDefined();
    expect(ended(3)?.attributes['hoptrace.message.unresolved']).toBe(true);
    expect(ended(1)?.attributes['hoptrace.message.unresolved']).toBeUndefined();
    await tracing.current.assertNoOpenSpans(100);
  });
});
