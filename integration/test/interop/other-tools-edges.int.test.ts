import { randomUUID } from 'node:crypto';
import { traceFlowProducer, traceQueue } from '@hoptrace/bullmq';
import { traceKafka, withMessageContext as withKafkaContext } from '@hoptrace/kafka';
import { traceProducer, withMessageContext } from '@hoptrace/platformatic-kafka';
import { brokerEndpoint, makePropagator, parentSpanId, until, useTestTracing } from '@hoptrace/test-kit';
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
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Producer, stringSerializers } from '@platformatic/kafka';
import { FlowProducer, Queue } from 'bullmq';
import type { Producer as KafkajsProducer } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  ids,
  incomingWith,
  kafkajsClient,
  newTopic,
  newTraceId,
  type PeerBroker,
  type PeerRun,
  type PeerSeen,
  type PeerSpan,
  runPeer,
  useCleanup,
  useParentBasedSampler,
  usePropagator,
} from './helpers.ts';
import * as our from './our-clients.ts';

// Edges of interop with other tools' instrumentations in another process (see other-tools.int.test.ts
// for the plain single-message cases): unsampled parents, several messages per send or batch,
// tracestate and baggage, re-publishes.
const tracing = useTestTracing({ leakGraceMs: 5000 });
const spans = (): ReadableSpan[] => tracing.current.spans();
const cleanup = useCleanup();

const peer = (...args: Parameters<typeof runPeer> extends [unknown, ...infer R] ? R : never) =>
  runPeer(cleanup, ...args);
/** Reads `count` messages' headers as text with a raw kafkajs consumer. */
const rawKafka = (topic: string, count: number) => our.rawKafkaHeaders(cleanup, topic, count);

/** A remote context (our own upstream caller) with the given flags, tracestate and baggage. */
function upstream(flags: '00' | '01', traceState?: string, baggage?: string): Context {
  const headers: Record<string, string> = {
    traceparent: `00-${newTraceId()}-${randomUUID().replaceAll('-', '').slice(0, 16)}-${flags}`,
  };
  if (traceState) headers.tracestate = traceState;
  let ctx = new W3CTraceContextPropagator().extract(ROOT_CONTEXT, headers, {
    get: (c, k) => (c as Record<string, string>)[k],
    keys: (c) => Object.keys(c as object),
  });
  if (baggage) {
    const bag = propagation.createBaggage(
      Object.fromEntries(
        baggage
          .split(',')
          .map((kv) => kv.split('='))
          .map(([k, v]) => [k, { value: v }]),
      ),
    );
    ctx = propagation.setBaggage(ctx, bag);
  }
  return ctx;
}

const useParentBased = () => useParentBasedSampler(tracing);

const kafka = () => kafkajsClient('interop-edges');
/** Our kafkajs relay of one message to `topic`. */
const relayTo = (producer: KafkajsProducer, topic: string) =>
  producer.send({ topic, messages: [{ value: 'relayed' }] });
const active = (): SpanContext | undefined => trace.getSpanContext(context.active());
const tp = (sc: { traceId: string; spanId: string }, flags: string) =>
  `00-${sc.traceId}-${sc.spanId}-${flags}`;

/** The span ids of the producer spans of a peer run. */
const theirSendIds = (run: PeerRun) =>
  new Set(run.spans.filter((s) => s.kind === SpanKind.PRODUCER).map((s) => s.spanId));

/**
 * Their unsampled messages (`theirs`: the traceparents we received): each of our handlers ran in that
 * trace, unsampled (`inHandler`), each of our relays (`relayed`: their traceparents) carries it on with
 * flags 00, and we recorded no span.
 */
function expectUnsampledRelays(
  theirs: string[],
  inHandler: (SpanContext | undefined)[],
  relayed: (string | undefined)[],
): void {
  for (const [i, header] of theirs.entries()) {
    const { traceId, flags } = ids(header);
    expect(flags).toBe('00');
    expect(inHandler[i]).toMatchObject({ traceId, traceFlags: TraceFlags.NONE });
    expect(relayed[i]).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
  }
  expect(spans()).toHaveLength(0);
}

/**
 * Their consumer of `destination` got our `count` messages sent in the unsampled `parent`: in its trace,
 * flags 0; we recorded no span, nor did the peer, but with `workerSpans` for the spans a BullMQ worker
 * makes outside any job (its stalled-job checker and its close: roots of new traces, sampled by the
 * peer's own ParentBased(AlwaysOn)), which must carry no job id and be neither in our trace nor the
 * child of any context, so a misread unsampled parent (a new sampled trace or ours sampled) still fails.
 */
async function expectPeerGetsUnsampled(
  broker: PeerBroker,
  destination: string,
  count: number,
  parent: Context,
  { workerSpans = false }: { workerSpans?: boolean } = {},
): Promise<PeerRun> {
  const run = await peer(broker, 'consume', destination, count);
  const traceId = trace.getSpanContext(parent)?.traceId;
  expect(run.seen).toHaveLength(count);
  for (const seen of run.seen) expect(seen).toMatchObject({ traceId, traceFlags: 0 });
  if (!workerSpans) expect(run.spans).toHaveLength(0);
  for (const span of run.spans) {
    expect(span.traceId, span.name).not.toBe(traceId);
    expect(span.parentSpanId, span.name).toBeUndefined();
    expect(span.attributes['bullmq.job.id'], span.name).toBeUndefined();
  }
  expect(spans()).toHaveLength(0);
  return run;
}

/**
 * Our process spans, each the child of the span its own message carried (`carried`: our process span
 * id -> the carried parent span id).
 */
function ourProcessSpansUnder(carried: Map<string, string>): ReadableSpan[] {
  const process = spans().filter((s) => s.kind === SpanKind.CONSUMER);
  for (const span of process) expect(parentSpanId(span)).toBe(carried.get(span.spanContext().spanId));
  return process;
}

/** Their consumer read our relay in the trace of `incoming`, with `traceState` and all their baggage. */
function expectPeerReadBoth(consumed: PeerRun, incoming: { traceparent: string }, traceState: string): void {
  expect(consumed.seen[0]).toMatchObject({
    traceId: ids(incoming.traceparent).traceId,
    traceState,
    baggage: { 'tenant.id': 'acme', secret: 's3' },
  });
}

