import {
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@hoptrace/core/adapter';
import { traceConsumer, traceProducer } from '@hoptrace/kafka';
import { onlySpan, spansNamed, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ConsumerRunConfig } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, seedBrokerAttributes, useKafkaClients } from './helpers.ts';

const tracing = useTestTracing();

const clients = useKafkaClients();

function spans(): ReadableSpan[] {
  return tracing.current.spans();
}

const seedBroker = seedBrokerAttributes();

/** What every span of a client made by `newKafka(clientId)` says about it. */
function learned(clientId: string) {
  return {
    [ATTR_MESSAGING_CLIENT_ID]: clientId,
    [ATTR_SERVER_ADDRESS]: seedBroker['server.address'],
    [ATTR_SERVER_PORT]: seedBroker['server.port'],
  };
}

/** Start time in nanoseconds, to order spans. */
function started(span: ReadableSpan): number {
  return span.startTime[0] * 1e9 + span.startTime[1];
}

describe('client info learned after the spans it belongs on started', () => {
  it('a producer wrapped after connect() puts client id and server on its first send spans', async () => {
    const kafka = newKafka('late-producer');
    const [topic] = (await createTopics(kafka)) as [string];
    // Connected first (its connect requests are not seen), wrapped after.
    const producer = traceProducer(await clients.producer(kafka.producer()));
    await producer.send({ topic, messages: [{ value: 'first' }] });
    await producer.send({ topic, messages: [{ value: 'second' }] });
    const sends = spansNamed(spans(), `send ${topic}`).sort((a, b) => started(a) - started(b));
    expect(sends).toHaveLength(2);
    for (const send of sends) expect(send.attributes).toMatchObject(learned('late-producer'));
  });

  it('a producer wrapped after connect() puts them on a first sendBatch and its create spans', async () => {
    const kafka = newKafka('late-batch');
    const [a, b] = (await createTopics(kafka, 2)) as [string, string];
    const producer = traceProducer(await clients.producer(kafka.producer()), { createSpans: true });
    await producer.sendBatch({
      topicMessages: [
        { topic: a, messages: [{ value: 'a1' }, { value: 'a2' }] },
        { topic: b, messages: [{ value: 'b1' }] },
      ],
    });
    await producer.sendBatch({ topicMessages: [{ topic: a, messages: [{ value: 'a3' }] }] });
    const all = spans();
    const first = onlySpan(all, 'send');
    const second = onlySpan(all, `send ${a}`);
    const creates = [...spansNamed(all, `create ${a}`), ...spansNamed(all, `create ${b}`)];
    expect(creates).toHaveLength(3);
    for (const span of [first, second, ...creates])
      expect(span.attributes).toMatchObject(learned('late-batch'));
  });

  it.each(['send', 'sendOffsets'] as const)(
    'a transactional producer wrapped after its first transaction puts them on the next one (%s first)',
    async (first) => {
      const kafka = newKafka(`late-tx-${first}`);
      const [topic] = (await createTopics(kafka)) as [string];
      const raw = await clients.producer(
        kafka.producer({ transactionalId: `hoptrace-tx-${topic}`, idempotent: true, maxInFlightRequests: 1 }),
      );
      // A transaction begun before wrapping initializes the producer id, so transaction() makes no
      // request after (aborted empty, it makes none either).
      await (await raw.transaction()).abort();
      const producer = traceProducer(raw);
      const transaction = await producer.transaction();
      const sendOffsets = () =>
        transaction.sendOffsets({
          consumerGroupId: `g-${topic}`,
          topics: [{ topic, partitions: [{ partition: 0, offset: '0' }] }],
        });
      const send = () => transaction.send({ topic, messages: [{ value: 'inside' }] });
      if (first === 'send') {
        await send();
        await sendOffsets();
      } else {
        await sendOffsets();
        await send();
      }
      await transaction.commit();
      const all = spans();
      const traced = [
        onlySpan(all, `send_offsets ${topic}`),
        onlySpan(all, `send ${topic}`),
        onlySpan(all, 'commit_transaction'),
      ];
      for (const span of traced) expect(span.attributes).toMatchObject(learned(`late-tx-${first}`));
    },
  );

  it.each([
    ['eachMessage', 2],
    ['eachBatch', 3],
  ] as const)(
    'a consumer wrapped after connect() and subscribe() puts them on its first process spans (%s)',
    async (handler, expected) => {
      const kafka = newKafka(`late-consumer-${handler}`);
      const [topic] = (await createTopics(kafka)) as [string];
      const producer = await clients.producer(kafka.producer());
      await producer.send({ topic, messages: [{ value: 'm1' }, { value: 'm2' }] });
      const group = groupId();
      const consumer = traceConsumer(
        await clients.consumer(kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 }), [topic]),
      );
      const config: ConsumerRunConfig =
        handler === 'eachMessage'
          ? { eachMessage: async () => undefined }
          : { eachBatch: async () => undefined };
      await consumer.run(config);
      const all = await waitForSpans(spans, (s) => spansNamed(s, `process ${topic}`).length === expected);
      for (const process of spansNamed(all, `process ${topic}`)) {
        expect(process.attributes).toMatchObject({
          ...learned(`late-consumer-${handler}`),
          [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: group,
        });
      }
    },
  );
});
