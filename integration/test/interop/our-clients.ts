import { randomUUID } from 'node:crypto';
import { type AmqpTracingOptions, traceChannel } from '@hoptrace/amqp';
import { type ProcessorTracingOptions, traceProcessor, traceQueue } from '@hoptrace/bullmq';
import { type PlatformaticConsumerOptions, traceConsumer, traceProducer } from '@hoptrace/platformatic-kafka';
import { brokerEndpoint, until } from '@hoptrace/test-kit';
import {
  type MessagesStream,
  Consumer as PlatformaticConsumer,
  Producer as PlatformaticProducer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { type Job, Queue, Worker } from 'bullmq';
import type { Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { type Cleanup, kafkajsClient } from './helpers.ts';

// The hoptrace side of an interop test (and the raw reads of what went on the wire): clients on the
// shared test brokers, each closed, or its queues deleted, by `cleanup` after the test.

/** A connected producer of the kafkajs `client` (traced when the client is). */
export async function kafkajsProducer(cleanup: Cleanup, client: Kafka): Promise<Producer> {
  const producer = client.producer();
  cleanup.push(() => producer.disconnect());
  await producer.connect();
  return producer;
}

/** A consumer of the kafkajs `client` in a group of its own, subscribed to `topics` from the beginning. */
export async function kafkajsConsumer(cleanup: Cleanup, client: Kafka, topics: string[]): Promise<Consumer> {
  const consumer = client.consumer({ groupId: `interop-${randomUUID()}`, maxWaitTimeInMs: 100 });
  cleanup.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  return consumer;
}

/** Reads the first `count` messages of `topic` with an untraced kafkajs consumer; their headers as text. */
export async function rawKafkaHeaders(
  cleanup: Cleanup,
  topic: string,
  count: number,
): Promise<Record<string, string>[]> {
  const consumer = await kafkajsConsumer(cleanup, kafkajsClient('interop-raw'), [topic]);
  const seen: KafkaMessage[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.push(message);
    },
  });
  await until(() => seen.length >= count, 'the raw read');
  return seen.map((m) => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers ?? {})) out[k] = Array.isArray(v) ? v.join('|') : String(v);
    return out;
  });
}

/** A traced @platformatic/kafka producer of string keys, values and headers. */
export function platformaticProducer(cleanup: Cleanup): PlatformaticProducer<string, string, string, string> {
  const producer = traceProducer(
    new PlatformaticProducer({
      clientId: 'interop',
      bootstrapBrokers: brokerEndpoint('kafka').brokers,
      serializers: stringSerializers,
    }),
  );
  cleanup.push(() => producer.close());
  return producer;
}

/** The stream of `topic` from the earliest offset of `consumer` traced with `options`. */
export async function platformaticStreamOf<K, V, HK, HV>(
  cleanup: Cleanup,
  consumer: PlatformaticConsumer<K, V, HK, HV>,
  topic: string,
  options?: PlatformaticConsumerOptions,
): Promise<MessagesStream<K, V, HK, HV>> {
  const traced = traceConsumer(consumer, options);
  cleanup.push(() => traced.close(true));
  const stream = await traced.consume({ topics: [topic], mode: 'earliest' });
  cleanup.push(() => stream.close());
  return stream;
}

const platformaticConsumerOptions = () => ({
  clientId: 'interop',
  groupId: `interop-${randomUUID()}`,
  bootstrapBrokers: brokerEndpoint('kafka').brokers,
  maxWaitTime: 100,
});

/** A new @platformatic/kafka consumer (untraced) in a group of its own, reading Buffers. */
export function platformaticConsumer(): PlatformaticConsumer {
  return new PlatformaticConsumer(platformaticConsumerOptions());
}

/** A traced stream of `topic`'s string messages from the earliest offset (see `platformaticStreamOf`). */
export function platformaticStream(
  cleanup: Cleanup,
  topic: string,
  options?: PlatformaticConsumerOptions,
): Promise<MessagesStream<string, string, string, string>> {
  const consumer = new PlatformaticConsumer({
    ...platformaticConsumerOptions(),
    deserializers: stringDeserializers,
  });
  return platformaticStreamOf(cleanup, consumer, topic, options);
}

/**
 * A traced amqplib channel (a confirm channel with `confirm`) and its connection, on which the
 * non-durable `queues` exist for the test.
 */
export async function amqpChannel(
  cleanup: Cleanup,
  queues: string[],
  options?: AmqpTracingOptions,
  how?: { confirm?: false },
): Promise<{ ch: Channel; connection: ChannelModel }>;
export async function amqpChannel(
  cleanup: Cleanup,
  queues: string[],
  options: AmqpTracingOptions | undefined,
  how: { confirm: true },
): Promise<{ ch: ConfirmChannel; connection: ChannelModel }>;
export async function amqpChannel(
  cleanup: Cleanup,
  queues: string[],
  options?: AmqpTracingOptions,
  { confirm = false }: { confirm?: boolean } = {},
): Promise<{ ch: Channel; connection: ChannelModel }> {
  const connection = await amqplib.connect(brokerEndpoint('rabbitmq').url);
  cleanup.push(() => connection.close());
  const ch = traceChannel(
    confirm ? await connection.createConfirmChannel() : await connection.createChannel(),
    options,
  );
  for (const queue of queues) {
    await ch.assertQueue(queue, { durable: false });
    cleanup.push(() => ch.deleteQueue(queue));
  }
  return { ch, connection };
}

/** Returns `queue`, obliterated and closed after the test. */
export function dropAfter<Q extends Queue>(cleanup: Cleanup, queue: Q): Q {
  cleanup.push(() => queue.obliterate({ force: true }).finally(() => queue.close()));
  return queue;
}

/** A BullMQ worker of queue `name` running `processor` traced with `options`, closed after the test. */
export function bullmqWorker(
  cleanup: Cleanup,
  name: string,
  processor: (job: Job) => Promise<unknown>,
  options?: ProcessorTracingOptions,
): Worker {
  const worker = new Worker(name, traceProcessor(processor, options), {
    connection: brokerEndpoint('redis'),
  });
  cleanup.push(() => worker.close());
  return worker;
}

/**
 * Our relay through BullMQ: a traced worker of queue `from` that adds one job to queue `to` for each of
 * its jobs (after passing the job to `onJob`, in the job's context; `onRelayed` once that add is in
 * Redis). Returns the traced queue `to`; both queues are dropped after the test.
 */
export function bullmqRelay(
  cleanup: Cleanup,
  from: string,
  to: string,
  options?: ProcessorTracingOptions,
  onJob: (job: Job) => void = () => undefined,
  onRelayed: () => void = () => undefined,
): Queue {
  const connection = brokerEndpoint('redis');
  const next = dropAfter(cleanup, traceQueue(new Queue(to, { connection })));
  dropAfter(cleanup, new Queue(from, { connection }));
  bullmqWorker(
    cleanup,
    from,
    async (job) => {
      onJob(job);
      await next.add('next', {});
      onRelayed();
    },
    options,
  );
  return next;
}