describe('kafkajs: unsampled parents across @opentelemetry/instrumentation-kafkajs', () => {
  useParentBased();

  it('their unsampled producer -> our consumer: no span, their trace id (flags 00) flows to our relay send', async () => {
    const topic = await newTopic('edges');
    const relay = await newTopic('edges-relay');
    const peerRun = await peer('kafka', 'produce', topic, 2, { PEER_SAMPLED: '0' });
    expect(peerRun.spans).toHaveLength(0);
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    const inHandler: (SpanContext | undefined)[] = [];
    const theirs: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        theirs.push(String(message.headers?.traceparent));
        inHandler.push(active());
        await relayTo(producer, relay);
      },
    });
    await until(() => inHandler.length === 2, 'the messages');
    const relayed = await rawKafka(relay, 2);
    expectUnsampledRelays(
      theirs,
      inHandler,
      relayed.map((h) => h.traceparent),
    );
    // The second message took the fast path: its handler ran in the message's own context.
    expect(inHandler[1]?.spanId).toBe(theirs[1]?.split('-')[2]);
    expect(relayed[1]?.traceparent).toBe(theirs[1]);
  });

  it("their unsampled send of three -> our eachBatch: only the batch span (a new trace) records; each message's relay keeps its trace id unsampled", async () => {
    const topic = await newTopic('edges');
    const relay = await newTopic('edges-relay');
    await peer('kafka', 'produce', topic, 3, { PEER_SAMPLED: '0' });
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    const theirs: string[] = [];
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const message of batch.messages) {
          theirs.push(String(message.headers?.traceparent));
          await withKafkaContext(message, () => relayTo(producer, relay));
          resolveOffset(message.offset);
        }
      },
    });
    const relayed = await rawKafka(relay, 3);
    expect(theirs).toHaveLength(3);
    for (const [i, header] of theirs.entries()) {
      expect(ids(relayed[i]?.traceparent)).toMatchObject({ traceId: ids(header).traceId, flags: '00' });
    }
    await until(() => spans().length > 0, 'the batch span');
    const recorded = spans();
    expect(recorded.map((s) => s.name)).toEqual([`process ${topic}`]);
    expect(recorded[0]?.attributes['messaging.batch.message_count']).toBe(3);
    expect(new Set(recorded[0]?.links.map((l) => l.context.spanId))).toEqual(
      new Set(theirs.map((t) => ids(t).spanId)),
    );
  });

  it('our unsampled producer -> their consumer: flags 00, our trace id', async () => {
    const topic = await newTopic('edges');
    const producer = await our.kafkajsProducer(cleanup, traceKafka(kafka()));
    const parent = upstream('00');
    await context.with(parent, () => producer.send({ topic, messages: [{ value: 'x' }] }));
    await expectPeerGetsUnsampled('kafka', topic, 1, parent);
  });
});

describe('kafkajs: several messages per send and per batch across @opentelemetry/instrumentation-kafkajs', () => {
  it("their send of three -> our eachBatch: each process span is the child of its own message's send span", async () => {
    const topic = await newTopic('edges');
    const run = await peer('kafka', 'produce', topic, 3);
    const consumer = await our.kafkajsConsumer(cleanup, traceKafka(kafka()), [topic]);
    const parents = new Map<string, string>();
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const message of batch.messages) {
          const header = String(message.headers?.traceparent);
          parents.set(message.offset, header.split('-')[2] as string);
          resolveOffset(message.offset);
        }
      },
    });
    await until(
      () => parents.size === 3 && spans().filter((s) => s.kind === SpanKind.CONSUMER).length >= 3,
      'the batch',
    );
    const process = spans().filter(
      (s) => s.name === `process ${topic}` && s.attributes['kafka.offset'] !== undefined,
    );
    expect(process).toHaveLength(3);
    for (const span of process) {
      const offset = String(span.attributes['kafka.offset'] ?? span.attributes['messaging.kafka.offset']);
      expect(parentSpanId(span)).toBe(parents.get(offset));
    }
    expect(new Set(process.map(parentSpanId))).toEqual(theirSendIds(run));
  });

  it('our send of three -> their eachBatch: every message continues our send span', async () => {
    const topic = await newTopic('edges');
    const producer = await our.kafkajsProducer(cleanup, traceKafka(kafka()));
    await trace.getTracer('t').startActiveSpan('request', async (span) => {
      await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
      span.end();
    });
    const send = spans().filter((s) => s.kind === SpanKind.PRODUCER);
    expect(send).toHaveLength(1);
    const run = await peer('kafka', 'consume', topic, 3, { PEER_BATCH: '1' });
    expect(run.seen).toHaveLength(3);
    for (const seen of run.seen) expect(seen.headers.traceparent).toBe(tp(send[0]!.spanContext(), '01'));
    const theirs = run.spans.filter((s) => s.kind === SpanKind.CONSUMER);
    expect(theirs.length).toBeGreaterThan(0);
    for (const s of theirs) {
      const tied =
        s.parentSpanId === send[0]!.spanContext().spanId ||
        s.links.some((l) => l.spanId === send[0]!.spanContext().spanId);
      expect(tied || s.traceId === send[0]!.spanContext().traceId).toBe(true);
    }
  });
});

describe('kafkajs: tracestate and baggage across @opentelemetry/instrumentation-kafkajs', () => {
  it('their tracestate and baggage -> our consumer with a hop budget -> our relay -> their consumer: theirs kept, our member added', async () => {
    const topic = await newTopic('edges');
    const relay = await newTopic('edges-relay');
    const incoming = incomingWith('vendor=abc,other=x1', 'tenant.id=acme,secret=s3');
    const produced = await peer('kafka', 'produce', topic, 1, { PEER_INCOMING: JSON.stringify(incoming) });
    const theirSend = produced.spans.find((s) => s.kind === SpanKind.PRODUCER);
    expect(theirSend?.traceState).toBe('vendor=abc,other=x1');
    const client = traceKafka(kafka(), { traceBudget: { maxHops: 5 }, baggageAttributes: ['tenant.id'] });
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    let done = false;
    await consumer.run({
      eachMessage: async () => {
        await relayTo(producer, relay);
        done = true;
      },
    });
    await until(() => done && spans().some((s) => s.name === `send ${relay}`), 'the relay');
    const process = spans().find((s) => s.name === `process ${topic}`)!;
    expect(process.attributes['tenant.id']).toBe('acme');
    expect(process.attributes.secret).toBeUndefined();
    expect(parentSpanId(process)).toBe(theirSend?.spanId);
    const [wire] = await rawKafka(relay, 1);
    expect(wire?.tracestate?.split(',')).toEqual(['hoptrace=1', 'vendor=abc', 'other=x1']);
    expect(wire?.baggage?.split(',').sort()).toEqual(['secret=s3', 'tenant.id=acme']);
    expectPeerReadBoth(await peer('kafka', 'consume', relay, 1), incoming, 'hoptrace=1,vendor=abc,other=x1');
  });
});

