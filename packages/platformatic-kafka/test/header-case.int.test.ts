import { traceProducer } from '@hoptrace/platformatic-kafka';
import { sleep, useTestTracing } from '@hoptrace/test-kit';
import { context, trace } from '@opentelemetry/api';
import { Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, rawMessages, runCleanup, stringProducer } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);
const STALE = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;

/** What a plain consumer reads: each header name with its text, in wire order, per message. */
async function received(topic: string, count: number): Promise<[string, string][][]> {
  return (await rawMessages(topic, count)).map((message) =>
    [...message.headers].map(([k, v]) => [k.toString(), v.toString()]),
  );
}

describe('@platformatic/kafka: caller headers naming a propagation field in another case', () => {
  it('a stale Traceparent/Tracestate/Baggage (record, Map, Buffer-keyed Map) travels once, as the fresh lowercase field', async () => {
    const [topic] = (await createTopics(1)) as [string];
    await sleep(1000);
    const text = { Traceparent: STALE, TRACESTATE: 'old=1', Baggage: 'tenant=stale', app: 'a' };
    const asBuffers = new Map(Object.entries(text).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
    const asStrings = new Map(Object.entries(text));
    const buffers = new Producer({ clientId: 'hdrfix', bootstrapBrokers: brokers() });
    cleanup.push(() => buffers.close());
    const strings = stringProducer({ clientId: 'hdrfix' });
    const request = trace.getTracer('app').startSpan('request');
    await context.with(trace.setSpan(context.active(), request), async () => {
      await traceProducer(buffers).send({
        messages: [{ topic, value: Buffer.from('buffers'), headers: asBuffers }],
      });
      await traceProducer(strings).send({
        messages: [
          { topic, value: 'record', headers: text as never },
          { topic, value: 'map', headers: asStrings },
        ],
      });
    });
    request.end();
    expect(asStrings.size).toBe(4);
    for (const wire of await received(topic, 3)) {
      const names = wire.map(([k]) => k);
      expect(names.filter((k) => k.toLowerCase() === 'traceparent')).toEqual(['traceparent']);
      expect(names.filter((k) => k.toLowerCase() === 'tracestate')).toEqual([]);
      expect(names.filter((k) => k.toLowerCase() === 'baggage')).toEqual([]);
      expect(wire).toContainEqual(['app', 'a']);
      const traceparent = wire.find(([k]) => k === 'traceparent')?.[1];
      expect(traceparent?.split('-')[1]).toBe(request.spanContext().traceId);
    }
  });
});

describe('@platformatic/kafka: a header record whose traceparent the client does not send', () => {
  it('an inherited or non-enumerable traceparent is not taken as the caller’s context: the message carries the send span’s, and the span links to nothing', async () => {
    const [topic] = (await createTopics(1)) as [string];
    await sleep(1000);
    const inherited = Object.create({ traceparent: STALE }) as Record<string, string>;
    inherited.app = 'a';
    const hidden: Record<string, string> = { app: 'a' };
    Object.defineProperty(hidden, 'traceparent', { value: STALE, enumerable: false });
    const strings = traceProducer(stringProducer({ clientId: 'hdrfix' }));
    await strings.send({ messages: [{ topic, value: 'inherited', headers: inherited }] });
    await strings.send({ messages: [{ topic, value: 'hidden', headers: hidden }] });
    const sends = tracing.current.spans().filter((s) => s.name.startsWith('send '));
    expect(sends).toHaveLength(2);
    const wire = await received(topic, 2);
    sends.forEach((send, i) => {
      expect(send.links).toEqual([]);
      expect(wire[i]).toEqual([
        ['app', 'a'],
        ['traceparent', `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`],
      ]);
    });
  });
});
