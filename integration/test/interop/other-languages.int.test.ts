import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { traceChannel } from '@hoptrace/amqp';
import { traceKafka } from '@hoptrace/kafka';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/platformatic-kafka';
import { brokerEndpoint, parentSpanId, until, useTestTracing } from '@hoptrace/test-kit';
import {
  ensureJava,
  ensureKafkaJars,
  ensureMavenJar,
  kafkaVersion,
  type MavenJar,
} from '@hoptrace/test-kit/harness';
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import amqplib from 'amqplib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kafkajsClient, newTopic } from './helpers.ts';

// hoptrace on one side, a service written in Java on the other (the official Kafka and RabbitMQ
// Java clients, in a JVM of their own, on the real brokers). The Java peers hold no OpenTelemetry
// library: they write and read the W3C headers as Java OpenTelemetry puts them on the wire (UTF-8
// text), so the trace crosses languages through the standard headers alone, both ways.
const tracing = useTestTracing({ leakGraceMs: 5000 });
const spans = (): ReadableSpan[] => tracing.current.spans();

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

/** The official RabbitMQ Java client and its one runtime dependency, pinned (Maven Central). */
const RABBIT_JARS: MavenJar[] = [
  {
    groupId: 'com.rabbitmq',
    artifactId: 'amqp-client',
    version: '5.26.0',
    sha1: 'e2bb667eb2878704f1bd82d069f38530727e45a2',
  },
  {
    groupId: 'org.slf4j',
    artifactId: 'slf4j-api',
    version: '1.7.36',
    sha1: '6c62681a2f655b49963a5983b8b0950a6120ae14',
  },
];

const JAVA_SOURCES = fileURLToPath(new URL('./fixtures/java/', import.meta.url));

// A JVM starts and compiles its source in seconds (about 1 s on an idle machine, more on a busy
// one). A peer run may take up to PEER_TIMEOUT (it gives up by itself after 40 s), well inside a
// test's time; finding Java and the jars (a download on a fresh machine) has its own hook time.
const PEER_TIMEOUT = 60_000;
const JAVA_TEST_TIMEOUT = 120_000;
const SETUP_TIMEOUT = 600_000;

/** A header as a Java peer printed it: its value decoded as UTF-8, and its raw bytes in hex. */
interface JavaHeader {
  key: string;
  /** The Java type of an AMQP header value (`LongString`, `byte[]`); absent on Kafka. */
  type?: string;
  value: string | null;
  hex: string | null;
}

/**
 * Runs a Java peer (`fixtures/java/<source>`) with the single-file source launcher and returns what
 * it printed after `marker` on each line, parsed. Fails with the peer's output when it fails.
 */
async function javaPeer<T>(source: string, classpath: string, marker: string, args: string[]): Promise<T[]> {
  const java = await ensureJava();
  // A peer that hangs fails the test with its output (PEER_TIMEOUT); cleanup kills one left running.
  const abort = new AbortController();
  cleanup.push(async () => abort.abort());
  const { stdout } = await promisify(execFile)(
    java,
    ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', classpath, join(JAVA_SOURCES, source), ...args],
    { timeout: PEER_TIMEOUT, signal: abort.signal },
  );
  const prefix = `${marker} `;
  return stdout
    .split('\n')
    .filter((line) => line.startsWith(prefix))
    .map((line) => JSON.parse(line.slice(prefix.length)) as T);
}

/** A context as a Java service would have it when it sends: its own span, a tracestate and baggage. */
function javaContext() {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return {
    traceId,
    spanId,
    traceparent: `00-${traceId}-${spanId}-01`,
    tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
    // Java OpenTelemetry percent-encodes baggage values: `café ☕`.
    baggage: 'tenant.id=acme,note=caf%C3%A9%20%E2%98%95',
  };
}

const BAGGAGE = { 'tenant.id': 'acme', note: 'café ☕' };