describe('kafkajs: re-publishes across @opentelemetry/instrumentation-kafkajs', () => {
  it('our send -> their consumer forwards the consumed headers -> our consumer: parent is their forward send', async () => {
    const topic = await newTopic('edges');
    const back = await newTopic('edges-back');
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    await producer.send({ topic, messages: [{ value: 'x', headers: { app: 'kept' } }] });
    const run = await peer('kafka', 'consume', topic, 1, { PEER_FORWARD: back });
    const forward = run.spans.find((s) => s.kind === SpanKind.PRODUCER && s.name.includes(back));
    expect(forward).toBeDefined();
    const wire = await rawKafka(back, 1);
    expect(Object.keys(wire[0] ?? {}).sort()).toEqual(['app', 'traceparent']);
    const consumer = await our.kafkajsConsumer(cleanup, client, [back]);
    await consumer.run({ eachMessage: async () => undefined });
    await until(() => spans().some((s) => s.name === `process ${back}`), 'the forwarded message');
    expect(parentSpanId(spans().find((s) => s.name === `process ${back}`)!)).toBe(forward?.spanId);
  });

  it('their send -> our consumer forwards the consumed headers (Buffers) with our producer: one traceparent on the wire, their consumer continues', async () => {
    const topic = await newTopic('edges');
    const back = await newTopic('edges-back');
    await peer('kafka', 'produce', topic, 1);
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    let consumedHeaders: unknown;
    await consumer.run({
      eachMessage: async ({ message }) => {
        consumedHeaders = message.headers;
        await producer.send({
          topic: back,
          messages: [{ value: message.value, headers: message.headers ?? {} }],
        });
      },
    });
    await until(() => spans().some((s) => s.name === `send ${back}`), 'the forward');
    const [wire] = await rawKafka(back, 1);
    expect(Object.keys(wire ?? {})).toEqual(['traceparent']);
    expect(Buffer.isBuffer((consumedHeaders as Record<string, unknown>).traceparent)).toBe(true);
    const run = await peer('kafka', 'consume', back, 1);
    expect(run.seen[0]?.headers.traceparent).toBe(wire?.traceparent);
  });
});

/**
 * A relay through us under another propagator: our process span continues their send (with their
 * allow-listed baggage as an attribute); their consumer's process spans continue our relay's send,
 * in their trace, and their handler sees the baggage.
 */
function expectRelayed(process: ReadableSpan, theirs: PeerSpan, ours: ReadableSpan, consumed: PeerRun): void {
  expect(process.spanContext().traceId).toBe(theirs.traceId);
  expect(parentSpanId(process)).toBe(theirs.spanId);
  expect(process.attributes['tenant.id']).toBe('acme');
  const theirProcess = consumed.spans.filter((s) => s.kind === SpanKind.CONSUMER);
  expect(theirProcess.length).toBeGreaterThan(0);
  for (const s of theirProcess) {
    expect(s.traceId).toBe(theirs.traceId);
    expect(s.parentSpanId).toBe(ours.spanContext().spanId);
  }
  expect(consumed.seen[0]?.baggage).toEqual({ 'tenant.id': 'acme' });
}

/**
 * The headers their consumer got from our relay name our send span `ours` in every format `kind`
 * writes (a BullMQ job's in its telemetry metadata), whichever of them their propagator reads.
 */
function expectOurFormats(kind: Ours, consumed: PeerRun, ours: ReadableSpan): void {
  const seen = consumed.seen[0]?.headers ?? {};
  const wire: Record<string, unknown> =
    typeof seen.metadata === 'string' ? JSON.parse(seen.metadata) : (seen as Record<string, unknown>);
  const { traceId, spanId } = ours.spanContext();
  if (kind.includes('w3c')) expect(wire.traceparent).toBe(`00-${traceId}-${spanId}-01`);
  if (kind === 'b3') expect(wire.b3).toBe(`${traceId}-${spanId}-1`);
  else if (kind.includes('b3'))
    expect(wire).toMatchObject({ 'x-b3-traceid': traceId, 'x-b3-spanid': spanId });
}

type Ours = 'w3c' | 'b3' | 'b3multi' | 'w3c+b3' | 'b3+w3c';
function ourPropagator(kind: Ours) {
  if (kind === 'w3c' || kind === 'b3' || kind === 'b3multi') return makePropagator(kind);
  const b3 = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
  const w3c = new W3CTraceContextPropagator();
  return new CompositePropagator({
    propagators: [...(kind === 'w3c+b3' ? [w3c, b3] : [b3, w3c]), new W3CBaggagePropagator()],
  });
}

