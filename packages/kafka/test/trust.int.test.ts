import { randomUUID } from 'node:crypto';
import {
  ATTR_HOPTRACE_BUDGET_EXCEEDED,
  ATTR_HOPTRACE_HOP,
  HOP_TRACESTATE_KEY,
  METRIC_HOPTRACE_TIME_IN_QUEUE,
} from '@hoptrace/core';
import { ATTR_MESSAGING_CONSUMER_GROUP_NAME, ATTR_MESSAGING_DESTINATION_NAME } from '@hoptrace/core/adapter';
import { traceConsumer, traceKafka, withMessageContext } from '@hoptrace/kafka';
import {
  onlySpan,
  parentSpanId,
  spansNamed,
  TestMetricReader,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { context, defaultTextMapGetter, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();
const clients = useKafkaClients();
const spans = (): ReadableSpan[] => tracing.current.spans();

describe('12.10 consumers created inside an active span', () => {
  it.each(['link', 'root'] as const)(
    'relation %s: process spans never parent to the span active at creation (eachMessage and batch mode)',
    async (relation) => {
      const kafka = traceKafka(newKafka(), { relation, batchSpans: 'batch' });
      const [topic, batchTopic] = (await createTopics(kafka, 2)) as [string, string];
      const producer = await clients.producer(kafka.producer());
      const startup = trace.getTracer('app').startSpan('app.startup');
      const startupContext = trace.setSpan(context.active(), startup);
      await context.with(startupContext, async () => {
        const consumer = await clients.consumer(
          kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }),
          [topic],
        );
        await consumer.run({ eachMessage: async () => undefined });
        const batches = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
          batchTopic,
        ]);
        await batches.run({
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) withMessageContext(m, () => undefined);
          },
        });
      });
      startup.end();
      await producer.send({ topic, messages: [{ value: '1' }, { value: '2' }] });
      await producer.send({ topic: batchTopic, messages: [{ value: '3' }] });
      const all = await waitForSpans(
        spans,
        (s) =>
          spansNamed(s, `process ${topic}`).length === 2 &&
          spansNamed(s, `process ${batchTopic}`).length === 2,
      );
      const startupId = startup.spanContext();
      const processSpans = [
        ...spansNamed(all, `process ${topic}`),
        ...spansNamed(all, `process ${batchTopic}`),
      ];
      for (const span of processSpans) expect(span.spanContext().traceId).not.toBe(startupId.traceId);
      // Roots of their own (never the startup span, never the send span); under 'link' the batch
      // message's own span is a child of the batch span, the processing context hoptrace controls.
      const batchProcesses = spansNamed(all, `process ${batchTopic}`);
      const batchSpan = batchProcesses.find((s) => s.attributes['messaging.batch.message_count'] === 1);
      if (!batchSpan) throw new Error('no batch span');
      const [messageSpan] = batchProcesses.filter((s) => s !== batchSpan) as [ReadableSpan];
      for (const span of [...spansNamed(all, `process ${topic}`), batchSpan]) {
        expect(parentSpanId(span)).toBeUndefined();
      }
      expect(parentSpanId(messageSpan)).toBe(
        relation === 'link' ? batchSpan.spanContext().spanId : undefined,
      );
      // Each process span (the eachMessage ones, the batch span and the batch message's own span)
      // links to the send span that created its message, and to nothing else.
      const send = onlySpan(all, `send ${topic}`);
      const batchSend = onlySpan(all, `send ${batchTopic}`);
      for (const span of spansNamed(all, `process ${topic}`)) {
        expect(span.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
        expect(span.links[0]?.context.traceId).toBe(send.spanContext().traceId);
      }
      for (const span of spansNamed(all, `process ${batchTopic}`)) {
        expect(span.links.map((l) => l.context.spanId)).toEqual([batchSend.spanContext().spanId]);
      }
      // Two eachMessage spans, each a trace of its own (not one growing trace).
      const [a, b] = spansNamed(all, `process ${topic}`) as [ReadableSpan, ReadableSpan];
      expect(a.spanContext().traceId).not.toBe(b.spanContext().traceId);
    },
  );
});

