import { EventEmitter } from 'node:events';
import { traceKafka } from '@hoptrace/kafka';
import { describe, expect, it } from 'vitest';
import { newKafka } from './helpers.ts';

type Mode = 'raw' | 'traced';

describe('kafkajs instrumentation listeners (producer.on / consumer.on)', () => {
  it('get the same `this` with and without hoptrace: kafkajs calls them without a `this`', async () => {
    const run = async (mode: Mode) => {
      const kafka = mode === 'raw' ? newKafka('thisfix') : traceKafka(newKafka('thisfix'));
      const producer = kafka.producer();
      const seen: string[] = [];
      const remove = producer.on(producer.events.CONNECT, function (this: unknown) {
        seen.push(
          `connect:${String(this === producer)}:${String(this instanceof EventEmitter)}:${typeof this}`,
        );
      });
      await producer.connect();
      remove();
      await producer.disconnect();
      await producer.connect();
      await producer.disconnect();
      return seen;
    };
    const raw = await run('raw');
    expect(raw).toEqual(['connect:false:false:undefined']);
    expect(await run('traced')).toEqual(raw);
  });
});