describe.each<[Ours, string]>([
  ['b3', 'b3'],
  ['b3multi', 'b3multi'],
  ['w3c+b3', 'w3c'],
  ['b3+w3c', 'w3c'],
  // One side writes both formats, the other reads only one of them.
  ['w3c+b3', 'b3multi'],
  ['b3multi', 'w3c+b3'],
  ['w3c', 'w3c+b3'],
])('every client: we register %s, the peer %s', (ours, theirs) => {
  usePropagator(() => ourPropagator(ours));
  const options = { PEER_PROPAGATOR: theirs, PEER_INCOMING: JSON.stringify({ baggage: 'tenant.id=acme' }) };
  /** Their send (a peer run producing one message to `destination`) and its producer span. */
  const peerSend = async (broker: PeerBroker, destination: string) =>
    (await peer(broker, 'produce', destination, 1, options)).spans.find((s) => s.kind === SpanKind.PRODUCER)!;
  /** Their consumer of our relay to `destination` under their propagator. */
  const peerConsume = (broker: PeerBroker, destination: string) =>
    peer(broker, 'consume', destination, 1, { PEER_PROPAGATOR: theirs });
  /** Our process span of `topic` and our send span to `relay`. */
  const ourTopicSpans = (topic: string, relay: string) => ({
    process: spans().find((s) => s.name === `process ${topic}`)!,
    send: spans().find((s) => s.name === `send ${relay}`)!,
  });
  /** Our one process span and our one send span, once both are recorded. */
  const ourSpans = async (what: string) => {
    const of = (kind: SpanKind) => spans().find((s) => s.kind === kind);
    await until(() => of(SpanKind.CONSUMER) !== undefined && of(SpanKind.PRODUCER) !== undefined, what);
    return { process: of(SpanKind.CONSUMER)!, send: of(SpanKind.PRODUCER)! };
  };

  it('kafkajs: their send -> our consumer continues it; our relay -> their consumer continues ours', async () => {
    const topic = await newTopic('edges');
    const relay = await newTopic('edges-relay');
    const theirSend = await peerSend('kafka', topic);
    const client = traceKafka(kafka(), { baggageAttributes: ['tenant.id'] });
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    await consumer.run({
      eachMessage: async () => {
        await relayTo(producer, relay);
      },
    });
    await until(() => spans().some((s) => s.name === `send ${relay}`), 'the relay');
    const { process, send } = ourTopicSpans(topic, relay);
    const consumed = await peerConsume('kafka', relay);
    expectRelayed(process, theirSend, send, consumed);
    expectOurFormats(ours, consumed, send);
  });

  it('amqplib: their publish -> our consumer continues it; our relay -> their consumer continues ours', async () => {
    const queue = `edges-${randomUUID()}`;
    const relay = `edges-relay-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue, relay], { baggageAttributes: ['tenant.id'] });
    const theirSend = await peerSend('amqp', queue);
    await ch.consume(queue, (message) => {
      if (!message) return;
      ch.sendToQueue(relay, Buffer.from('relayed'));
      ch.ack(message);
    });
    const { process, send } = await ourSpans('the relay');
    const consumed = await peerConsume('amqp', relay);
    expectRelayed(process, theirSend, send, consumed);
    expectOurFormats(ours, consumed, send);
  });

  it('@platformatic/kafka: their send -> our consumer continues it; our relay -> their consumer continues ours', async () => {
    const topic = await newTopic('edges');
    const relay = await newTopic('edges-relay');
    const theirSend = await peerSend('platformatic', topic);
    const producer = our.platformaticProducer(cleanup);
    const stream = await our.platformaticStream(cleanup, topic, { baggageAttributes: ['tenant.id'] });
    for await (const message of stream) {
      await withMessageContext(message, () =>
        producer.send({ messages: [{ topic: relay, value: 'relayed' }] }),
      );
      break;
    }
    const { process, send } = ourTopicSpans(topic, relay);
    const consumed = await peerConsume('platformatic', relay);
    expectRelayed(process, theirSend, send, consumed);
    expectOurFormats(ours, consumed, send);
  });

  it('BullMQ: their add -> our worker continues it; our add -> their worker continues ours', async () => {
    const name = `edges-${randomUUID()}`;
    const next = `edges-next-${randomUUID()}`;
    const theirAdd = await peerSend('bullmq', name);
    our.bullmqRelay(cleanup, name, next, { baggageAttributes: ['tenant.id'] });
    const { process, send: add } = await ourSpans('the job');
    const consumed = await peerConsume('bullmq', next);
    expectRelayed(process, theirAdd, add, consumed);
    expectOurFormats(ours, consumed, add);
  });
});

describe('amqplib, @platformatic/kafka, BullMQ: unsampled parents across the other tools', () => {
  useParentBased();

  it('amqplib: their unsampled publishes -> our consumer relays: no span, their trace ids (flags 00) go on', async () => {
    const queue = `edges-${randomUUID()}`;
    const relay = `edges-relay-${randomUUID()}`;
    const { ch, connection } = await our.amqpChannel(cleanup, [queue, relay]);
    const raw = await connection.createChannel();
    const produced = await peer('amqp', 'produce', queue, 2, { PEER_SAMPLED: '0' });
    expect(produced.spans).toHaveLength(0);
    const theirs: string[] = [];
    const inHandler: (SpanContext | undefined)[] = [];
    await ch.consume(queue, (message) => {
      if (!message) return;
      theirs.push(String(message.properties.headers?.traceparent));
      inHandler.push(active());
      ch.sendToQueue(relay, Buffer.from('relayed'));
      ch.ack(message);
    });
    const relayed: string[] = [];
    await raw.consume(
      relay,
      (m) => {
        if (m) relayed.push(String(m.properties.headers?.traceparent));
      },
      { noAck: true },
    );
    await until(() => relayed.length === 2, 'the relays');
    expect(new Set(theirs.map((t) => ids(t).traceId)).size).toBe(1);
    expectUnsampledRelays(theirs, inHandler, relayed);
  });

  it('amqplib: our unsampled publishes -> their consumer: flags 00, our trace id', async () => {
    const queue = `edges-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue]);
    const parent = upstream('00');
    context.with(parent, () => {
      ch.sendToQueue(queue, Buffer.from('a'));
      ch.sendToQueue(queue, Buffer.from('b'));
    });
    await expectPeerGetsUnsampled('amqp', queue, 2, parent);
  });

  it('@platformatic/kafka: their unsampled send of two -> our consumer relays: no span, their trace id (flags 00) goes on', async () => {
    const topic = await newTopic('edges');
    const relay = await newTopic('edges-relay');
    const produced = await peer('platformatic', 'produce', topic, 2, { PEER_SAMPLED: '0' });
    expect(produced.spans).toHaveLength(0);
    const producer = our.platformaticProducer(cleanup);
    const stream = await our.platformaticStream(cleanup, topic);
    const theirs: string[] = [];
    const inHandler: (SpanContext | undefined)[] = [];
    for await (const message of stream) {
      theirs.push(String(message.headers.get('traceparent')));
      await withMessageContext(message, async () => {
        inHandler.push(active());
        await producer.send({ messages: [{ topic: relay, value: 'relayed' }] });
      });
      if (theirs.length === 2) break;
    }
    const relayed = await rawKafka(relay, 2);
    expectUnsampledRelays(
      theirs,
      inHandler,
      relayed.map((h) => h.traceparent),
    );
  });

  it('@platformatic/kafka: our unsampled send of two -> their consumer: flags 00, our trace id', async () => {
    const topic = await newTopic('edges');
    const producer = our.platformaticProducer(cleanup);
    const parent = upstream('00');
    await context.with(parent, () =>
      producer.send({
        messages: [
          { topic, value: 'a' },
          { topic, value: 'b' },
        ],
      }),
    );
    await expectPeerGetsUnsampled('platformatic', topic, 2, parent);
  });

  /**
   * Our BullMQ relay of `n` unsampled jobs of theirs from queue `name` to `next`: no span, each job's
   * trace id (flags 00) in the handler and on the job it adds.
   */
  async function expectBullmqUnsampledRelay(name: string, next: string, n: number): Promise<void> {
    const theirs: string[] = [];
    const inHandler: (SpanContext | undefined)[] = [];
    let relays = 0;
    const nextQueue = our.bullmqRelay(
      cleanup,
      name,
      next,
      {},
      (job) => {
        theirs.push(JSON.parse(job.opts.telemetry?.metadata ?? '{}').traceparent);
        inHandler.push(active());
      },
      () => relays++,
    );
    // The handler runs before its add: wait for the adds themselves, not only the handlers.
    await until(() => inHandler.length === n && relays === n, 'the jobs and their relays');
    const jobs = await nextQueue.getJobs(['waiting']);
    expect(jobs).toHaveLength(n);
    const relayed = jobs.map((j) => JSON.parse(j.opts.telemetry?.metadata ?? '{}').traceparent as string);
    expect(new Set(theirs.map((t) => ids(t).traceId)).size).toBe(1);
    expectUnsampledRelays(theirs, inHandler, relayed);
  }

  it('BullMQ: their unsampled addBulk -> our worker adds on: no span, their trace id (flags 00) goes on', async () => {
    const name = `edges-${randomUUID()}`;
    const next = `edges-next-${randomUUID()}`;
    const produced = await peer('bullmq', 'produce', name, 2, { PEER_SAMPLED: '0' });
    expect(produced.spans).toHaveLength(0);
    await expectBullmqUnsampledRelay(name, next, 2);
  });

  it("BullMQ: our unsampled addBulk -> their worker: flags 00, our trace id; the peer records only its worker's own spans, as for its own unsampled addBulk", async () => {
    const name = `edges-${randomUUID()}`;
    const queue = our.dropAfter(
      cleanup,
      traceQueue(new Queue(name, { connection: brokerEndpoint('redis') })),
    );
    const parent = upstream('00');
    await context.with(parent, () =>
      queue.addBulk([
        { name: 'a', data: {} },
        { name: 'b', data: {} },
      ]),
    );
    const ours = await expectPeerGetsUnsampled('bullmq', name, 2, parent, { workerSpans: true });
    // The differential: bullmq-otel's own unsampled addBulk, read by the same worker.
    const theirName = `edges-${randomUUID()}`;
    our.dropAfter(cleanup, new Queue(theirName, { connection: brokerEndpoint('redis') }));
    await peer('bullmq', 'produce', theirName, 2, { PEER_SAMPLED: '0' });
    const theirs = await peer('bullmq', 'consume', theirName, 2);
    expect(theirs.seen.map((s) => s.traceFlags)).toEqual([0, 0]);
    const names = (run: PeerRun) => new Set(run.spans.map((s) => s.name.split(' ')[0]));
    expect(names(ours)).toEqual(names(theirs));
    const metadataKeys = (run: PeerRun) =>
      run.seen.map((s) => Object.keys(JSON.parse(s.headers.metadata as string)));
    expect(metadataKeys(ours)).toEqual(metadataKeys(theirs));
  });

  it('BullMQ: their unsampled flow (a parent, two children) -> our worker adds on: no span, their trace id (flags 00) goes on', async () => {
    const name = `edges-${randomUUID()}`;
    const next = `edges-next-${randomUUID()}`;
    const produced = await peer('bullmq', 'produce', name, 3, { PEER_SAMPLED: '0', PEER_FLOW: '1' });
    expect(produced.spans).toHaveLength(0);
    await expectBullmqUnsampledRelay(name, next, 3);
  });

  it("BullMQ: our unsampled flow with createSpans -> their worker: flags 00, our trace id; the peer records only its worker's own spans", async () => {
    const name = `edges-${randomUUID()}`;
    our.dropAfter(cleanup, new Queue(name, { connection: brokerEndpoint('redis') }));
    const flows = traceFlowProducer(new FlowProducer({ connection: brokerEndpoint('redis') }), {
      createSpans: true,
    });
    cleanup.push(() => flows.close());
    const parent = upstream('00');
    await context.with(parent, () =>
      flows.add({
        name: 'parent',
        queueName: name,
        children: [
          { name: 'a', queueName: name },
          { name: 'b', queueName: name },
        ],
      }),
    );
    await expectPeerGetsUnsampled('bullmq', name, 3, parent, { workerSpans: true });
  });
});