describe('12.11 hop budget through a five-hop relay that forwards consumed headers', () => {
  it('counts every hop and starts a new linked trace after maxHops', async () => {
    const maxHops = 3;
    const kafka = traceKafka(newKafka(), { traceBudget: { maxHops } });
    const topics = await createTopics(kafka, 6);
    const producer = await clients.producer(kafka.producer());
    const seenHeaders: IHeaders[] = [];
    // Hop i consumes topics[i] and forwards the message, with the headers it was consumed with, to
    // topics[i + 1]; a sink reads the last topic. All join their groups at once.
    const hop = async (i: number) => {
      const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
        topics[i] as string,
      ]);
      await consumer.run({
        eachMessage: async ({ message }: { message: KafkaMessage }) => {
          await producer.send({
            topic: topics[i + 1] as string,
            messages: [{ value: message.value, headers: message.headers ?? {} }],
          });
        },
      });
    };
    const sink = async () => {
      const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
        topics[5] as string,
      ]);
      await consumer.run({
        eachMessage: async ({ message }) => {
          seenHeaders.push(message.headers ?? {});
        },
      });
    };
    await Promise.all([0, 1, 2, 3, 4].map(hop).concat(sink()));
    const root = trace.getTracer('app').startSpan('request');
    await context.with(trace.setSpan(context.active(), root), () =>
      producer.send({ topic: topics[0] as string, messages: [{ value: 'relay' }] }),
    );
    root.end();
    await until(() => seenHeaders.length === 1, 'the sink');
    const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topics[5]}`).length === 1);
    const hops = topics.map((topic) => onlySpan(all, `process ${topic}`)).slice(0, 5);
    const traceId = root.spanContext().traceId;
    // Hops 1..maxHops stay in the request's trace and count up.
    for (let i = 0; i < maxHops; i++) {
      const hop = hops[i] as ReadableSpan;
      expect(hop.spanContext().traceId).toBe(traceId);
      expect(hop.attributes[ATTR_HOPTRACE_HOP]).toBe(i + 1);
      expect(hop.spanContext().traceState?.get(HOP_TRACESTATE_KEY)).toBe(String(i + 1));
      expect(hop.attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED]).toBeUndefined();
    }
    // The first hop past the budget: a new trace, linked to the request's trace, flagged.
    const past = hops[maxHops] as ReadableSpan;
    const newTrace = past.spanContext().traceId;
    expect(newTrace).not.toBe(traceId);
    expect(parentSpanId(past)).toBeUndefined();
    expect(past.attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED]).toBe(true);
    expect(past.links.map((l) => l.context.traceId)).toEqual([traceId]);
    // Its relay sends the new trace (not the forwarded old one), so the next hop continues it, as hop 1.
    const relayed = onlySpan(all, `send ${topics[maxHops + 1]}`);
    expect(relayed.spanContext().traceId).toBe(newTrace);
    expect(parentSpanId(relayed)).toBe(past.spanContext().spanId);
    const next = hops[maxHops + 1] as ReadableSpan;
    expect(next.spanContext().traceId).toBe(newTrace);
    expect(parentSpanId(next)).toBe(relayed.spanContext().spanId);
    expect(next.attributes[ATTR_HOPTRACE_HOP]).toBe(1);
    expect(next.attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED]).toBeUndefined();
    // The sink gets the new trace with its hop counter, carried by the relay's forwarded headers.
    expect(String(seenHeaders[0]?.traceparent)).toContain(newTrace);
    expect(String(seenHeaders[0]?.tracestate)).toBe(`${HOP_TRACESTATE_KEY}=1`);
  });

  it.each([
    ['32 members', Array.from({ length: 32 }, (_, i) => `v${i}=${'x'.repeat(8)}`), 31],
    ['507 characters', Array.from({ length: 4 }, (_, i) => `v${i}=${'y'.repeat(123)}`), 3],
  ] as const)(
    "a full upstream tracestate (%s): the hop counter replaces its rightmost members, so every hop's tracestate stays within W3C limits and the count goes on",
    async (_label, vendors, kept) => {
      const kafka = traceKafka(newKafka(), { traceBudget: { maxHops: 10 } });
      const topics = (await createTopics(kafka, 3)) as [string, string, string];
      const producer = await clients.producer(kafka.producer());
      const raw = await clients.producer(newKafka().producer());
      const traceId = 'a'.repeat(32);
      // Hop 1 sends a new message (its span's context is injected); hop 2 forwards the consumed headers.
      const first = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
        topics[0],
      ]);
      await first.run({
        eachMessage: async ({ message }) => {
          await producer.send({ topic: topics[1], messages: [{ value: message.value }] });
        },
      });
      const second = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
        topics[1],
      ]);
      await second.run({
        eachMessage: async ({ message }) => {
          await producer.send({
            topic: topics[2],
            messages: [{ value: message.value, headers: message.headers ?? {} }],
          });
        },
      });
      const seen: IHeaders[] = [];
      const sink = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
        topics[2],
      ]);
      await sink.run({
        eachMessage: async ({ message }) => {
          seen.push(message.headers ?? {});
        },
      });
      await raw.send({
        topic: topics[0],
        messages: [
          {
            value: 'x',
            headers: { traceparent: `00-${traceId}-${'b'.repeat(16)}-01`, tracestate: vendors.join(',') },
          },
        ],
      });
      const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topics[2]}`).length === 1);
      const hops = topics.map((topic) => onlySpan(all, `process ${topic}`));
      for (const [i, hop] of hops.entries()) {
        expect(hop.spanContext().traceId).toBe(traceId);
        expect(hop.attributes[ATTR_HOPTRACE_HOP]).toBe(i + 1);
        // The newest member first, the upstream's members after it, the rightmost dropped (W3C 3.3.1.1).
        expect(hop.spanContext().traceState?.serialize()).toBe(
          [`${HOP_TRACESTATE_KEY}=${i + 1}`, ...vendors.slice(0, kept)].join(','),
        );
      }
      expect(parentSpanId(hops[1] as ReadableSpan)).toBe(
        onlySpan(all, `send ${topics[1]}`).spanContext().spanId,
      );
      expect(String(seen[0]?.tracestate)).toBe(
        [`${HOP_TRACESTATE_KEY}=2`, ...vendors.slice(0, kept)].join(','),
      );
    },
  );

  it('without a budget, a traced send writes no tracestate header', async () => {
    const kafka = traceKafka(newKafka());
    const [topic] = (await createTopics(kafka)) as [string];
    const producer = await clients.producer(kafka.producer());
    const raw = await clients.consumer(newKafka().consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
      topic,
    ]);
    const seen: IHeaders[] = [];
    await raw.run({
      eachMessage: async ({ message }) => {
        seen.push(message.headers ?? {});
      },
    });
    await producer.send({ topic, messages: [{ value: 'x' }] });
    await until(() => seen.length === 1, 'the raw consumer');
    expect(Object.keys(seen[0] ?? {})).toEqual(['traceparent']);
  });
});

