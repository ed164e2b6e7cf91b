import { endOpenSpans } from '@hoptrace/core';
import { traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { sleep, spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { Consumer, type Message, Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, groupId, runCleanup } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

const TIMED_OUT = 'hoptrace.process.timed_out';
type Msg = Message<Buffer, Buffer, Buffer, Buffer>;

describe('a stream the consumer leaves open after a successful close()', () => {
  it('is still swept: a message read from it after the close times out at maxProcessingMs', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = new Producer({ clientId: 'pleft-producer', bootstrapBrokers: brokers() });
    cleanup.push(() => producer.close());
    await traceProducer(producer).send({
      messages: Array.from({ length: 20 }, (_, i) => ({ topic, value: Buffer.from(`m${i}`) })),
    });
    const raw = new Consumer({
      clientId: 'pleft-consumer',
      groupId: `pleft-${groupId()}`,
      bootstrapBrokers: brokers(),
      maxWaitTime: 200,
    });
    raw.on('error', () => undefined); // heartbeats of the member it no longer leaves
    cleanup.push(() => raw.close(true));
    const consumer = traceConsumer(raw, { maxProcessingMs: 200 });
    // A small highWaterMark and no autocommit: once a fetch filled the buffer, nothing reads from
    // the (closed) consumer again while the test reads the buffered messages.
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'earliest',
      autocommit: false,
      highWaterMark: 2,
    });
    cleanup.push(() => stream.close());
    const iterator = stream.iterator({ destroyOnReturn: false });
    const first = (await iterator.next()).value as Msg;
    expect(first.value?.toString()).toBe('m0');
    await until(() => stream.readableLength >= 5, 'buffered', 5000);

    // Not an active group member (as after a rejoin that failed): the library's close() skips
    // LeaveGroup, succeeds, and does not close the stream.
    raw.memberId = null;
    await consumer.close();
    expect(raw.closed).toBe(true);
    expect({ closed: stream.closed, destroyed: stream.destroyed }).toEqual({
      closed: false,
      destroyed: false,
    });

    // The close ended the held span; a message still buffered is handed out after it and held.
    const second = (await iterator.next()).value as Msg;
    expect(second.value?.toString()).toBe('m1');
    await sleep(1000);
    expect({ closed: stream.closed, destroyed: stream.destroyed }).toEqual({
      closed: false,
      destroyed: false,
    });
    const spans = spansNamed(tracing.current.spans(), `process ${topic}`);
    expect(spans).toHaveLength(2);
    expect(spans[0]?.attributes[TIMED_OUT]).toBeUndefined();
    expect(spans[1]?.attributes[TIMED_OUT]).toBe(true);

    expect(endOpenSpans()).toBe(0);
    await stream.close();
    expect(spansNamed(tracing.current.spans(), `process ${topic}`)).toHaveLength(2);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });
});