/** Each of their handlers ran in a consumer span whose parent is the context that message carried. */
function expectTheirsOwnParents(run: PeerRun, traceparentOf: (s: PeerSeen) => string | undefined) {
  for (const seen of run.seen) {
    const span = run.spans.find((s) => s.spanId === seen.spanId);
    expect(span, 'their handler ran in their consumer span').toBeDefined();
    const carried = ids(traceparentOf(seen));
    expect(span?.traceId).toBe(carried.traceId);
    expect(span?.parentSpanId).toBe(carried.spanId);
  }
}

describe('amqplib, @platformatic/kafka, BullMQ: several messages per send across the other tools', () => {
  it("amqplib: three publishes of theirs -> our consumer: each process span is the child of its own message's publish span", async () => {
    const queue = `edges-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue]);
    const produced = await peer('amqp', 'produce', queue, 3);
    const carried = new Map<string, string>();
    await ch.consume(queue, (message) => {
      if (!message) return;
      const own = ids(String(message.properties.headers?.traceparent)).spanId as string;
      carried.set(active()?.spanId as string, own);
      ch.ack(message);
    });
    await until(
      () => carried.size === 3 && spans().filter((s) => s.kind === SpanKind.CONSUMER).length === 3,
      'the deliveries',
    );
    const process = ourProcessSpansUnder(carried);
    expect(new Set(process.map(parentSpanId))).toEqual(theirSendIds(produced));
  });

  it("@platformatic/kafka: their send of three -> our consumer: each process span is the child of its own message's send span", async () => {
    const topic = await newTopic('edges');
    const produced = await peer('platformatic', 'produce', topic, 3);
    const stream = await our.platformaticStream(cleanup, topic);
    const carried = new Map<string, string>();
    for await (const message of stream) {
      const own = ids(String(message.headers.get('traceparent'))).spanId as string;
      withMessageContext(message, () => carried.set(active()?.spanId as string, own));
      if (carried.size === 3) break;
    }
    await until(() => spans().filter((s) => s.kind === SpanKind.CONSUMER).length === 3, 'the spans');
    const process = ourProcessSpansUnder(carried);
    expect(new Set(process.map(parentSpanId))).toEqual(theirSendIds(produced));
  });

  it('@platformatic/kafka: our send of three -> their consumer: each continues the context its message carried', async () => {
    const topic = await newTopic('edges');
    const producer = our.platformaticProducer(cleanup);
    await producer.send({
      messages: [
        { topic, value: 'a' },
        { topic, value: 'b', headers: { app: 'x' } },
        { topic, value: 'c' },
      ],
    });
    const send = spans().filter((s) => s.kind === SpanKind.PRODUCER);
    expect(send).toHaveLength(1);
    const run = await peer('platformatic', 'consume', topic, 3);
    expect(run.seen).toHaveLength(3);
    expectTheirsOwnParents(run, (s) => s.headers.traceparent as string);
    for (const seen of run.seen)
      expect(ids(seen.headers.traceparent as string).spanId).toBe(send[0]?.spanContext().spanId);
  });

  it('amqplib: our three publishes -> their consumer: each continues the context its message carried', async () => {
    const queue = `edges-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue]);
    for (const v of ['a', 'b', 'c']) ch.sendToQueue(queue, Buffer.from(v));
    const run = await peer('amqp', 'consume', queue, 3);
    expectTheirsOwnParents(run, (s) => s.headers.traceparent as string);
    const sends = spans()
      .filter((s) => s.kind === SpanKind.PRODUCER)
      .map((s) => s.spanContext().spanId);
    expect(new Set(run.seen.map((s) => ids(s.headers.traceparent as string).spanId))).toEqual(new Set(sends));
  });

  it("BullMQ: their addBulk of three -> our worker: each process span is the child of its own job's context", async () => {
    const name = `edges-${randomUUID()}`;
    const produced = await peer('bullmq', 'produce', name, 3);
    our.dropAfter(cleanup, new Queue(name, { connection: brokerEndpoint('redis') }));
    const carried = new Map<string, string>();
    our.bullmqWorker(cleanup, name, async (job) => {
      const own = ids(JSON.parse(job.opts.telemetry?.metadata ?? '{}').traceparent).spanId as string;
      carried.set(active()?.spanId as string, own);
    });
    await until(
      () => carried.size === 3 && spans().filter((s) => s.kind === SpanKind.CONSUMER).length === 3,
      'the jobs',
    );
    const process = ourProcessSpansUnder(carried);
    const theirSpanIds = new Set(produced.spans.map((s) => s.spanId));
    for (const span of process) expect(theirSpanIds.has(parentSpanId(span) as string)).toBe(true);
  });

  it('BullMQ: our addBulk of three -> their worker: each continues the context its job carried', async () => {
    const name = `edges-${randomUUID()}`;
    const queue = our.dropAfter(
      cleanup,
      traceQueue(new Queue(name, { connection: brokerEndpoint('redis') })),
    );
    await queue.addBulk([
      { name: 'a', data: {} },
      { name: 'b', data: {} },
      { name: 'c', data: {} },
    ]);
    const run = await peer('bullmq', 'consume', name, 3);
    expect(run.seen).toHaveLength(3);
    expectTheirsOwnParents(run, (s) => JSON.parse(s.headers.metadata as string).traceparent);
    const ours = new Set(spans().map((s) => s.spanContext().spanId));
    for (const seen of run.seen)
      expect(ours.has(ids(JSON.parse(seen.headers.metadata as string).traceparent).spanId as string)).toBe(
        true,
      );
  });
});