/** The baggage entries of `ctx` as a plain object. */
function baggageOf(ctx: Context): Record<string, string> {
  return Object.fromEntries(
    (propagation.getBaggage(ctx)?.getAllEntries() ?? []).map(([key, entry]) => [key, entry.value]),
  );
}

/** What a traced consumer saw inside its handler: the active span and the baggage. */
interface Seen {
  spanId: string | undefined;
  baggage: Record<string, string>;
}
const seeHere = (): Seen => ({
  spanId: trace.getActiveSpan()?.spanContext().spanId,
  baggage: baggageOf(context.active()),
});

/**
 * Our one span (`process {destination}`, CONSUMER) continues the Java peer's context: its trace, its
 * span as the remote parent, its tracestate; the handler ran inside it and saw the baggage, which is
 * also on the span (`baggageAttributes`).
 */
function expectContinuesJava(
  destination: string,
  ctx: ReturnType<typeof javaContext>,
  seen: Seen | undefined,
): void {
  const all = spans();
  expect(
    all.map((s) => s.name),
    'exactly one span: our process span',
  ).toEqual([`process ${destination}`]);
  const ours = all[0] as ReadableSpan;
  expect(ours.kind).toBe(SpanKind.CONSUMER);
  expect(ours.spanContext().traceId).toBe(ctx.traceId);
  expect(parentSpanId(ours)).toBe(ctx.spanId);
  expect(ours.parentSpanContext?.isRemote).toBe(true);
  expect(ours.spanContext().traceState?.serialize()).toBe(ctx.tracestate);
  expect(ours.attributes['tenant.id']).toBe('acme');
  expect(ours.attributes.note).toBe('café ☕');
  expect(seen?.spanId, 'the handler ran inside the process span').toBe(ours.spanContext().spanId);
  expect(seen?.baggage).toEqual(BAGGAGE);
}

/**
 * A context our side sends from: the `request` span's parent is a remote span with a tracestate,
 * and the baggage of {@link BAGGAGE}, so all three W3C headers go on the wire.
 */
function requestParent(): Context {
  const remote: SpanContext = {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('rojo=00f067aa0ba902b7'),
  };
  const bag = propagation.createBaggage(
    Object.fromEntries(Object.entries(BAGGAGE).map(([key, value]) => [key, { value }])),
  );
  return propagation.setBaggage(trace.setSpanContext(ROOT_CONTEXT, remote), bag);
}

/** Runs `fn` inside a `request` span under {@link requestParent}; returns the request span's context. */
async function inRequest(fn: () => Promise<unknown>): Promise<SpanContext> {
  return trace.getTracer('test').startActiveSpan('request', {}, requestParent(), async (span) => {
    await fn();
    span.end();
    return span.spanContext();
  });
}

/**
 * The headers the Java peer read carry our send span's context, as plain UTF-8 text: `traceparent`
 * is `00-<trace id>-<send span id>-01`, with the tracestate and baggage of the request. Also checks
 * the spans: exactly `request` and one send span (PRODUCER), its child.
 */
function expectJavaSawOurSend(headers: JavaHeader[], request: SpanContext): void {
  const all = spans();
  expect(all.map((s) => s.kind).sort(), 'exactly two spans: request and our send span').toEqual([
    SpanKind.INTERNAL,
    SpanKind.PRODUCER,
  ]);
  const send = all.find((s) => s.kind === SpanKind.PRODUCER);
  expect(send?.spanContext().traceId).toBe(request.traceId);
  expect(parentSpanId(send as ReadableSpan)).toBe(request.spanId);
  expect(headers.map((h) => h.key).sort(), 'the W3C headers, each once, nothing else').toEqual([
    'baggage',
    'traceparent',
    'tracestate',
  ]);
  const byKey = new Map(headers.map((h) => [h.key, h]));
  const traceparent = `00-${request.traceId}-${send?.spanContext().spanId}-01`;
  const expected = {
    traceparent,
    tracestate: 'rojo=00f067aa0ba902b7',
    baggage: 'tenant.id=acme,note=caf%C3%A9%20%E2%98%95',
  };
  for (const [key, value] of Object.entries(expected)) {
    const header = byKey.get(key);
    expect(header?.value, `${key} as Java decodes it`).toBe(value);
    expect(header?.hex, `${key}: plain UTF-8 bytes, no other encoding`).toBe(
      Buffer.from(value, 'utf8').toString('hex'),
    );
  }
}

