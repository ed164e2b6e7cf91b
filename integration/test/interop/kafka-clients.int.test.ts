import { randomUUID } from 'node:crypto';
import { memoryLogger, type Pipeline, startPipeline } from '@hoptrace/integration/pipeline';
import * as kafkajsAdapter from '@hoptrace/kafka';
import * as pltAdapter from '@hoptrace/platformatic-kafka';
import {
  brokerEndpoint,
  onlySpan,
  parentSpanId,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { propagation, ROOT_CONTEXT, type Span, SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import type { IHeaders, Consumer as JsConsumer, Kafka, KafkaMessage } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { orderTrace } from '../pipeline/helpers.ts';
import { kafkajsClient, newTopic } from './helpers.ts';

// A fleet half on kafkajs (@hoptrace/kafka) and half on @platformatic/kafka
// (@hoptrace/platformatic-kafka), on one real broker: every message keeps one trace whichever
// client sent it and whichever received it, and the wire carries the same standard headers.
const tracing = useTestTracing({ leakGraceMs: 5000 });
const spans = (): ReadableSpan[] => tracing.current.spans();
const brokers = (): string[] => brokerEndpoint('kafka').brokers;

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

const kafkajs = (): Kafka => kafkajsClient('interop-kafkajs');

/** Sends inside a `request` span carrying `tenant.id` baggage; returns the request span's context. */
async function inRequest(send: () => Promise<unknown>): Promise<{ traceId: string; spanId: string }> {
  const bag = propagation.createBaggage({ 'tenant.id': { value: 'acme' } });
  return trace
    .getTracer('test')
    .startActiveSpan('request', {}, propagation.setBaggage(ROOT_CONTEXT, bag), async (span: Span) => {
      await send();
      span.end();
      return span.spanContext();
    });
}

/** Reads one message with a raw (untraced) kafkajs consumer: the headers exactly as on the wire. */
async function rawHeaders(topic: string): Promise<Record<string, string>> {
  const consumer: JsConsumer = kafkajs().consumer({ groupId: `raw-${randomUUID()}`, maxWaitTimeInMs: 100 });
  cleanup.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen: KafkaMessage | undefined;
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen ??= message;
    },
  });
  await until(() => seen !== undefined, 'the raw read');
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(seen?.headers ?? {})) out[name] = String(value);
  return out;
}

function expectOneTrace(request: { traceId: string; spanId: string }, topic: string): void {
  const send = onlySpan(spans(), `send ${topic}`);
  const process = onlySpan(spans(), `process ${topic}`);
  expect(send.kind).toBe(SpanKind.PRODUCER);
  expect(process.kind).toBe(SpanKind.CONSUMER);
  for (const span of [send, process]) expect(span.spanContext().traceId).toBe(request.traceId);
  expect(parentSpanId(send)).toBe(request.spanId);
  expect(parentSpanId(process)).toBe(send.spanContext().spanId);
  // Same attribute names whichever adapter made the span.
  expect(process.attributes).toMatchObject({
    'messaging.system.name': 'kafka',
    'messaging.operation.name': 'process',
    'messaging.operation.type': 'process',
    'messaging.destination.name': topic,
    'messaging.destination.partition.id': '0',
    'kafka.offset': 0,
    'kafka.message.key': 'o-1',
    'tenant.id': 'acme',
  });
  expect(process.attributes['messaging.consumer.group.name']).toMatch(/^interop-/);
  expect(spans()).toHaveLength(3);
}