describe('kafkajs: odd but legal header shapes', () => {
  it('a repeated traceparent header (an array on receive): our consumer continues the first; forwarding it adds nothing', async () => {
    const topic = await newTopic('edges');
    const back = await newTopic('edges-back');
    const first = `00-${newTraceId()}-aaaaaaaaaaaaaaaa-01`;
    const second = `00-${newTraceId()}-bbbbbbbbbbbbbbbb-01`;
    const raw = await our.kafkajsProducer(cleanup, kafka());
    await raw.send({ topic, messages: [{ value: 'x', headers: { traceparent: [first, second] } }] });
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    await consumer.run({
      eachMessage: async ({ message }) => {
        await producer.send({ topic: back, messages: [{ value: 'y', headers: message.headers ?? {} }] });
      },
    });
    await until(() => spans().some((s) => s.name === `send ${back}`), 'the forward');
    const process = spans().find((s) => s.name === `process ${topic}`)!;
    expect(process.spanContext().traceId).toBe(ids(first).traceId);
    expect(parentSpanId(process)).toBe('aaaaaaaaaaaaaaaa');
    const [wire] = await rawKafka(back, 1);
    expect(wire).toEqual({ traceparent: `${first}|${second}` });
  });
});

describe('re-publishes through amqplib and BullMQ', () => {
  it('amqplib: our publish -> their consumer forwards its headers -> our consumer: parent is their forward, one traceparent', async () => {
    const queue = `edges-${randomUUID()}`;
    const back = `edges-back-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue, back]);
    ch.sendToQueue(queue, Buffer.from('x'), { headers: { app: 'kept' } });
    const run = await peer('amqp', 'consume', queue, 1, { PEER_FORWARD: back });
    const forward = run.spans.find((s) => s.kind === SpanKind.PRODUCER);
    expect(forward).toBeDefined();
    let headers: Record<string, unknown> | undefined;
    await ch.consume(back, (m) => {
      if (!m) return;
      headers = m.properties.headers;
      ch.ack(m);
    });
    await until(
      () => headers !== undefined && spans().filter((s) => s.kind === SpanKind.CONSUMER).length === 1,
      'the forward',
    );
    expect(Object.keys(headers ?? {}).sort()).toEqual(['app', 'traceparent']);
    const process = spans().find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(parentSpanId(process)).toBe(forward?.spanId);
  });

  it('amqplib: their publish -> our consumer forwards its headers with our channel: their consumer gets one traceparent', async () => {
    const queue = `edges-${randomUUID()}`;
    const back = `edges-back-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue, back]);
    await peer('amqp', 'produce', queue, 1);
    let consumed: Record<string, unknown> | undefined;
    await ch.consume(queue, (m) => {
      if (!m) return;
      consumed = m.properties.headers;
      ch.sendToQueue(back, m.content, { headers: m.properties.headers });
      ch.ack(m);
    });
    await until(
      () => consumed !== undefined && spans().some((s) => s.name === `send ${back}`),
      'the forward',
    );
    // A forward of a message carrying its own context: a CLIENT span linked to it (package README).
    const send = spans().find((s) => s.name === `send ${back}`)!;
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.links.map((l) => l.context.spanId)).toEqual([ids(String(consumed?.traceparent)).spanId]);
    const run = await peer('amqp', 'consume', back, 1);
    expect(Object.keys(run.seen[0]?.headers ?? {})).toEqual(['traceparent']);
    expect(run.seen[0]?.headers.traceparent).toBe(consumed?.traceparent);
  });

  it("BullMQ: our add -> their worker re-adds with the job's telemetry -> our worker", async () => {
    const name = `edges-${randomUUID()}`;
    const back = `edges-back-${randomUUID()}`;
    const connection = brokerEndpoint('redis');
    const queue = our.dropAfter(cleanup, traceQueue(new Queue(name, { connection })));
    await queue.add('x', {});
    const add = spans().find((s) => s.kind === SpanKind.PRODUCER)!;
    const run = await peer('bullmq', 'consume', name, 1, { PEER_FORWARD: back });
    const theirProcess = run.spans.find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(theirProcess.parentSpanId).toBe(add.spanContext().spanId);
    const forward = run.spans.find((s) => s.kind === SpanKind.PRODUCER && s.name.includes(back))!;
    expect(forward.parentSpanId).toBe(theirProcess.spanId);
    our.dropAfter(cleanup, new Queue(back, { connection }));
    let meta: string | undefined;
    our.bullmqWorker(cleanup, back, async (job) => {
      meta = job.opts.telemetry?.metadata;
    });
    await until(() => meta !== undefined && spans().some((s) => s.kind === SpanKind.CONSUMER), 'the forward');
    const process = spans().find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(JSON.parse(meta ?? '{}')).toEqual({
      traceparent: tp({ traceId: forward.traceId, spanId: forward.spanId }, '01'),
    });
    expect(parentSpanId(process)).toBe(forward.spanId);
    expect(process.spanContext().traceId).toBe(add.spanContext().traceId);
  });
});

describe('kafkajs: a peer tracestate at the W3C limits and a hop budget', () => {
  const members32 = Array.from({ length: 32 }, (_, i) => `v${i}=x`).join(',');
  const chars510 = `big=${'y'.repeat(250)},more=${'z'.repeat(250)}`;

  it.each([
    ['32 members', members32],
    ['510 characters', chars510],
  ])(
    'their tracestate of %s: our hop member keeps it within the limits, so the next hop still counts',
    async (_, state) => {
      const topic = await newTopic('edges');
      const relay = await newTopic('edges-relay');
      const incoming = incomingWith(state);
      const produced = await peer('kafka', 'produce', topic, 1, { PEER_INCOMING: JSON.stringify(incoming) });
      expect(produced.spans.find((s) => s.kind === SpanKind.PRODUCER)?.traceState).toBe(state);
      const client = traceKafka(kafka(), { traceBudget: { maxHops: 1 } });
      const producer = await our.kafkajsProducer(cleanup, client);
      const consumer = await our.kafkajsConsumer(cleanup, client, [topic, relay]);
      await consumer.run({
        eachMessage: async ({ topic: from }) => {
          if (from === topic) await relayTo(producer, relay);
        },
      });
      await until(() => spans().some((s) => s.name === `process ${relay}`), 'the relayed message');
      const [wire] = await rawKafka(relay, 1);
      const members = (wire?.tracestate ?? '').split(',');
      expect(members[0]).toBe('hoptrace=1');
      expect(members.length).toBeLessThanOrEqual(32);
      expect((wire?.tracestate ?? '').length).toBeLessThanOrEqual(512);
      // Their members are kept from the left, as W3C asks a vendor adding one at the limit to do.
      expect(state.startsWith(members.slice(1).join(','))).toBe(true);
      expect(members.length).toBeGreaterThan(1);
      // The second hop is over the budget of one: a new trace linked to the old one.
      const second = spans().find((s) => s.name === `process ${relay}`)!;
      expect(second.attributes['hoptrace.trace_budget.exceeded']).toBe(true);
      expect(second.spanContext().traceId).not.toBe(incoming.traceparent.split('-')[1]);
    },
  );
});

