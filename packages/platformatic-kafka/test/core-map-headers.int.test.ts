import { extractContext, readFailureLineage, withContextHeaders } from '@hoptrace/core';
import { deadLetterMessage } from '@hoptrace/platformatic-kafka';
import { sleep, useTestTracing } from '@hoptrace/test-kit';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { type Message, Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, rawMessages, runCleanup, stringProducer } from './helpers.ts';

useTestTracing();
afterEach(runCleanup);

const sent = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: 'c'.repeat(32),
  spanId: 'd'.repeat(16),
  traceFlags: 1,
});

describe('@hoptrace/core by hand on untraced @platformatic/kafka clients (headers are Maps)', () => {
  it('withContextHeaders on a Map, sent raw; extractContext and readFailureLineage on the Map a raw consumer hands out', async () => {
    const [topic, dlq] = (await createTopics(2)) as [string, string];
    await sleep(1000);
    const buffers = new Producer({ clientId: 'core-map', bootstrapBrokers: brokers() });
    cleanup.push(() => buffers.close());
    // Default serializers take bytes only: the added string entries are encoded by the caller.
    const added = withContextHeaders(new Map([[Buffer.from('x-app'), Buffer.from('1')]]), sent);
    const encoded = new Map([...added].map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
    await buffers.send({ messages: [{ topic, value: Buffer.from('b'), headers: encoded }] });
    const strings = stringProducer({ clientId: 'core-map' });
    const headers = withContextHeaders(new Map([['x-app', '2']]), sent);
    await strings.send({ messages: [{ topic, value: 's', headers }] });

    const received = await rawMessages(topic, 2);
    expect(received.map((m) => m.headers instanceof Map)).toEqual([true, true]);
    for (const message of received) {
      expect(trace.getSpanContext(extractContext(message.headers, ROOT_CONTEXT))).toMatchObject({
        traceId: 'c'.repeat(32),
        spanId: 'd'.repeat(16),
        traceFlags: 1,
        isRemote: true,
      });
    }
    expect(received.map((m) => m.headers.get(Buffer.from('x-app'))?.toString())).toEqual([
      undefined,
      undefined,
    ]);
    expect(
      received.map((m) => [...m.headers].find(([k]) => k.toString() === 'x-app')?.[1].toString()),
    ).toEqual(['1', '2']);

    const copy = deadLetterMessage(
      received[0] as Message<Buffer, Buffer, Buffer, Buffer>,
      new Error('boom'),
      {
        attempts: 3,
        context: extractContext(received[0]?.headers, ROOT_CONTEXT), // no traced consumer ran the handler
      },
    );
    await buffers.send({ messages: [{ ...copy, topic: dlq }] });
    const [dead] = await rawMessages(dlq, 1);
    expect(readFailureLineage(dead?.headers)).toMatchObject({
      destination: topic,
      errorType: 'Error',
      attempts: 3,
      failed: { traceId: 'c'.repeat(32) },
    });
  });
});
