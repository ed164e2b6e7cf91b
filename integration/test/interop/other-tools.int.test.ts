import { randomUUID } from 'node:crypto';
import { traceQueue } from '@hoptrace/bullmq';
import { traceKafka } from '@hoptrace/kafka';
import { withMessageContext } from '@hoptrace/platformatic-kafka';
import { brokerEndpoint, parentSpanId, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { kafkajsClient, newTopic, type PeerBroker, type PeerSpan, runPeer, useCleanup } from './helpers.ts';
import * as our from './our-clients.ts';

// hoptrace on one side, another tool in another process on the other: the OpenTelemetry contrib
// instrumentations (kafkajs, amqplib, registered at require time), @platformatic/kafka-opentelemetry
// (diagnostics channels) and BullMQ's own telemetry (bullmq-otel). Through the standard headers every message keeps one trace, both ways.
const tracing = useTestTracing({ leakGraceMs: 5000 });
const spans = (): ReadableSpan[] => tracing.current.spans();
const cleanup = useCleanup();

/** Runs the peer process (traced by the other tool) and returns the spans it exported. */
const peer = async (
  broker: PeerBroker,
  role: 'produce' | 'consume',
  destination: string,
): Promise<PeerSpan[]> => (await runPeer(cleanup, broker, role, destination)).spans;

function only<T>(items: T[], what: string): T {
  expect(items, what).toHaveLength(1);
  return items[0] as T;
}

/** Our one span of `kind` (the test made exactly one). */
const ourOnly = (kind: SpanKind, what: string): ReadableSpan =>
  only(
    spans().filter((s) => s.kind === kind),
    what,
  );

/** Our one span named `name` (the test made exactly one). */
const ourNamed = (name: string, what: string): ReadableSpan =>
  only(
    spans().filter((s) => s.name === name),
    what,
  );

/** Runs `fn` inside a `request` span; returns what it returns and the span's ids. */
async function inRequest<T>(fn: () => Promise<T>): Promise<{ traceId: string; spanId: string }> {
  return trace.getTracer('test').startActiveSpan('request', async (span) => {
    await fn();
    span.end();
    return span.spanContext();
  });
}

/** The peer's producer span continued by hoptrace's consumer span `ours`: same trace, its parent. */
function expectContinues(ours: ReadableSpan, peerSpans: PeerSpan[]): void {
  const request = only(
    peerSpans.filter((s) => s.name === 'peer-request'),
    'the peer request span',
  );
  const producers = peerSpans.filter((s) => s.kind === SpanKind.PRODUCER && s.traceId === request.traceId);
  expect(producers.length, 'the peer made a producer span in its request trace').toBeGreaterThan(0);
  expect(ours.spanContext().traceId).toBe(request.traceId);
  expect(producers.map((s) => s.spanId)).toContain(parentSpanId(ours));
}

/** hoptrace's send span `send` continued by the peer's consumer span: same trace, its parent. */
function expectPeerContinues(peerSpans: PeerSpan[], send: ReadableSpan): void {
  const consumers = peerSpans.filter((s) => s.kind === SpanKind.CONSUMER);
  expect(consumers.length, 'the peer made a consumer span').toBeGreaterThan(0);
  for (const consumer of consumers) {
    expect(consumer.traceId).toBe(send.spanContext().traceId);
    expect(consumer.parentSpanId).toBe(send.spanContext().spanId);
  }
}

const kafka = () => kafkajsClient('interop-tools');

describe('Kafka: @hoptrace/kafka and @opentelemetry/instrumentation-kafkajs in another process', () => {
  it('their producer -> our consumer: our process span is a child of their send span', async () => {
    const topic = await newTopic('hoptrace-tools');
    const peerSpans = await peer('kafka', 'produce', topic);
    const consumer = await our.kafkajsConsumer(cleanup, traceKafka(kafka()), [topic]);
    let received = 0;
    await consumer.run({
      eachMessage: async () => {
        received++;
      },
    });
    await until(() => received === 1 && spans().some((s) => s.name === `process ${topic}`), 'the message');
    expectContinues(ourNamed(`process ${topic}`, 'our process span'), peerSpans);
  });

  it('our producer -> their consumer: their process span is a child of our send span', async () => {
    const topic = await newTopic('hoptrace-tools');
    const producer = await our.kafkajsProducer(cleanup, traceKafka(kafka()));
    const request = await inRequest(() => producer.send({ topic, messages: [{ value: 'from-hoptrace' }] }));
    const send = ourNamed(`send ${topic}`, 'our send span');
    expect(send.spanContext().traceId).toBe(request.traceId);
    expectPeerContinues(await peer('kafka', 'consume', topic), send);
  });
});

describe('Kafka: @hoptrace/platformatic-kafka and @platformatic/kafka-opentelemetry in another process', () => {
  it('their producer -> our consumer: our process span is a child of their send span', async () => {
    const topic = await newTopic('hoptrace-tools');
    const peerSpans = await peer('platformatic', 'produce', topic);
    for await (const message of await our.platformaticStream(cleanup, topic)) {
      await withMessageContext(message, async () => undefined);
      break;
    }
    expectContinues(ourNamed(`process ${topic}`, 'our process span'), peerSpans);
  });

  it('our producer -> their consumer: their process span is a child of our send span', async () => {
    const topic = await newTopic('hoptrace-tools');
    const producer = our.platformaticProducer(cleanup);
    await inRequest(() => producer.send({ messages: [{ topic, value: 'from-hoptrace' }] }));
    const send = ourNamed(`send ${topic}`, 'our send span');
    expectPeerContinues(await peer('platformatic', 'consume', topic), send);
  });
});

describe('RabbitMQ: @hoptrace/amqp and @opentelemetry/instrumentation-amqplib in another process', () => {
  it('their publisher -> our consumer: our process span is a child of their publish span', async () => {
    const queue = `hoptrace-tools-${randomUUID()}`;
    const { ch: traced } = await our.amqpChannel(cleanup, [queue]);
    const peerSpans = await peer('amqp', 'produce', queue);
    let received = 0;
    await traced.consume(queue, (message) => {
      if (message) traced.ack(message);
      received++;
    });
    await until(() => received === 1 && spans().some((s) => s.kind === SpanKind.CONSUMER), 'the delivery');
    expectContinues(ourOnly(SpanKind.CONSUMER, 'our process span'), peerSpans);
  });

  it('our publisher -> their consumer: their process span is a child of our send span', async () => {
    const queue = `hoptrace-tools-${randomUUID()}`;
    const { ch: traced } = await our.amqpChannel(cleanup, [queue]);
    await inRequest(async () => traced.sendToQueue(queue, Buffer.from('from-hoptrace')));
    const send = ourOnly(SpanKind.PRODUCER, 'our send span');
    expectPeerContinues(await peer('amqp', 'consume', queue), send);
  });
});

describe("BullMQ: @hoptrace/bullmq and BullMQ's own telemetry (bullmq-otel) in another process", () => {
  const connection = () => brokerEndpoint('redis');

  it('their queue -> our worker: our process span is a child of their add span', async () => {
    const name = `hoptrace-tools-${randomUUID()}`;
    const peerSpans = await peer('bullmq', 'produce', name);
    our.dropAfter(cleanup, new Queue(name, { connection: connection() }));
    let processed = 0;
    our.bullmqWorker(cleanup, name, async () => {
      processed++;
    });
    await until(() => processed === 1 && spans().some((s) => s.kind === SpanKind.CONSUMER), 'the job');
    expectContinues(ourOnly(SpanKind.CONSUMER, 'our process span'), peerSpans);
  });

  it('our queue -> their worker: their process span is a child of our add span', async () => {
    const name = `hoptrace-tools-${randomUUID()}`;
    const queue = our.dropAfter(cleanup, traceQueue(new Queue(name, { connection: connection() })));
    await inRequest(() => queue.add('from-hoptrace', { n: 1 }));
    const send = ourOnly(SpanKind.PRODUCER, 'our send span');
    expectPeerContinues(await peer('bullmq', 'consume', name), send);
  });
});
