import { randomUUID } from 'node:crypto';
import { traceKafka, withMessageContext as withKafkaContext } from '@hoptrace/kafka';
import { withMessageContext } from '@hoptrace/platformatic-kafka';
import {
  deferred,
  makePropagator,
  parentSpanId,
  type TestPropagator,
  until,
  useTestTracing,
} from '@hoptrace/test-kit';
import { context, propagation, type SpanContext, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Producer } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  ids,
  incomingWith,
  kafkajsClient,
  newTopic,
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

// The cells of the interop matrix (client x direction x sampled x propagator x one message or
// several) that other-tools.int.test.ts and other-tools-edges.int.test.ts leave out: kafkajs
// sendBatch both ways and hoptrace's `batchSpans: 'batch'` mode, amqplib confirm channels both ways,
// a hoptrace relay between two processes of the other tool under plain W3C (their tracestate must
// pass unchanged when no hop budget is set, their baggage reach both handlers), and unsampled
// parents under B3 through the amqplib, @platformatic/kafka and BullMQ relays.
const tracing = useTestTracing({ leakGraceMs: 5000 });
const spans = (): ReadableSpan[] => tracing.current.spans();
const cleanup = useCleanup();
const peer = (...args: Parameters<typeof runPeer> extends [unknown, ...infer R] ? R : never) =>
  runPeer(cleanup, ...args);
const kafka = () => kafkajsClient('interop-matrix');
const ofKind = (kind: SpanKind) => spans().filter((s) => s.kind === kind);
const active = (): SpanContext | undefined => trace.getSpanContext(context.active());
const bagOf = (): Record<string, string> =>
  Object.fromEntries(
    (propagation.getBaggage(context.active())?.getAllEntries() ?? []).map(([k, v]) => [k, v.value]),
  );
const relayTo = (producer: Producer, topic: string) =>
  producer.send({ topic, messages: [{ value: 'relayed' }] });

/** The traceparent a message of the other tool's consumer carried (a BullMQ job's, in its metadata). */
const carriedBy = (seen: PeerSeen): string | undefined =>
  typeof seen.headers.metadata === 'string'
    ? JSON.parse(seen.headers.metadata).traceparent
    : (seen.headers.traceparent as string | undefined);

/** Their peer request span and its producer spans (one per message, all its children). */
function theirSends(run: PeerRun, count: number): { request: PeerSpan; sends: PeerSpan[] } {
  const request = run.spans.find((s) => s.name === 'peer-request');
  expect(request, 'their request span').toBeDefined();
  const sends = run.spans.filter((s) => s.kind === SpanKind.PRODUCER);
  expect(sends).toHaveLength(count);
  for (const send of sends)
    expect(send).toMatchObject({ traceId: request?.traceId, parentSpanId: request?.spanId });
  return { request: request as PeerSpan, sends };
}

/**
 * Their consumer read each of our `count` messages (which carry the spans `ours`) in the trace
 * `traceId`, sampled, in a consumer span that is the child of the span its message carried.
 */
function expectTheyContinue(run: PeerRun, ours: ReadableSpan[], traceId: string, count = ours.length): void {
  const ourIds = new Set(ours.map((s) => s.spanContext().spanId));
  expect(run.seen).toHaveLength(count);
  for (const seen of run.seen) {
    const carried = ids(carriedBy(seen));
    expect(carried).toMatchObject({ traceId, flags: '01' });
    expect(ourIds.has(carried.spanId as string)).toBe(true);
    expect(seen).toMatchObject({ traceId, traceFlags: TraceFlags.SAMPLED });
    const span = run.spans.find((s) => s.spanId === seen.spanId);
    expect(span, 'their handler ran in their consumer span').toBeDefined();
    expect(span).toMatchObject({ traceId, parentSpanId: carried.spanId });
  }
}

