import { endOpenSpans } from '@hoptrace/core';
import { traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { Consumer, Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, groupId, runCleanup } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

const TIMED_OUT = 'hoptrace.process.timed_out';

function clients(maxProcessingMs: number) {
  const producer = new Producer({ clientId: 'pleft-producer', bootstrapBrokers: brokers() });
  cleanup.push(() => producer.close());
  const raw = new Consumer({
    clientId: 'pleft-consumer',
    groupId: `pleft-${groupId()}`,
    bootstrapBrokers: brokers(),
    maxWaitTime: 200,
  });
  cleanup.push(() => raw.close(true));
  return { producer: traceProducer(producer), consumer: traceConsumer(raw, { maxProcessingMs }), raw };
}

describe('a message handed out after the iterator was returned', () => {
  it.each(['iterator({ destroyOnReturn: false })', 'iterator()', 'Symbol.asyncIterator'] as const)(
    '%s: next() pending, return(), then a message arrives: its span ends when it is handed out, once',
    async (how) => {
      const [topic] = (await createTopics()) as [string];
      // A long maxProcessingMs: the span must not wait for the sweep.
      const { producer, consumer } = clients(60_000);
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      cleanup.push(() => stream.close());
      const iterator =
        how === 'Symbol.asyncIterator'
          ? stream[Symbol.asyncIterator]()
          : how === 'iterator()'
            ? stream.iterator()
            : stream.iterator({ destroyOnReturn: false });
      const pending = iterator.next();
      await sleep(300); // nothing to read yet: the next() waits
      const returned = iterator.return?.();
      await producer.send({ messages: [{ topic, value: Buffer.from('late') }] });
      const result = await Promise.race([pending, sleep(5000).then(() => 'no message' as const)]);
      const settled = await Promise.race([returned, sleep(5000).then(() => 'return pending' as const)]);
      expect(settled).not.toBe('return pending');
      if (result !== 'no message' && !result.done) {
        // Handed over: the application got it although it had said it was done; its span is over.
        expect(result.value.value?.toString()).toBe('late');
        await until(
          () => spansNamed(tracing.current.spans(), `process ${topic}`).length === 1,
          'span ended',
          1000,
        );
        const [span] = spansNamed(tracing.current.spans(), `process ${topic}`);
        expect(span?.attributes[TIMED_OUT]).toBeUndefined();
      }
      // Whatever the iterator did, nothing is left open and nothing ends twice.
      expect(tracing.current.openSpans().filter((s) => s.name === `process ${topic}`)).toHaveLength(0);
      expect(endOpenSpans()).toBe(0);
      await stream.close();
      expect(spansNamed(tracing.current.spans(), `process ${topic}`).length).toBeLessThanOrEqual(1);
    },
  );
});
