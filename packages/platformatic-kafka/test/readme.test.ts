import { readFileSync } from 'node:fs';
import { traceConsumer, traceProducer, withBatchContext } from '@hoptrace/platformatic-kafka';
import { useTestTracing } from '@hoptrace/test-kit';
import { describe, expect, it } from 'vitest';
import { fakeConsumer, fakeProducer, message } from './fakes.ts';

const tracing = useTestTracing();
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** The span names in the first column of the README's span table (under `## Spans`). */
function readmeSpanNames(): Set<string> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## Spans');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const cell = /^\|\s*`([^`]+)`\s*\|/.exec(line);
    if (cell) names.add(cell[1] as string);
  }
  return names;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('the README names the spans the code emits', () => {
  it('every span name in the README table is emitted, and every emitted name is in the table', async () => {
    const documented = readmeSpanNames();
    expect(documented.size).toBeGreaterThanOrEqual(3);

    const plain = traceProducer(fakeProducer().producer);
    await plain.send({ messages: [{ topic: 't', value: 'one' }] });
    await plain.send({
      messages: [{ topic: 't', value: 'mine', headers: new Map([['traceparent', TRACEPARENT]]) }],
    });
    await plain.send({
      messages: [
        { topic: 't', value: 'a' },
        { topic: 'u', value: 'b' },
      ],
    });
    const creating = traceProducer(fakeProducer().producer, { createSpans: true });
    await creating.send({
      messages: [
        { topic: 't', value: 'c' },
        { topic: 't', value: 'd' },
      ],
    });

    const perMessage = fakeConsumer();
    const stream = await traceConsumer(perMessage.consumer).consume();
    stream.on('data', () => undefined);
    perMessage.stream.emit('data', message(new Map([['traceparent', TRACEPARENT]])));
    await tick();

    const batched = fakeConsumer();
    const batchStream = await traceConsumer(batched.consumer, { batchSpans: 'batch' }).consume();
    const received: object[] = [];
    batchStream.on('data', (m: object) => received.push(m));
    batched.stream.emit('data', message(new Map([['traceparent', TRACEPARENT]]), 1n));
    await tick();
    withBatchContext(received, () => undefined);

    const committed = await plain.beginTransaction();
    await committed.addOffset({ topic: 't' });
    await committed.commit();
    await (await plain.beginTransaction()).abort();

    // Emitted names with the topic put back as the README's placeholder.
    const emitted = new Set(tracing.current.spans().map((s) => s.name.replace(/ (t|u)$/, ' {topic}')));
    expect([...emitted].sort()).toEqual([...documented].sort());
  });
});
