import { readFileSync } from 'node:fs';
import { traceConsumer, traceProducer } from '@hoptrace/kafka';
import { useTestTracing } from '@hoptrace/test-kit';
import { describe, expect, it } from 'vitest';
import { batchPayload, fakeConsumer, fakeProducer, message } from './helpers.ts';

const tracing = useTestTracing();

/** The span names in the first column of the README's span table (under `## Spans`). */
function readmeSpanNames(): Set<string> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(
    readme.indexOf('\n## Spans'),
    readme.indexOf('\n### ', readme.indexOf('\n## Spans')),
  );
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const cell = /^\|\s*`([^`]+)`\s*\|/.exec(line);
    if (cell) names.add(cell[1] as string);
  }
  return names;
}

describe('12.18 the README names the spans the code emits', () => {
  it('every span name in the README table is emitted, and every emitted name is in the table', async () => {
    const documented = readmeSpanNames();
    expect(documented.size).toBeGreaterThanOrEqual(6);

    const fake = fakeProducer();
    const producer = traceProducer(fake.producer, { createSpans: true });
    await producer.send({ topic: 't', messages: [{ value: 'one' }] });
    await producer.send({ topic: 't', messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.send({
      topic: 't',
      messages: [
        { value: 'c', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } },
      ],
    });
    await producer.sendBatch({
      topicMessages: [
        { topic: 't', messages: [{ value: 'd' }] },
        { topic: 'u', messages: [{ value: 'e' }] },
      ],
    });
    const committed = await producer.transaction();
    await committed.send({ topic: 't', messages: [{ value: 'f' }] });
    await committed.sendOffsets({
      consumerGroupId: 'g',
      topics: [{ topic: 't', partitions: [{ partition: 0, offset: '1' }] }],
    });
    await committed.commit();
    const aborted = await producer.transaction();
    await aborted.abort();

    for (const batchSpans of ['message', 'batch'] as const) {
      const consumer = fakeConsumer();
      await traceConsumer(consumer.consumer, { batchSpans }).run({
        eachMessage: async () => undefined,
        eachBatch: async () => undefined,
      });
      await consumer.config?.eachMessage?.({
        topic: 't',
        partition: 0,
        message: message(0),
        heartbeat: async () => undefined,
        pause: () => () => undefined,
      });
      await consumer.config?.eachBatch?.(batchPayload('t', [message(1), message(2)]).payload);
    }

    const emitted = new Set(tracing.current.spans().map((span) => span.name.replace(/ (t|u)$/, ' {topic}')));
    expect([...emitted].sort()).toEqual([...documented].sort());
  });
});