describe('amqplib and BullMQ: their tracestate and baggage through our hop budget', () => {
  const incoming = () => incomingWith('vendor=abc', 'tenant.id=acme,secret=s3');
  const options = { traceBudget: { maxHops: 5 }, baggageAttributes: ['tenant.id'] };

  it('amqplib: our relay carries their member after ours, and their baggage; their consumer reads both', async () => {
    const queue = `edges-${randomUUID()}`;
    const relay = `edges-relay-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue, relay], options);
    const ctx = incoming();
    await peer('amqp', 'produce', queue, 1, { PEER_INCOMING: JSON.stringify(ctx) });
    await ch.consume(queue, (m) => {
      if (!m) return;
      ch.sendToQueue(relay, Buffer.from('relayed'));
      ch.ack(m);
    });
    // The process span can end after the relay's send span (BullMQ ends it when it records the completion).
    await until(
      () =>
        spans().some((s) => s.kind === SpanKind.PRODUCER) &&
        spans().some((s) => s.kind === SpanKind.CONSUMER),
      'the relay and the process span',
    );
    const process = spans().find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(process.attributes['tenant.id']).toBe('acme');
    expect(process.attributes.secret).toBeUndefined();
    expectPeerReadBoth(await peer('amqp', 'consume', relay, 1), ctx, 'hoptrace=1,vendor=abc');
  });

  it('BullMQ: our relay carries their member after ours, and their baggage; their worker reads both', async () => {
    const name = `edges-${randomUUID()}`;
    const next = `edges-next-${randomUUID()}`;
    const ctx = incoming();
    await peer('bullmq', 'produce', name, 1, { PEER_INCOMING: JSON.stringify(ctx) });
    our.bullmqRelay(cleanup, name, next, options);
    // The process span can end after the relay's send span (BullMQ ends it when it records the completion).
    await until(
      () =>
        spans().some((s) => s.kind === SpanKind.PRODUCER) &&
        spans().some((s) => s.kind === SpanKind.CONSUMER),
      'the relay and the process span',
    );
    const process = spans().find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(process.attributes['tenant.id']).toBe('acme');
    expectPeerReadBoth(await peer('bullmq', 'consume', next, 1), ctx, 'hoptrace=1,vendor=abc');
  });
});

describe('@platformatic/kafka: re-publishes', () => {
  it('their send -> our consumer (Buffer header names and values) forwards the headers Map with our producer: one traceparent on the wire, their consumer continues', async () => {
    const topic = await newTopic('edges');
    const back = await newTopic('edges-back');
    await peer('platformatic', 'produce', topic, 1);
    const producer = traceProducer(
      new Producer({ clientId: 'edges', bootstrapBrokers: brokerEndpoint('kafka').brokers }),
    );
    cleanup.push(() => producer.close());
    const stream = await our.platformaticStreamOf(cleanup, our.platformaticConsumer(), topic);
    let consumed: string | undefined;
    for await (const message of stream) {
      const keys = [...message.headers.keys()];
      expect(keys.every((k) => Buffer.isBuffer(k))).toBe(true);
      consumed = String(message.headers.get(keys[0] as Buffer));
      await withMessageContext(message, () =>
        producer.send({ messages: [{ topic: back, value: message.value, headers: message.headers }] }),
      );
      break;
    }
    const wire = await rawKafka(back, 1);
    expect(wire).toEqual([{ traceparent: consumed }]);
    const run = await peer('platformatic', 'consume', back, 1);
    expect(run.seen[0]?.headers.traceparent).toBe(consumed);
    expect(run.spans.find((s) => s.kind === SpanKind.CONSUMER)?.parentSpanId).toBe(ids(consumed).spanId);
  });
});

describe.each<'b3' | 'b3multi'>(['b3', 'b3multi'])(
  'kafkajs: unsampled parents under %s on both sides',
  (kind) => {
    useParentBased();
    usePropagator(() => makePropagator(kind));

    it('their unsampled send -> our consumer relays: no span, their trace id goes on unsampled; ours unsampled -> their consumer: flags 0', async () => {
      const topic = await newTopic('edges');
      const relay = await newTopic('edges-relay');
      const produced = await peer('kafka', 'produce', topic, 1, { PEER_SAMPLED: '0', PEER_PROPAGATOR: kind });
      expect(produced.spans).toHaveLength(0);
      const client = traceKafka(kafka());
      const producer = await our.kafkajsProducer(cleanup, client);
      const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
      const inHandler: (SpanContext | undefined)[] = [];
      await consumer.run({
        eachMessage: async () => {
          inHandler.push(active());
          await relayTo(producer, relay);
        },
      });
      await until(() => inHandler.length === 1, 'the message');
      expect(inHandler[0]?.traceFlags).toBe(TraceFlags.NONE);
      const [wire] = await rawKafka(relay, 1);
      if (kind === 'b3') expect(wire?.b3).toMatch(new RegExp(`^${inHandler[0]?.traceId}-[0-9a-f]{16}-0$`));
      else expect(wire).toMatchObject({ 'x-b3-traceid': inHandler[0]?.traceId, 'x-b3-sampled': '0' });
      const consumed = await peer('kafka', 'consume', relay, 1, { PEER_PROPAGATOR: kind });
      expect(consumed.seen[0]).toMatchObject({ traceId: inHandler[0]?.traceId, traceFlags: 0 });
      expect(consumed.spans).toHaveLength(0);
      expect(spans()).toHaveLength(0);
    });
  },
);

describe('headers another tool writes in another case: B3 multi as Java OpenTelemetry spells it', () => {
  usePropagator(() => makePropagator('b3multi'));
  // Java OpenTelemetry's B3 propagator (otel.propagators=b3multi) and Zipkin's Brave write these names
  // into Kafka and AMQP headers as they are; the JavaScript propagators ask for them in lower case.
  const javaB3 = () => ({
    traceId: newTraceId(),
    spanId: randomUUID().replaceAll('-', '').slice(0, 16),
  });
  const headersOf = (ids: { traceId: string; spanId: string }) => ({
    'X-B3-TraceId': ids.traceId,
    'X-B3-SpanId': ids.spanId,
    'X-B3-Sampled': '1',
  });
  /** Our one process span continues the message's B3 context, as the incumbent's does. */
  const expectContinued = async (ids: { traceId: string; spanId: string }) => {
    await until(() => spans().some((s) => s.kind === SpanKind.CONSUMER), 'our process span');
    const process = spans().find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(process.spanContext().traceId).toBe(ids.traceId);
    expect(parentSpanId(process)).toBe(ids.spanId);
  };

  it('kafkajs: our consumer continues it, as @opentelemetry/instrumentation-kafkajs does', async () => {
    const topic = await newTopic('interop2-case');
    const ids = javaB3();
    const raw = await our.kafkajsProducer(cleanup, kafka());
    await raw.send({ topic, messages: [{ value: 'from-java', headers: headersOf(ids) }] });
    const theirs = await peer('kafka', 'consume', topic, 1, { PEER_PROPAGATOR: 'b3multi' });
    expect(theirs.spans.find((s) => s.kind === SpanKind.CONSUMER)).toMatchObject({
      traceId: ids.traceId,
      parentSpanId: ids.spanId,
    });
    const consumer = await our.kafkajsConsumer(cleanup, traceKafka(kafka()), [topic]);
    await consumer.run({ eachMessage: async () => undefined });
    await expectContinued(ids);
  });

  it('kafkajs: our consumer forwards the consumed headers: the relay carries our send span, each B3 field once', async () => {
    const topic = await newTopic('interop2-case');
    const relay = await newTopic('interop2-case-relay');
    const ids = javaB3();
    const raw = await our.kafkajsProducer(cleanup, kafka());
    await raw.send({ topic, messages: [{ value: 'from-java', headers: { ...headersOf(ids), app: 'a' } }] });
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    await consumer.run({
      eachMessage: async ({ message }) => {
        await producer.send({
          topic: relay,
          messages: [{ value: 'relayed', headers: message.headers ?? {} }],
        });
      },
    });
    await expectContinued(ids);
    await until(() => spans().some((s) => s.kind === SpanKind.PRODUCER), 'the relay');
    const send = spans().find((s) => s.kind === SpanKind.PRODUCER)!;
    const [wire] = await rawKafka(relay, 1);
    expect(wire).toEqual({
      app: 'a',
      'x-b3-traceid': ids.traceId,
      'x-b3-spanid': send.spanContext().spanId,
      'x-b3-sampled': '1',
    });
  });

  it('@platformatic/kafka: our consumer continues it', async () => {
    const topic = await newTopic('interop2-case');
    const ids = javaB3();
    const raw = new Producer({
      clientId: 'interop2-case',
      bootstrapBrokers: brokerEndpoint('kafka').brokers,
      serializers: stringSerializers,
    });
    cleanup.push(() => raw.close());
    await raw.send({
      messages: [{ topic, value: 'from-java', headers: new Map(Object.entries(headersOf(ids))) }],
    });
    for await (const message of await our.platformaticStream(cleanup, topic)) {
      await withMessageContext(message, async () => undefined);
      break;
    }
    await expectContinued(ids);
  });

  it('amqplib: our consumer continues it', async () => {
    const queue = `interop2-case-${randomUUID()}`;
    const ids = javaB3();
    const { ch, connection } = await our.amqpChannel(cleanup, [queue]);
    const raw = await connection.createChannel();
    raw.sendToQueue(queue, Buffer.from('from-java'), { headers: headersOf(ids) });
    await ch.consume(queue, (message) => {
      if (message) ch.ack(message);
    });
    await expectContinued(ids);
  });
});

describe("their baggage -> our handler, with baggageAttributes' allow-list", () => {
  // Their caller's baggage, as their W3C baggage propagator writes it: a listed key, a key nobody
  // listed, a percent-encoded value and one over the 256-character attribute cap.
  const LONG = 'v'.repeat(300);
  const options = {
    PEER_INCOMING: JSON.stringify({
      baggage: `tenant.id=acme,secret=s3,note=caf%C3%A9%20%E2%98%95,long=${LONG}`,
    }),
  };
  const baggageAttributes = { 'tenant.id': 'app.tenant', note: 'app.note', long: 'app.long' };
  const BAGGAGE = { 'tenant.id': 'acme', secret: 's3', note: 'café ☕', long: LONG };
  const bagOf = () =>
    Object.fromEntries(
      (propagation.getBaggage(context.active())?.getAllEntries() ?? []).map(([k, v]) => [k, v.value]),
    );

  /** Our process span continues their send; the handler saw all of it; only listed keys are attributes. */
  async function expectBaggage(seen: Record<string, string>[], run: PeerRun): Promise<void> {
    await until(() => seen.length === 1 && spans().some((s) => s.kind === SpanKind.CONSUMER), 'the message');
    const process = spans().find((s) => s.kind === SpanKind.CONSUMER)!;
    const theirs = run.spans.find((s) => s.kind === SpanKind.PRODUCER)!;
    expect(process.spanContext().traceId).toBe(theirs.traceId);
    expect(parentSpanId(process)).toBe(theirs.spanId);
    expect(seen[0]).toEqual(BAGGAGE);
    const fromBaggage = Object.entries(process.attributes).filter(
      ([key, value]) => key.startsWith('app.') || Object.values(BAGGAGE).includes(String(value)),
    );
    expect(Object.fromEntries(fromBaggage)).toEqual({ 'app.tenant': 'acme', 'app.note': 'café ☕' });
  }

  it('kafkajs', async () => {
    const topic = await newTopic('interop2-baggage');
    const run = await peer('kafka', 'produce', topic, 1, options);
    const consumer = await our.kafkajsConsumer(cleanup, traceKafka(kafka(), { baggageAttributes }), [topic]);
    const seen: Record<string, string>[] = [];
    await consumer.run({
      eachMessage: async () => {
        seen.push(bagOf());
      },
    });
    await expectBaggage(seen, run);
  });

  it('@platformatic/kafka', async () => {
    const topic = await newTopic('interop2-baggage');
    const run = await peer('platformatic', 'produce', topic, 1, options);
    const seen: Record<string, string>[] = [];
    for await (const message of await our.platformaticStream(cleanup, topic, { baggageAttributes })) {
      await withMessageContext(message, async () => {
        seen.push(bagOf());
      });
      break;
    }
    await expectBaggage(seen, run);
  });

  it('amqplib', async () => {
    const queue = `interop2-baggage-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue], { baggageAttributes });
    const run = await peer('amqp', 'produce', queue, 1, options);
    const seen: Record<string, string>[] = [];
    await ch.consume(queue, (message) => {
      seen.push(bagOf());
      if (message) ch.ack(message);
    });
    await expectBaggage(seen, run);
  });

  it('BullMQ', async () => {
    const name = `interop2-baggage-${randomUUID()}`;
    const run = await peer('bullmq', 'produce', name, 1, options);
    our.dropAfter(cleanup, new Queue(name, { connection: brokerEndpoint('redis') }));
    const seen: Record<string, string>[] = [];
    our.bullmqWorker(
      cleanup,
      name,
      async () => {
        seen.push(bagOf());
      },
      { baggageAttributes },
    );
    await expectBaggage(seen, run);
  });
});