describe("kafkajs: sendBatch and our batchSpans: 'batch' across @opentelemetry/instrumentation-kafkajs", () => {
  it('their sendBatch of three -> our batch-mode eachBatch relays each message in withMessageContext -> their consumer: their trace all the way, our batch span linked to their sends', async () => {
    const topic = await newTopic('matrix');
    const relay = await newTopic('matrix-relay');
    const { request, sends } = theirSends(
      await peer('kafka', 'produce', topic, 3, { PEER_SEND_BATCH: '1' }),
      3,
    );
    const client = traceKafka(kafka(), { batchSpans: 'batch' });
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    const carried = new Map<string, string>();
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const message of batch.messages) {
          await withKafkaContext(message, async () => {
            carried.set(
              active()?.spanId as string,
              ids(String(message.headers?.traceparent)).spanId as string,
            );
            await relayTo(producer, relay);
          });
          resolveOffset(message.offset);
        }
      },
    });
    const relays = () => spans().filter((s) => s.name === `send ${relay}`);
    const batches = () => spans().filter((s) => s.attributes['messaging.batch.message_count'] !== undefined);
    await until(
      () => relays().length === 3 && batches().reduce((n, b) => n + b.links.length, 0) === 3,
      'the relays and batch spans',
    );
    // Each batch span: a root of its own trace, linked to the send span of each of its messages.
    const links = batches().flatMap((b) => {
      expect(parentSpanId(b)).toBeUndefined();
      return b.links.map((l) => l.context);
    });
    expect(new Set(links.map((l) => l.spanId))).toEqual(new Set(sends.map((s) => s.spanId)));
    for (const link of links) expect(link.traceId).toBe(request.traceId);
    // Each message's span: in their trace, the child of the send span its own message carried.
    const messageSpans = spans().filter(
      (s) => s.name === `process ${topic}` && s.attributes['messaging.batch.message_count'] === undefined,
    );
    expect(messageSpans).toHaveLength(3);
    for (const span of messageSpans) {
      expect(span.spanContext().traceId).toBe(request.traceId);
      expect(parentSpanId(span)).toBe(carried.get(span.spanContext().spanId));
    }
    // Each relay send: the child of its message's span.
    const messageIds = new Set(messageSpans.map((s) => s.spanContext().spanId));
    for (const send of relays()) expect(messageIds.has(parentSpanId(send) as string)).toBe(true);
    expect(spans()).toHaveLength(batches().length + 3 + 3);
    expectTheyContinue(await peer('kafka', 'consume', relay, 3), relays(), request.traceId);
  });

  it.each([
    [false, 'eachMessage', '0'],
    [true, 'eachMessage', '0'],
    [false, 'eachBatch', '1'],
    [true, 'eachBatch', '1'],
  ])(
    'our sendBatch of three (createSpans %s) -> their %s: each message carries our send (or its create) span, their spans tie to it',
    async (createSpans, _, batch) => {
      const topic = await newTopic('matrix');
      const producer = await our.kafkajsProducer(cleanup, traceKafka(kafka(), { createSpans }));
      // In a request: without one, each create span would be the root of a trace of its own.
      await trace.getTracer('t').startActiveSpan('request', async (span) => {
        await producer.sendBatch({
          topicMessages: [
            { topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c', headers: { app: 'x' } }] },
          ],
        });
        span.end();
      });
      // With create spans, the send span is a CLIENT span linked to them (semconv).
      const send = spans().filter((s) => s.name.startsWith('send'));
      expect(send).toHaveLength(1);
      expect(send[0]?.kind).toBe(createSpans ? SpanKind.CLIENT : SpanKind.PRODUCER);
      const creates = spans().filter((s) => s.name.startsWith('create'));
      expect(creates).toHaveLength(createSpans ? 3 : 0);
      const { traceId } = send[0]!.spanContext();
      const carriers = createSpans ? creates : send;
      const run = await peer('kafka', 'consume', topic, 3, { PEER_BATCH: batch });
      expect(run.seen).toHaveLength(3);
      const carried = run.seen.map((s) => ids(carriedBy(s)));
      for (const c of carried) expect(c).toMatchObject({ traceId, flags: '01' });
      expect(new Set(carried.map((c) => c.spanId))).toEqual(
        new Set(carriers.map((s) => s.spanContext().spanId)),
      );
      if (batch === '0') {
        expectTheyContinue(run, carriers, traceId, 3);
      } else {
        // Their eachBatch: one process span per message under their receive span, linked to the context
        // its message carried (as the instrumentation does for every batch).
        const process = run.spans.filter((s) => s.kind === SpanKind.CONSUMER && s.links.length > 0);
        expect(process).toHaveLength(3);
        expect(process.map((s) => s.links[0]?.spanId).sort()).toEqual(carried.map((c) => c.spanId).sort());
        for (const s of process) expect(s.links[0]?.traceId).toBe(traceId);
      }
    },
  );

  describe('unsampled', () => {
    useParentBasedSampler(tracing);

    it('their unsampled sendBatch of three -> our batch-mode eachBatch relays in withMessageContext -> their consumer: no message span, their trace id goes on unsampled, nobody records it', async () => {
      const topic = await newTopic('matrix');
      const relay = await newTopic('matrix-relay');
      const produced = await peer('kafka', 'produce', topic, 3, { PEER_SEND_BATCH: '1', PEER_SAMPLED: '0' });
      expect(produced.spans).toHaveLength(0);
      const client = traceKafka(kafka(), { batchSpans: 'batch' });
      const producer = await our.kafkajsProducer(cleanup, client);
      const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
      const inHandler: (SpanContext | undefined)[] = [];
      const theirs: string[] = [];
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const message of batch.messages) {
            await withKafkaContext(message, async () => {
              theirs.push(String(message.headers?.traceparent));
              inHandler.push(active());
              await relayTo(producer, relay);
            });
            resolveOffset(message.offset);
          }
        },
      });
      await until(() => inHandler.length === 3, 'the messages');
      const traceId = ids(theirs[0]).traceId as string;
      for (const [i, header] of theirs.entries()) {
        expect(ids(header)).toMatchObject({ traceId, flags: '00' });
        expect(inHandler[i]).toMatchObject({ traceId, traceFlags: TraceFlags.NONE });
      }
      const consumed = await peer('kafka', 'consume', relay, 3);
      for (const seen of consumed.seen) {
        expect(ids(carriedBy(seen))).toMatchObject({ traceId, flags: '00' });
        expect(seen).toMatchObject({ traceId, traceFlags: TraceFlags.NONE });
      }
      expect(consumed.spans).toHaveLength(0);
      // Only our batch spans record: roots of new traces (their sampler, not the messages', decides).
      await until(() => spans().length > 0, 'the batch span');
      for (const span of spans()) {
        expect(span.attributes['messaging.batch.message_count']).toBeDefined();
        expect(parentSpanId(span)).toBeUndefined();
        expect(span.spanContext().traceId).not.toBe(traceId);
      }
    });
  });
});