/** The time-in-queue metric `reader` collected, if any. */
async function timeInQueueMetric(reader: TestMetricReader) {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === METRIC_HOPTRACE_TIME_IN_QUEUE);
}

describe('12.17 time in queue', () => {
  it('records hoptrace.messaging.time_in_queue from the Kafka message timestamp', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const raw = await clients.producer(kafka.producer());
    // A message created ten seconds before it is sent (the timestamp is the producer's to set).
    const created = Date.now() - 10_000;
    await raw.send({ topic, messages: [{ value: 'old', timestamp: String(created) }] });
    const group = groupId();
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: group }), { meterProvider }),
      [topic],
    );
    let processed = 0;
    await consumer.run({
      eachMessage: async () => {
        processed++;
      },
    });
    await until(() => processed === 1, 'the consumer');
    const metric = await timeInQueueMetric(reader);
    expect(metric?.descriptor.unit).toBe('s');
    expect(metric?.dataPoints).toHaveLength(1);
    const point = metric?.dataPoints[0] as {
      attributes: Record<string, unknown>;
      value: { count: number; min?: number };
    };
    expect(point.attributes[ATTR_MESSAGING_DESTINATION_NAME]).toBe(topic);
    expect(point.attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME]).toBe(group);
    expect(point.value.count).toBe(1);
    expect(point.value.min).toBeGreaterThanOrEqual(10);
  });

  it('records nothing for a timestamp no clock could have given: 1 s after the epoch, a day ahead', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const raw = await clients.producer(kafka.producer());
    await raw.send({
      topic,
      messages: [
        { value: 'epoch', timestamp: '1000' },
        { value: 'ahead', timestamp: String(Date.now() + 86_400_000) },
        { value: 'real', timestamp: String(Date.now() - 10_000) },
      ],
    });
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId() }), { meterProvider }),
      [topic],
    );
    let processed = 0;
    await consumer.run({
      eachMessage: async () => {
        processed++;
      },
    });
    await until(() => processed === 3, 'the consumer');
    const metric = await timeInQueueMetric(reader);
    const point = metric?.dataPoints[0] as { value: { count: number; min?: number; max?: number } };
    expect(metric?.dataPoints).toHaveLength(1);
    expect(point.value.count).toBe(1);
    expect(point.value.min).toBeGreaterThanOrEqual(10);
    expect(point.value.max).toBeLessThan(60);
  });

  it('a message kafkajs delivers again after its handler threw records its time in queue once, as RabbitMQ and BullMQ record a first delivery only', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const kafka = newKafka();
    const [topic] = (await createTopics(kafka)) as [string];
    const raw = await clients.producer(kafka.producer());
    await raw.send({ topic, messages: [{ value: 'retried', timestamp: String(Date.now() - 10_000) }] });
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId(), retry: { initialRetryTime: 50, retries: 5 } }), {
        meterProvider,
      }),
      [topic],
    );
    let calls = 0;
    await consumer.run({
      eachMessage: async () => {
        calls++;
        if (calls === 1) throw new Error('transient');
      },
    });
    await until(() => calls === 2, 'the redelivery');
    const metric = await timeInQueueMetric(reader);
    expect((metric?.dataPoints[0] as { value: { count: number } } | undefined)?.value.count).toBe(1);
  });

  it('a LogAppendTime topic: the broker’s append time replaces the producer’s (here implausible) timestamp, and the wait from it is recorded', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const kafka = newKafka();
    const topic = `hoptrace-kafka-todayrev-lat-${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const raw = await clients.producer(kafka.producer());
    const before = Date.now();
    await raw.send({ topic, messages: [{ value: 'v', timestamp: '1000' }] });
    const consumer = await clients.consumer(
      traceConsumer(kafka.consumer({ groupId: groupId() }), { meterProvider }),
      [topic],
    );
    const stamps: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        stamps.push(message.timestamp);
      },
    });
    await until(() => stamps.length === 1, 'the consumer');
    expect(Number(stamps[0])).toBeGreaterThanOrEqual(before - 1000);
    const metric = await timeInQueueMetric(reader);
    const point = metric?.dataPoints[0] as { value: { count: number; max?: number } } | undefined;
    expect(point?.value.count).toBe(1);
    expect(point?.value.max).toBeLessThan(60);
  });
});

describe('repeated tracestate and baggage headers (another client sends a list field more than once)', () => {
  it('joins them as W3C and OpenTelemetry do: every baggage entry and tracestate member reaches the handler', async () => {
    const kafka = traceKafka(newKafka());
    const [topic] = (await createTopics(kafka, 1)) as [string];
    // kafkajs writes an array value as one Kafka header per entry (as a Java producer calling
    // headers().add() twice does), and hands repeated headers back as an array.
    const raw = await clients.producer(newKafka().producer());
    const traceId = 'c'.repeat(32);
    const traceparent = `00-${traceId}-${'d'.repeat(16)}-01`;
    const seen: Array<{ baggage: string[]; traceState: string | undefined; wire: unknown }> = [];
    const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
      topic,
    ]);
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push({
          baggage: (propagation.getBaggage(context.active())?.getAllEntries() ?? []).map(
            ([key, entry]) => `${key}=${entry.value}`,
          ),
          traceState: trace.getSpanContext(context.active())?.traceState?.serialize(),
          wire: message.headers?.baggage,
        });
      },
    });
    await raw.send({
      topic,
      messages: [
        {
          value: 'x',
          headers: {
            traceparent,
            tracestate: ['vendor=a', 'other=b'],
            baggage: ['tenant.id=acme', 'region=eu'],
          },
        },
      ],
    });
    await until(() => seen.length === 1);
    const [got] = seen as [(typeof seen)[0]];
    expect(Array.isArray(got.wire)).toBe(true); // the broker really delivered two headers
    // What OpenTelemetry's W3C propagators read from the same headers as text.
    const otel = propagation.extract(
      ROOT_CONTEXT,
      { traceparent, tracestate: ['vendor=a', 'other=b'], baggage: ['tenant.id=acme', 'region=eu'] },
      defaultTextMapGetter,
    );
    expect(got.baggage).toEqual(
      propagation
        .getBaggage(otel)
        ?.getAllEntries()
        .map(([key, entry]) => `${key}=${entry.value}`),
    );
    expect(got.baggage).toEqual(['tenant.id=acme', 'region=eu']);
    expect(got.traceState).toBe(trace.getSpanContext(otel)?.traceState?.serialize());
    expect(got.traceState).toBe('vendor=a,other=b');
    expect(trace.getSpanContext(context.active())).toBeUndefined();
  });
});