describe('kafkajs and @platformatic/kafka in one fleet', () => {
  it('kafkajs producer (@hoptrace/kafka) -> @platformatic/kafka consumer: one trace', async () => {
    const topic = await newTopic('hoptrace-interop');
    const producer = kafkajsAdapter.traceProducer(kafkajs().producer(), { captureKeys: true });
    await producer.connect();
    cleanup.push(() => producer.disconnect());
    const request = await inRequest(() => producer.send({ topic, messages: [{ key: 'o-1', value: 'v' }] }));

    const consumer = pltAdapter.traceConsumer(
      new Consumer({
        clientId: 'interop-plt',
        groupId: `interop-${randomUUID()}`,
        bootstrapBrokers: brokers(),
        deserializers: stringDeserializers,
        maxWaitTime: 100,
      }),
      { captureKeys: true, baggageAttributes: ['tenant.id'] },
    );
    cleanup.push(() => consumer.close(true));
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    let active: string | undefined;
    for await (const message of stream) {
      pltAdapter.withMessageContext(message, () => {
        active = trace.getActiveSpan()?.spanContext().spanId;
      });
      break;
    }
    expectOneTrace(request, topic);
    expect(active).toBe(onlySpan(spans(), `process ${topic}`).spanContext().spanId);
  });

  it('@platformatic/kafka producer -> kafkajs consumer (@hoptrace/kafka): one trace', async () => {
    const topic = await newTopic('hoptrace-interop');
    const producer = pltAdapter.traceProducer(
      new Producer({ clientId: 'interop-plt', bootstrapBrokers: brokers(), serializers: stringSerializers }),
      { captureKeys: true },
    );
    cleanup.push(() => producer.close());
    const request = await inRequest(() => producer.send({ messages: [{ topic, key: 'o-1', value: 'v' }] }));

    const consumer = kafkajsAdapter.traceConsumer(
      kafkajs().consumer({ groupId: `interop-${randomUUID()}`, maxWaitTimeInMs: 100 }),
      { captureKeys: true, baggageAttributes: ['tenant.id'] },
    );
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let active: string | undefined;
    await consumer.run({
      eachMessage: async () => {
        active = trace.getActiveSpan()?.spanContext().spanId;
      },
    });
    await waitForSpans(spans, (all) => all.some((s) => s.name === `process ${topic}`));
    expectOneTrace(request, topic);
    expect(active).toBe(onlySpan(spans(), `process ${topic}`).spanContext().spanId);
  });

  it('both adapters put the same standard headers on the wire', async () => {
    const [jsTopic, pltTopic] = [await newTopic('hoptrace-interop'), await newTopic('hoptrace-interop')];
    const jsProducer = kafkajsAdapter.traceProducer(kafkajs().producer());
    await jsProducer.connect();
    cleanup.push(() => jsProducer.disconnect());
    const pltProducer = pltAdapter.traceProducer(
      new Producer({ clientId: 'interop-plt', bootstrapBrokers: brokers() }),
    );
    cleanup.push(() => pltProducer.close());
    const headers: IHeaders = { app: 'x' };
    await inRequest(() => jsProducer.send({ topic: jsTopic, messages: [{ value: 'v', headers }] }));
    await inRequest(() =>
      pltProducer.send({
        messages: [
          {
            topic: pltTopic,
            value: Buffer.from('v'),
            headers: new Map([[Buffer.from('app'), Buffer.from('x')]]),
          },
        ],
      }),
    );
    const fromJs = await rawHeaders(jsTopic);
    const fromPlt = await rawHeaders(pltTopic);
    expect(Object.keys(fromPlt).sort()).toEqual(Object.keys(fromJs).sort());
    expect(Object.keys(fromPlt).sort()).toEqual(['app', 'baggage', 'traceparent']);
    for (const wire of [fromJs, fromPlt]) {
      expect(wire.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(wire.baggage).toBe('tenant.id=acme');
    }
    // Each traceparent names its own send span.
    expect(fromPlt.traceparent).toBe(
      `00-${onlySpan(spans(), `send ${pltTopic}`).spanContext().traceId}-${onlySpan(spans(), `send ${pltTopic}`).spanContext().spanId}-01`,
    );
  });
});

describe('a null header value from another client (Kafka allows it; kafkajs receives but cannot send it)', () => {
  it("@platformatic/kafka sends a null header -> kafkajs consumer fails -> deadLetterMessage's copy is sendable by kafkajs and keeps the other headers", async () => {
    const topic = await newTopic('hoptrace-interop-kjstx-null');
    const dlt = await newTopic('hoptrace-interop-kjstx-null-dlt');
    const pltProducer = new Producer({ clientId: 'interop-plt', bootstrapBrokers: brokers() });
    cleanup.push(() => pltProducer.close());
    await pltProducer.send({
      messages: [
        {
          topic,
          value: Buffer.from('v'),
          headers: new Map<Buffer, Buffer | null>([
            [Buffer.from('app'), Buffer.from('x')],
            [Buffer.from('empty'), null],
          ]) as Map<Buffer, Buffer>,
        },
      ],
    });
    const client = kafkajsAdapter.traceKafka(kafkajs());
    const producer = client.producer();
    await producer.connect();
    cleanup.push(() => producer.disconnect());
    const consumer = client.consumer({ groupId: `interop-${randomUUID()}`, maxWaitTimeInMs: 100 });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let received: IHeaders | undefined;
    let dead: unknown;
    await consumer.run({
      eachMessage: async (payload) => {
        if (dead !== undefined) return;
        received = payload.message.headers;
        try {
          throw new Error('handler failed');
        } catch (error) {
          dead = await producer
            .send({ topic: dlt, messages: [kafkajsAdapter.deadLetterMessage(payload, error)] })
            .then(
              () => 'sent',
              (e: unknown) => e,
            );
        }
      },
    });
    await until(() => dead !== undefined, 'the dead-letter send');
    // kafkajs hands the null header out as null, and the copy made of it must go out.
    expect(received?.empty).toBeNull();
    expect(dead).toBe('sent');
    const wire = await rawHeaders(dlt);
    expect(wire.app).toBe('x');
    expect(wire['hoptrace-error-type']).toBe('Error');
  });
});

describe("each Kafka adapter refuses the other library's clients at wrap time", () => {
  it('real clients of each library: accepted by their own adapter, refused by the other', async () => {
    const js = kafkajsClient('client-checks');
    const jsProducer = js.producer();
    const jsConsumer = js.consumer({ groupId: `client-checks-${randomUUID()}` });
    const bootstrapBrokers = brokerEndpoint('kafka').brokers;
    const pltProducer = new Producer({ clientId: 'client-checks', bootstrapBrokers });
    const pltConsumer = new Consumer({
      clientId: 'client-checks',
      groupId: `client-checks-${randomUUID()}`,
      bootstrapBrokers,
    });
    try {
      expect(kafkajsAdapter.traceProducer(jsProducer)).not.toBe(jsProducer);
      expect(kafkajsAdapter.traceConsumer(jsConsumer)).not.toBe(jsConsumer);
      expect(pltAdapter.traceProducer(pltProducer)).not.toBe(pltProducer);
      expect(pltAdapter.traceConsumer(pltConsumer)).not.toBe(pltConsumer);
      expect(() => kafkajsAdapter.traceProducer(pltProducer as never)).toThrow(
        /^Expected `producer` to be a kafkajs Producer, got a Producer without sendBatch\(\)$/,
      );
      expect(() => kafkajsAdapter.traceConsumer(pltConsumer as never)).toThrow(
        /^Expected `consumer` to be a kafkajs Consumer, got a Consumer without run\(\)$/,
      );
      expect(() => pltAdapter.traceProducer(jsProducer as never)).toThrow(
        /^Expected `producer` to be a @platformatic\/kafka Producer, got an object without close\(\)$/,
      );
      expect(() => pltAdapter.traceConsumer(jsConsumer as never)).toThrow(
        /^Expected `consumer` to be a @platformatic\/kafka Consumer, got an object without consume\(\)$/,
      );
      // the kafkajs Kafka client is neither a producer nor a consumer
      expect(() => kafkajsAdapter.traceProducer(js as never)).toThrow(
        /^Expected `producer` to be a kafkajs Producer/,
      );
      expect(() => pltAdapter.traceProducer(js as never)).toThrow(
        /^Expected `producer` to be a @platformatic\/kafka Producer/,
      );
    } finally {
      await Promise.allSettled([pltProducer.close(), pltConsumer.close()]);
    }
  });
});

describe('the order pipeline with its Kafka hops on @platformatic/kafka', () => {
  let pipeline: Pipeline;
  beforeAll(async () => {
    pipeline = await startPipeline({
      endpoints: {
        kafka: brokerEndpoint('kafka'),
        rabbitmq: brokerEndpoint('rabbitmq'),
        redis: brokerEndpoint('redis'),
      },
      logger: memoryLogger().logger,
      kafkaClient: 'platformatic',
    });
  });
  afterAll(async () => {
    await pipeline?.stop();
  });

  it('keeps one trace from the request to the BullMQ worker', async () => {
    const { traceId, done } = await pipeline.placeOrder({ id: 'order-plt', tenant: 'acme', items: 2 });
    await expect(done).resolves.toEqual({ orderId: 'order-plt', status: 'fulfilled', attempts: 1 });
    await waitForSpans(spans, (all) => all.filter((s) => s.spanContext().traceId === traceId).length >= 7);
    const t = orderTrace(spans(), traceId, pipeline.names);
    expect(t.kafkaProcess.attributes['messaging.consumer.group.name']).toBe(pipeline.names.stockGroup);
    expect(t.kafkaSend.attributes['kafka.message.key']).toBe('order-plt');
    expect(spans().filter((s) => s.spanContext().traceId === traceId)).toHaveLength(7);
  });
});