describe('amqplib: confirm channels across @opentelemetry/instrumentation-amqplib', () => {
  it('their confirm-channel publishes -> our confirm channel relays them (waiting for confirms) -> their consumer: their trace all the way', async () => {
    const queue = `matrix-${randomUUID()}`;
    const relay = `matrix-relay-${randomUUID()}`;
    const { request, sends } = theirSends(await peer('amqp', 'produce', queue, 2, { PEER_CONFIRM: '1' }), 2);
    const { ch } = await our.amqpChannel(cleanup, [queue, relay], undefined, { confirm: true });
    const carried = new Map<string, string>();
    const confirmed: unknown[] = [];
    await ch.consume(queue, (message) => {
      if (!message) return;
      carried.set(
        active()?.spanId as string,
        ids(String(message.properties.headers?.traceparent)).spanId as string,
      );
      ch.sendToQueue(relay, Buffer.from('relayed'), {}, (error) => confirmed.push(error));
      ch.ack(message);
    });
    await until(
      () =>
        confirmed.length === 2 &&
        ofKind(SpanKind.PRODUCER).length === 2 &&
        ofKind(SpanKind.CONSUMER).length === 2,
      'the confirmed relays',
    );
    expect(confirmed).toEqual([null, null]);
    const process = ofKind(SpanKind.CONSUMER);
    for (const span of process) {
      expect(span.spanContext().traceId).toBe(request.traceId);
      expect(parentSpanId(span)).toBe(carried.get(span.spanContext().spanId));
    }
    expect(new Set(process.map(parentSpanId))).toEqual(new Set(sends.map((s) => s.spanId)));
    const relays = ofKind(SpanKind.PRODUCER);
    const processIds = new Set(process.map((s) => s.spanContext().spanId));
    for (const send of relays) expect(processIds.has(parentSpanId(send) as string)).toBe(true);
    expectTheyContinue(await peer('amqp', 'consume', relay, 2), relays, request.traceId);
  });

  it('our confirm-channel publishes (waitForConfirms) -> their consumer: each continues our send span', async () => {
    const queue = `matrix-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue], undefined, { confirm: true });
    await trace.getTracer('t').startActiveSpan('request', async (span) => {
      ch.sendToQueue(queue, Buffer.from('a'));
      ch.sendToQueue(queue, Buffer.from('b'));
      await ch.waitForConfirms();
      span.end();
    });
    await until(() => ofKind(SpanKind.PRODUCER).length === 2, 'the confirmed sends');
    const sends = ofKind(SpanKind.PRODUCER);
    const { traceId } = sends[0]!.spanContext();
    expectTheyContinue(await peer('amqp', 'consume', queue, 2), sends, traceId);
  });

  describe('unsampled', () => {
    useParentBasedSampler(tracing);

    it('their unsampled confirm-channel publish -> our confirm channel relays -> their consumer: flags 00 all the way, nobody records', async () => {
      const queue = `matrix-${randomUUID()}`;
      const relay = `matrix-relay-${randomUUID()}`;
      const produced = await peer('amqp', 'produce', queue, 1, { PEER_CONFIRM: '1', PEER_SAMPLED: '0' });
      expect(produced.spans).toHaveLength(0);
      const { ch } = await our.amqpChannel(cleanup, [queue, relay], undefined, { confirm: true });
      const got = deferred<{ header: string; ctx: SpanContext | undefined }>();
      await ch.consume(queue, (message) => {
        if (!message) return;
        const seen = { header: String(message.properties.headers?.traceparent), ctx: active() };
        ch.sendToQueue(relay, Buffer.from('relayed'), {}, () => got.resolve(seen));
        ch.ack(message);
      });
      const { header, ctx } = await got.promise;
      const { traceId } = ids(header);
      expect(ids(header).flags).toBe('00');
      expect(ctx).toMatchObject({ traceId, traceFlags: TraceFlags.NONE });
      const consumed = await peer('amqp', 'consume', relay, 1, { PEER_CONFIRM: '1' });
      expect(ids(carriedBy(consumed.seen[0]!))).toMatchObject({ traceId, flags: '00' });
      expect(consumed.seen[0]).toMatchObject({ traceId, traceFlags: TraceFlags.NONE });
      expect(consumed.spans).toHaveLength(0);
      expect(spans()).toHaveLength(0);
    });
  });
});

/** What our handler saw: its active span context and its baggage. */
interface Handled {
  context: SpanContext | undefined;
  baggage: Record<string, string>;
}
const handled = (): Handled => ({ context: active(), baggage: bagOf() });

/**
 * Our relay of the first message of `from` to `to` with `broker`'s client (traced by hoptrace);
 * resolves with what our handler saw once the relay is sent.
 */
async function ourRelay(broker: PeerBroker, from: string, to: string): Promise<Handled> {
  const got = deferred<Handled>();
  if (broker === 'kafka') {
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [from]);
    await consumer.run({
      eachMessage: async () => {
        const seen = handled();
        await relayTo(producer, to);
        got.resolve(seen);
      },
    });
  } else if (broker === 'platformatic') {
    const producer = our.platformaticProducer(cleanup);
    for await (const message of await our.platformaticStream(cleanup, from)) {
      got.resolve(
        await withMessageContext(message, async () => {
          const seen = handled();
          await producer.send({ messages: [{ topic: to, value: 'relayed' }] });
          return seen;
        }),
      );
      break;
    }
  } else if (broker === 'amqp') {
    const { ch } = await our.amqpChannel(cleanup, [from, to]);
    await ch.consume(from, (message) => {
      if (!message) return;
      const seen = handled();
      ch.sendToQueue(to, Buffer.from('relayed'));
      ch.ack(message);
      got.resolve(seen);
    });
  } else {
    our.bullmqRelay(cleanup, from, to, {}, () => got.resolve(handled()));
  }
  return got.promise;
}

/** A new destination for `broker`: a topic on Kafka, a queue name elsewhere. */
const destination = (broker: PeerBroker, prefix: string) =>
  broker === 'kafka' || broker === 'platformatic'
    ? newTopic(prefix)
    : Promise.resolve(`${prefix}-${randomUUID()}`);

describe.each<PeerBroker>(['kafka', 'platformatic', 'amqp', 'bullmq'])(
  '%s: our relay between two processes of the other tool, W3C, no hop budget',
  (broker) => {
    it('their send (with their caller tracestate and baggage) -> our relay -> their consumer: one trace, parents chained, tracestate unchanged, baggage in both handlers', async () => {
      const from = await destination(broker, 'matrix');
      const to = await destination(broker, 'matrix-relay');
      const state = 'vendor=abc,other=x1';
      const incoming = incomingWith(state, 'tenant.id=acme');
      const { request, sends } = theirSends(
        await peer(broker, 'produce', from, 1, { PEER_INCOMING: JSON.stringify(incoming) }),
        1,
      );
      expect(request.traceId).toBe(ids(incoming.traceparent).traceId);
      expect(sends[0]?.traceState).toBe(state);
      const inOurHandler = await ourRelay(broker, from, to);
      await until(
        () => ofKind(SpanKind.CONSUMER).length === 1 && ofKind(SpanKind.PRODUCER).length === 1,
        'our relay',
      );
      const [process] = ofKind(SpanKind.CONSUMER) as [ReadableSpan];
      const [send] = ofKind(SpanKind.PRODUCER) as [ReadableSpan];
      expect(spans()).toHaveLength(2);
      expect(process.spanContext().traceId).toBe(request.traceId);
      expect(parentSpanId(process)).toBe(sends[0]?.spanId);
      expect(process.spanContext().traceState?.serialize()).toBe(state);
      expect(inOurHandler.context?.spanId).toBe(process.spanContext().spanId);
      expect(inOurHandler.baggage).toEqual({ 'tenant.id': 'acme' });
      expect(send.spanContext().traceId).toBe(request.traceId);
      expect(parentSpanId(send)).toBe(process.spanContext().spanId);
      expect(send.spanContext().traceState?.serialize()).toBe(state);
      const consumed = await peer(broker, 'consume', to, 1);
      expectTheyContinue(consumed, [send], request.traceId);
      expect(consumed.seen[0]).toMatchObject({ traceState: state, baggage: { 'tenant.id': 'acme' } });
      const wire =
        broker === 'bullmq'
          ? JSON.parse(consumed.seen[0]?.headers.metadata as string)
          : consumed.seen[0]?.headers;
      expect(wire.tracestate).toBe(state);
    });
  },
);

describe.each<TestPropagator>(['b3', 'b3multi'])('unsampled parents under %s on both sides', (kind) => {
  useParentBasedSampler(tracing);
  usePropagator(() => makePropagator(kind));

  it.each<PeerBroker>(['platformatic', 'amqp', 'bullmq'])(
    '%s: their unsampled send -> our relay -> their consumer: their trace id, unsampled, nobody records it',
    async (broker) => {
      const from = await destination(broker, 'matrix');
      const to = await destination(broker, 'matrix-relay');
      const produced = await peer(broker, 'produce', from, 1, { PEER_SAMPLED: '0', PEER_PROPAGATOR: kind });
      expect(produced.spans).toHaveLength(0);
      const inOurHandler = await ourRelay(broker, from, to);
      expect(inOurHandler.context?.traceFlags).toBe(TraceFlags.NONE);
      const traceId = inOurHandler.context?.traceId;
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      const consumed = await peer(broker, 'consume', to, 1, { PEER_PROPAGATOR: kind });
      expect(consumed.seen[0]).toMatchObject({ traceId, traceFlags: TraceFlags.NONE });
      // A BullMQ worker's own spans (its stalled-job checker, its close) are roots of new traces.
      for (const span of consumed.spans) {
        expect(span.traceId, span.name).not.toBe(traceId);
        expect(span.parentSpanId, span.name).toBeUndefined();
      }
      if (broker !== 'bullmq') expect(consumed.spans).toHaveLength(0);
      expect(spans()).toHaveLength(0);
    },
  );
});

describe('forwarding the consumed headers of their message that carries tracestate and baggage', () => {
  const state = 'vendor=abc,other=x1';
  const incoming = () => incomingWith(state, 'tenant.id=acme');

  it('kafkajs: each W3C header once on the wire, as consumed; their consumer continues it', async () => {
    const topic = await newTopic('matrix');
    const back = await newTopic('matrix-back');
    await peer('kafka', 'produce', topic, 1, { PEER_INCOMING: JSON.stringify(incoming()) });
    const client = traceKafka(kafka());
    const producer = await our.kafkajsProducer(cleanup, client);
    const consumer = await our.kafkajsConsumer(cleanup, client, [topic]);
    let consumed: Record<string, string> | undefined;
    await consumer.run({
      eachMessage: async ({ message }) => {
        consumed = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        await producer.send({ topic: back, messages: [{ value: 'x', headers: message.headers ?? {} }] });
      },
    });
    await until(() => spans().some((s) => s.name === `send ${back}`), 'the forward');
    const [wire] = await our.rawKafkaHeaders(cleanup, back, 1);
    expect(wire).toEqual(consumed);
    const run = await peer('kafka', 'consume', back, 1);
    expect(run.seen[0]).toMatchObject({ traceState: state, baggage: { 'tenant.id': 'acme' } });
  });

  it('@platformatic/kafka: each W3C header once on the wire, as consumed', async () => {
    const topic = await newTopic('matrix');
    const back = await newTopic('matrix-back');
    await peer('platformatic', 'produce', topic, 1, { PEER_INCOMING: JSON.stringify(incoming()) });
    const producer = our.platformaticProducer(cleanup);
    let consumed: Record<string, string> | undefined;
    for await (const message of await our.platformaticStream(cleanup, topic)) {
      consumed = Object.fromEntries([...message.headers].map(([k, v]) => [String(k), String(v)]));
      await withMessageContext(message, () =>
        producer.send({ messages: [{ topic: back, value: 'x', headers: message.headers }] }),
      );
      break;
    }
    const [wire] = await our.rawKafkaHeaders(cleanup, back, 1);
    expect(wire).toEqual(consumed);
    const run = await peer('platformatic', 'consume', back, 1);
    expect(run.seen[0]).toMatchObject({ traceState: state, baggage: { 'tenant.id': 'acme' } });
  });

  it('amqplib: each W3C header once, as consumed', async () => {
    const queue = `matrix-${randomUUID()}`;
    const back = `matrix-back-${randomUUID()}`;
    const { ch } = await our.amqpChannel(cleanup, [queue, back]);
    await peer('amqp', 'produce', queue, 1, { PEER_INCOMING: JSON.stringify(incoming()) });
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
    const run = await peer('amqp', 'consume', back, 1);
    expect(run.seen[0]?.headers).toEqual(consumed);
    expect(run.seen[0]).toMatchObject({ traceState: state, baggage: { 'tenant.id': 'acme' } });
  });
});
