import { traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { useTestTracing } from '@hoptrace/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { createTopics, runCleanup, streamOf, stringConsumer, stringProducer } from './helpers.ts';

useTestTracing();
afterEach(runCleanup);

class OrderMessage {
  readonly #id: string;
  readonly #topic: string;
  constructor(topic: string, id: string) {
    this.#topic = topic;
    this.#id = id;
  }
  get topic(): string {
    return this.#topic;
  }
  get key(): string {
    return this.#id;
  }
  get value(): string {
    return JSON.stringify({ id: this.#id });
  }
}

describe('messages whose fields are getters (class instances)', () => {
  it('reach the broker with their topic, key and value, as with a raw producer', async () => {
    const [topic] = (await createTopics()) as [string];
    const raw = stringProducer();
    await raw.send({ messages: [new OrderMessage(topic, 'raw') as never] });
    const producer = traceProducer(stringProducer());
    let error: unknown;
    try {
      await producer.send({ messages: [new OrderMessage(topic, 'traced') as never] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeUndefined();
    const stream = await streamOf(traceConsumer(stringConsumer()), [topic]);
    const got: string[] = [];
    for await (const message of stream) {
      got.push(`${message.key}=${message.value}`);
      if (got.length === 2) break;
    }
    expect(got).toEqual(['raw={"id":"raw"}', 'traced={"id":"traced"}']);
  });
});
