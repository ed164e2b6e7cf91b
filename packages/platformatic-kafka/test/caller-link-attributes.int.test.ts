import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
} from '@hoptrace/core/adapter';
import { traceProducer } from '@hoptrace/platformatic-kafka';
import { onlySpan, parentSpanId, useTestTracing } from '@hoptrace/test-kit';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { createTopics, runCleanup, stringProducer } from './helpers.ts';

const tracing = useTestTracing();
afterEach(runCleanup);

describe('a multi-message send whose messages carry their own contexts (semconv-audit)', () => {
  it("puts each message's attributes on its link, as @hoptrace/kafka does", async () => {
    const [topic] = (await createTopics(1, 2)) as [string];
    const producer = traceProducer(stringProducer(), { captureKeys: true });
    const tracer = trace.getTracer('test');
    const upstream = [tracer.startSpan('upstream-1'), tracer.startSpan('upstream-2')];
    for (const s of upstream) s.end();
    const traceparent = (i: number) =>
      `00-${upstream[i]?.spanContext().traceId}-${upstream[i]?.spanContext().spanId}-01`;
    const request = tracer.startSpan('request');
    await context.with(trace.setSpan(context.active(), request), () =>
      producer.send({
        messages: [
          {
            topic,
            key: 'k1',
            value: 'v1',
            partition: 3,
            headers: new Map([['traceparent', traceparent(0)]]),
          },
          {
            topic,
            key: 'k2',
            value: null as unknown as string,
            headers: new Map([['traceparent', traceparent(1)]]),
          },
        ],
      }),
    );
    request.end();
    const send = onlySpan(tracing.current.spans(), `send ${topic}`);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parentSpanId(send)).toBe(request.spanContext().spanId);
    expect(send.attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT]).toBe(2);
    // The span is about two messages: no per-message attribute on it.
    expect(send.attributes[ATTR_KAFKA_MESSAGE_KEY]).toBeUndefined();
    expect(send.attributes[ATTR_KAFKA_MESSAGE_TOMBSTONE]).toBeUndefined();
    expect(send.links.map((l) => l.context.spanId)).toEqual(upstream.map((s) => s.spanContext().spanId));
    // Per message, on its link: key and tombstone; never the partition asked for (the client maps
    // partition 3 of a 2-partition topic onto partition 1).
    expect(send.links.map((l) => l.attributes)).toEqual([
      { [ATTR_KAFKA_MESSAGE_KEY]: 'k1' },
      { [ATTR_KAFKA_MESSAGE_KEY]: 'k2', [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true },
    ]);
    for (const link of send.links)
      expect(link.attributes?.[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBeUndefined();
    expect(
      tracing.current
        .spans()
        .map((s) => s.name)
        .sort(),
    ).toEqual(['request', `send ${topic}`, 'upstream-1', 'upstream-2'].sort());
  });

  it('with legacyAttributes, the links carry the older names too', async () => {
    const [topic] = (await createTopics(1, 1)) as [string];
    const producer = traceProducer(stringProducer(), { captureKeys: true, legacyAttributes: true });
    const upstream = trace.getTracer('test').startSpan('upstream');
    upstream.end();
    const { traceId, spanId } = upstream.spanContext();
    const headers = () => new Map([['traceparent', `00-${traceId}-${spanId}-01`]]);
    await producer.send({
      messages: [
        { topic, key: 'k1', value: 'v1', headers: headers() },
        { topic, key: 'k2', value: null as unknown as string, headers: headers() },
      ],
    });
    const send = onlySpan(tracing.current.spans(), `send ${topic}`);
    expect(send.links.map((l) => l.context.spanId)).toEqual([spanId, spanId]);
    expect(send.links.map((l) => l.attributes)).toEqual([
      { [ATTR_KAFKA_MESSAGE_KEY]: 'k1', 'messaging.kafka.message.key': 'k1' },
      {
        [ATTR_KAFKA_MESSAGE_KEY]: 'k2',
        'messaging.kafka.message.key': 'k2',
        [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true,
        'messaging.kafka.message.tombstone': true,
      },
    ]);
  });
});
