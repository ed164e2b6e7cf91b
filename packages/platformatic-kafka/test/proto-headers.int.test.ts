import { deadLetterMessage, traceProducer } from '@hoptrace/platformatic-kafka';
import { sleep, useTestTracing } from '@hoptrace/test-kit';
import { type Message, Producer } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, rawMessages, runCleanup, stringProducer } from './helpers.ts';

useTestTracing();
afterEach(runCleanup);
const NAMES = ['__proto__', 'constructor', 'hasOwnProperty'] as const;

/** Header names and texts but the propagation fields, in wire order. */
function texts(message: Message<Buffer, Buffer, Buffer, Buffer> | undefined): [string, string][] {
  return [...(message?.headers ?? [])]
    .map(([k, v]): [string, string] => [k.toString(), v.toString()])
    .filter(([k]) => k !== 'traceparent' && !k.startsWith('hoptrace-'));
}

describe('@platformatic/kafka: headers named __proto__, constructor, hasOwnProperty', () => {
  it('a traced send (Buffer-keyed Map, string Map, record) carries them as a raw send does', async () => {
    const [rawTopic, tracedTopic] = (await createTopics(2)) as [string, string];
    await sleep(1000);
    const buffers = () => new Map(NAMES.map((n) => [Buffer.from(n), Buffer.from(`v-${n}`)]));
    const strings = () => new Map(NAMES.map((n) => [n as string, `v-${n}`]));
    const record = () => {
      const out: Record<string, string> = {};
      for (const n of NAMES) Object.defineProperty(out, n, { value: `v-${n}`, enumerable: true });
      return out;
    };
    for (const [topic, wrap] of [
      [rawTopic, <P>(p: P) => p],
      [tracedTopic, <P>(p: P) => traceProducer(p as never) as P],
    ] as const) {
      const b = new Producer({ clientId: 'hdrfix', bootstrapBrokers: brokers() });
      cleanup.push(() => b.close());
      await wrap(b).send({ messages: [{ topic, value: Buffer.from('1'), headers: buffers() }] });
      const s = wrap(stringProducer({ clientId: 'hdrfix' }));
      await s.send({ messages: [{ topic, value: '2', headers: strings() }] });
      await s.send({ messages: [{ topic, value: '3', headers: record() as never }] });
    }
    const raw = (await rawMessages(rawTopic, 3)).map(texts);
    const traced = (await rawMessages(tracedTopic, 3)).map(texts);
    expect(traced).toEqual(raw);
    for (const wire of traced) expect(wire.map(([k]) => k)).toEqual([...NAMES]);
  });

  it('deadLetterMessage keeps them and its copy sends', async () => {
    const [orders, dlq] = (await createTopics(2)) as [string, string];
    await sleep(1000);
    const producer = traceProducer(new Producer({ clientId: 'hdrfix', bootstrapBrokers: brokers() }));
    cleanup.push(() => producer.close());
    const headers = new Map(NAMES.map((n) => [Buffer.from(n), Buffer.from(`v-${n}`)]));
    await producer.send({ messages: [{ topic: orders, value: Buffer.from('v'), headers }] });
    const [failed] = await rawMessages(orders, 1);
    const copy = deadLetterMessage(failed as Message<Buffer, Buffer, Buffer, Buffer>, new Error('boom'));
    await producer.send({ messages: [{ ...copy, topic: dlq }] });
    const [dead] = await rawMessages(dlq, 1);
    expect(texts(dead)).toEqual(NAMES.map((n) => [n, `v-${n}`]));
  });
});