describe('Kafka: hoptrace and a Java service using kafka-clients', { timeout: JAVA_TEST_TIMEOUT }, () => {
  let kafkaClasspath: string;
  const bootstrap = () => brokerEndpoint('kafka').brokers.join(',');
  beforeAll(async () => {
    await ensureJava();
    kafkaClasspath = join(await ensureKafkaJars(kafkaVersion()), '*');
  }, SETUP_TIMEOUT);

  /** Sends one record from the Java producer with the headers of `ctx`. */
  async function javaProduces(topic: string, ctx: ReturnType<typeof javaContext>): Promise<void> {
    const sent = await javaPeer<{ offset: number }>('KafkaPeer.java', kafkaClasspath, 'SENT', [
      'produce',
      bootstrap(),
      topic,
      ctx.traceparent,
      ctx.tracestate,
      ctx.baggage,
    ]);
    expect(sent).toEqual([{ topic, partition: 0, offset: 0 }]);
  }

  /** The headers of the one record the Java consumer read from `topic`. */
  async function javaConsumes(topic: string): Promise<JavaHeader[]> {
    const records = await javaPeer<{ value: string; headers: JavaHeader[] }>(
      'KafkaPeer.java',
      kafkaClasspath,
      'RECORD',
      ['consume', bootstrap(), topic, '1'],
    );
    expect(records.map((r) => r.value)).toEqual(['from-hoptrace']);
    return records[0]?.headers ?? [];
  }

  const baggageAttributes = ['tenant.id', 'note'];

  it('Java producer -> our kafkajs consumer: the process span continues the Java span', async () => {
    const topic = await newTopic('hoptrace-java');
    const ctx = javaContext();
    await javaProduces(topic, ctx);
    const consumer = traceKafka(kafkajsClient('interop-java'), { baggageAttributes }).consumer({
      groupId: `java-${randomUUID()}`,
      maxWaitTimeInMs: 100,
    });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let seen: Seen | undefined;
    await consumer.run({
      eachMessage: async () => {
        seen = seeHere();
      },
    });
    await until(() => spans().some((s) => s.name === `process ${topic}`), 'our process span', 30_000);
    expectContinuesJava(topic, ctx, seen);
  });

  it('Java producer -> our @platformatic/kafka consumer: the process span continues the Java span', async () => {
    const topic = await newTopic('hoptrace-java');
    const ctx = javaContext();
    await javaProduces(topic, ctx);
    const consumer = traceConsumer(
      new Consumer({
        clientId: 'interop-java',
        groupId: `java-${randomUUID()}`,
        bootstrapBrokers: brokerEndpoint('kafka').brokers,
        maxWaitTime: 100,
        deserializers: stringDeserializers,
      }),
      { baggageAttributes },
    );
    cleanup.push(() => consumer.close(true));
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    cleanup.push(() => stream.close());
    let seen: Seen | undefined;
    for await (const message of stream) {
      seen = withMessageContext(message, seeHere);
      break; // ends the process span
    }
    expectContinuesJava(topic, ctx, seen);
  });

  it('our kafkajs producer -> Java consumer: the traceparent header names our send span, in UTF-8', async () => {
    const topic = await newTopic('hoptrace-java');
    const producer = traceKafka(kafkajsClient('interop-java')).producer();
    cleanup.push(() => producer.disconnect());
    await producer.connect();
    const request = await inRequest(() => producer.send({ topic, messages: [{ value: 'from-hoptrace' }] }));
    expectJavaSawOurSend(await javaConsumes(topic), request);
  });

  it('our @platformatic/kafka producer -> Java consumer: the traceparent header names our send span, in UTF-8', async () => {
    const topic = await newTopic('hoptrace-java');
    const producer = traceProducer(
      new Producer({
        clientId: 'interop-java',
        bootstrapBrokers: brokerEndpoint('kafka').brokers,
        serializers: stringSerializers,
      }),
    );
    cleanup.push(() => producer.close());
    const request = await inRequest(() => producer.send({ messages: [{ topic, value: 'from-hoptrace' }] }));
    expectJavaSawOurSend(await javaConsumes(topic), request);
  });
});

