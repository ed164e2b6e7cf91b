import { ERROR_SHUTDOWN, endOpenSpans } from '@hoptrace/core';
import { ATTR_ERROR_TYPE } from '@hoptrace/core/adapter';
import {
  traceConsumer,
  traceProducer,
  withBatchContext,
  withMessageContext,
} from '@hoptrace/platformatic-kafka';
import {
  deferred,
  metricPoints,
  onlySpan,
  spansNamed,
  TestMetricReader,
  until,
  useTestTracing,
} from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createTopics, runCleanup, streamOf, stringConsumer, stringProducer } from './helpers.ts';

const tracing = useTestTracing();

afterEach(runCleanup);

function spans(): ReadableSpan[] {
  return tracing.current.spans();
}

function expectShutdown(span: ReadableSpan | undefined): void {
  expect(span?.status.code).toBe(SpanStatusCode.ERROR);
  expect(span?.attributes[ATTR_ERROR_TYPE]).toBe(ERROR_SHUTDOWN);
}

describe('endOpenSpans (process shutdown) on @platformatic/kafka', () => {
  let release = deferred();
  afterEach(() => release.resolve());

  it("message mode, a data listener still running: its message's span ends once with shutdown; the listener finishes and the next message gets its own span", async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    await producer.send({ messages: [{ topic, value: 'held' }] });
    const stream = await streamOf(traceConsumer(stringConsumer()), [topic]);
    release = deferred();
    const started = deferred();
    const seen: string[] = [];
    stream.on('data', async (message: { value: string }) => {
      if (message.value === 'held') {
        started.resolve();
        await release.promise;
      }
      seen.push(message.value);
    });
    await started.promise;
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${topic}`]);
    expect(endOpenSpans()).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
    const held = onlySpan(spans(), `process ${topic}`);
    expectShutdown(held);

    release.resolve();
    await producer.send({ messages: [{ topic, value: 'next' }] });
    await until(() => seen.length === 2, 'both messages handled');
    expect(seen).toEqual(['held', 'next']);
    await until(() => spansNamed(spans(), `process ${topic}`).length === 2, 'the next span');
    const processes = spansNamed(spans(), `process ${topic}`);
    expect(processes.filter((s) => s.attributes[ATTR_ERROR_TYPE] === ERROR_SHUTDOWN)).toEqual([held]);
    expect(processes.find((s) => s !== held)?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("batch mode: a withMessageContext span and a withBatchContext span still running end once with shutdown; the callbacks' values reach the caller unchanged", async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({ messages: [{ topic, value: 'held' }] });
    const stream = await streamOf(traceConsumer(stringConsumer(), { batchSpans: 'batch' }), [topic]);
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) throw new Error('no message');
    expect(tracing.current.openSpans()).toEqual([]);
    release = deferred();
    const inMessage = withMessageContext(first.value, async () => {
      await release.promise;
      return 'message done';
    });
    const inBatch = withBatchContext([first.value], async () => {
      await release.promise;
      return 'batch done';
    });
    expect(tracing.current.openSpans()).toHaveLength(2);
    expect(endOpenSpans()).toBe(2);
    expect(tracing.current.openSpans()).toEqual([]);
    const ended = spansNamed(spans(), `process ${topic}`);
    expect(ended).toHaveLength(2);
    for (const span of ended) expectShutdown(span);

    release.resolve();
    expect(await inMessage).toBe('message done');
    expect(await inBatch).toBe('batch done');
    await iterator.return?.();
    expect(spansNamed(spans(), `process ${topic}`)).toEqual(ended);
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it("message mode, a held message whose withMessageContext failed: the span ends once at shutdown with that failure's error.type (as at a close)", async () => {
    const [topic] = (await createTopics()) as [string];
    await traceProducer(stringProducer()).send({ messages: [{ topic, value: 'held' }] });
    const stream = await streamOf(traceConsumer(stringConsumer()), [topic]);
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) throw new Error('no message');
    const failure = new RangeError('handler failed');
    await expect(
      withMessageContext(first.value, async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`process ${topic}`]);
    expect(endOpenSpans()).toBe(1);
    const process = onlySpan(spans(), `process ${topic}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(process.attributes[ATTR_ERROR_TYPE]).toBe('RangeError');
    await iterator.return?.();
    expect(spansNamed(spans(), `process ${topic}`)).toEqual([process]);
  });

  it('a producer stream send waiting for its batch ends once with shutdown; the batch flushes later and the delivery reports are unchanged', async () => {
    const [topic] = (await createTopics()) as [string];
    const producer = traceProducer(stringProducer());
    const stream = producer.asStream({ batchSize: 2, batchTime: 60_000, reportMode: 'message' });
    const reports: unknown[] = [];
    stream.on('delivery-report', (report: { message: unknown }) => reports.push(report.message));
    const flushed = new Promise<void>((resolve) => stream.once('flush', () => resolve()));
    const first = { topic, value: 'buffered' };
    const second = { topic, value: 'after' };
    stream.write(first as never);
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`send ${topic}`]);
    expect(endOpenSpans()).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
    const held = onlySpan(spans(), `send ${topic}`);
    expectShutdown(held);

    stream.write(second as never);
    await flushed;
    await until(() => reports.length === 2, 'both delivery reports');
    expect(reports[0]).toBe(first);
    expect(reports[1]).toBe(second);
    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(2);
    expect(sends.filter((s) => s.attributes[ATTR_ERROR_TYPE] === ERROR_SHUTDOWN)).toEqual([held]);
    expect(sends.find((s) => s !== held)?.status.code).toBe(SpanStatusCode.UNSET);
    stream.end();
    await new Promise((resolve) => stream.once('close', resolve));
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it('a transactional send held until commit ends once with shutdown, its duration recorded once; the commit works and the message is read committed', async () => {
    const [topic] = (await createTopics()) as [string];
    const reader = new TestMetricReader();
    const producer = traceProducer(
      stringProducer({ idempotent: true, transactionalId: `hoptrace-shutrev-tx-${topic}` }),
      { meterProvider: new MeterProvider({ readers: [reader] }) },
    );
    const transaction = await producer.beginTransaction();
    await transaction.send({ messages: [{ topic, value: 'in-tx' }] });
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual([`send ${topic}`]);
    expect(endOpenSpans()).toBe(1);
    const held = onlySpan(spans(), `send ${topic}`);
    expectShutdown(held);
    expect(held.attributes['hoptrace.kafka.transaction.outcome']).toBeUndefined();

    await transaction.commit();
    expect(onlySpan(spans(), `send ${topic}`)).toBe(held);
    expect(held.attributes['hoptrace.kafka.transaction.outcome']).toBeUndefined();
    const stream = await streamOf(stringConsumer(), [topic]);
    const read: string[] = [];
    stream.on('data', (m: { value: string }) => read.push(m.value));
    await until(() => read.length === 1, 'the committed message');
    expect(read).toEqual(['in-tx']);
    // Recorded when the send had its outcome (before the shutdown), as the send's duration: once.
    const durations = (await metricPoints(reader, 'messaging.client.operation.duration')).filter(
      (p) => p.attributes['messaging.operation.name'] === 'send',
    );
    expect(durations).toHaveLength(1);
    expect((durations[0]?.value as { count: number } | undefined)?.count).toBe(1);
    expect(durations[0]?.attributes[ATTR_ERROR_TYPE]).toBeUndefined();
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it('a send in flight ends once with shutdown, its duration recorded once as shutdown; its result reaches the caller unchanged', async () => {
    const [topic] = (await createTopics()) as [string];
    const reader = new TestMetricReader();
    const producer = traceProducer(stringProducer(), {
      meterProvider: new MeterProvider({ readers: [reader] }),
    });
    await producer.send({ messages: [{ topic, value: 'warm-up' }] });
    const pending = producer.send({ messages: [{ topic, value: 'in-flight' }] });
    const open = tracing.current.openSpans();
    expect(open.map((s) => s.name)).toEqual([`send ${topic}`]);
    expect(endOpenSpans()).toBe(1);
    const result = await pending;
    expect(result.offsets?.[0]?.offset).toBe(1n);
    const sends = spansNamed(spans(), `send ${topic}`);
    expect(sends).toHaveLength(2);
    expect(sends.filter((s) => s.attributes[ATTR_ERROR_TYPE] === ERROR_SHUTDOWN)).toHaveLength(1);
    const durations = await metricPoints(reader, 'messaging.client.operation.duration');
    const count = (type: unknown) =>
      durations
        .filter((p) => p.attributes[ATTR_ERROR_TYPE] === type)
        .reduce((n, p) => n + (p.value as { count: number }).count, 0);
    expect(count(undefined)).toBe(1); // the warm-up
    expect(count(ERROR_SHUTDOWN)).toBe(1);
    expect(tracing.current.openSpans()).toEqual([]);
  });
});