describe('RabbitMQ: hoptrace and a Java service using amqp-client', { timeout: JAVA_TEST_TIMEOUT }, () => {
  let rabbitClasspath: string;
  const url = () => brokerEndpoint('rabbitmq').url;
  beforeAll(async () => {
    await ensureJava();
    rabbitClasspath = (await Promise.all(RABBIT_JARS.map((jar) => ensureMavenJar(jar)))).join(delimiter);
  }, SETUP_TIMEOUT);

  /** A traced channel (amqplib) and a fresh queue, both removed after the test. */
  async function tracedQueue() {
    const connection = await amqplib.connect(url());
    cleanup.push(() => connection.close());
    const channel = traceChannel(await connection.createConfirmChannel(), {
      baggageAttributes: ['tenant.id', 'note'],
    });
    const queue = `hoptrace-java-${randomUUID()}`;
    await channel.assertQueue(queue, { durable: false });
    cleanup.push(() => channel.deleteQueue(queue));
    return { channel, queue };
  }

  // The Java client writes a String header as an AMQP long string ('S'), which amqplib hands over as
  // a string, and a byte[] as a byte array ('x'), which amqplib hands over as a Buffer.
  it.each([
    ['string', 'string'],
    ['bytes', 'Buffer'],
  ] as const)(
    'Java publisher (%s headers) -> our consumer: the process span continues the Java span',
    async (form, arrives) => {
      const { channel, queue } = await tracedQueue();
      const ctx = javaContext();
      const published = await javaPeer<{ headers: string }>('RabbitPeer.java', rabbitClasspath, 'PUBLISHED', [
        'publish',
        url(),
        queue,
        form,
        ctx.traceparent,
        ctx.tracestate,
        ctx.baggage,
      ]);
      expect(published).toEqual([{ queue, headers: form }]);
      let seen: Seen | undefined;
      let types: string[] = [];
      await channel.consume(queue, (message) => {
        if (!message) return;
        seen = seeHere();
        const headers = message.properties.headers ?? {};
        types = ['traceparent', 'tracestate', 'baggage'].map((key) => {
          const value: unknown = headers[key];
          return Buffer.isBuffer(value) ? 'Buffer' : typeof value;
        });
        channel.ack(message); // ends the process span
      });
      await until(() => spans().some((s) => s.kind === SpanKind.CONSUMER), 'our process span', 30_000);
      expect(types, 'how amqplib handed the headers over').toEqual([arrives, arrives, arrives]);
      expectContinuesJava(queue, ctx, seen);
    },
  );

  it('our publisher -> Java consumer: the traceparent header names our send span, in UTF-8', async () => {
    const { channel, queue } = await tracedQueue();
    const request = await inRequest(async () => {
      channel.sendToQueue(queue, Buffer.from('from-hoptrace'));
      await channel.waitForConfirms();
    });
    const messages = await javaPeer<{ body: string; headers: JavaHeader[] }>(
      'RabbitPeer.java',
      rabbitClasspath,
      'MESSAGE',
      ['consume', url(), queue, '1'],
    );
    expect(messages.map((m) => m.body)).toEqual(['from-hoptrace']);
    const headers = messages[0]?.headers ?? [];
    // amqplib writes string header values as AMQP long strings, which the Java client reads as LongString.
    expect(headers.filter((h) => h.key === 'traceparent').map((h) => h.type)).toEqual(['LongString']);
    expectJavaSawOurSend(headers, request);
  });
});
