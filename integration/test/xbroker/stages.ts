import { randomUUID } from 'node:crypto';
import { traceConnection } from '@hoptrace/amqp';
import { traceProcessor, traceQueue } from '@hoptrace/bullmq';
import { type ConsumerTracingOptions, createLogFields, type LogFields } from '@hoptrace/core';
import { traceKafka } from '@hoptrace/kafka';
import * as plt from '@hoptrace/platformatic-kafka';
import { brokerEndpoint } from '@hoptrace/test-kit';
import { context } from '@opentelemetry/api';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import amqplib from 'amqplib';
import { Queue, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';

/** What a stage's handler sees of one message. */
export interface Received {
  body: string;
  /** The headers as the client handed them out (kafka: Buffers/strings; amqp: values; bullmq: the carrier map). */
  headers: Record<string, unknown>;
  log: LogFields;
  /** What the client handed the handler: kafkajs's payload, @platformatic/kafka's message, amqplib's message, BullMQ's job. */
  raw: unknown;
}

export type Handler = (m: Received) => Promise<void>;

export interface Stage {
  name: string;
  /** Sends a message; `headers` (strings) forwarded as-is when given. */
  send(body: string, headers?: Record<string, string>): Promise<void>;
  /** The handler every consumed message goes to. */
  handler: Handler;
  close(): Promise<void>;
}

/** Text of a header value a client handed out. */
export function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return text(value[0]);
  if (value === undefined || value === null) return undefined;
  return String(value);
}

export function stringHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key in headers) {
    const t = text(headers[key]);
    if (t !== undefined) out[key] = t;
  }
  return out;
}

const id = () => randomUUID().slice(0, 8);

export async function kafkajsStage(
  options: ConsumerTracingOptions = {},
  baggage: string[] = [],
): Promise<Stage> {
  const kafka = traceKafka(
    new Kafka({ clientId: 'xb', brokers: brokerEndpoint('kafka').brokers, logLevel: logLevel.NOTHING }),
    options,
  );
  const topic = `xb-kafkajs-${id()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const consumer = kafka.consumer({ groupId: `xb-${id()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const fields = createLogFields({ baggage });
  const stage: Stage = {
    name: 'kafkajs',
    handler: async () => undefined,
    send: async (body, headers) => {
      await producer.send({ topic, messages: [{ value: body, ...(headers ? { headers } : {}) }] });
    },
    close: async () => {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
  await consumer.run({
    eachMessage: async (payload) => {
      const { message } = payload;
      await stage.handler({
        body: message.value?.toString() ?? '',
        headers: (message.headers ?? {}) as Record<string, unknown>,
        log: fields(),
        raw: payload,
      });
    },
  });
  return stage;
}

export async function platformaticStage(
  options: ConsumerTracingOptions = {},
  baggage: string[] = [],
): Promise<Stage> {
  const bootstrapBrokers = brokerEndpoint('kafka').brokers;
  const topic = `xb-plt-${id()}`;
  const admin = new Admin({ clientId: 'xb-admin', bootstrapBrokers });
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
  await admin.close();
  const producer = plt.traceProducer(
    new Producer<string, string, string, string>({
      clientId: 'xb',
      bootstrapBrokers,
      serializers: stringSerializers,
    }),
  );
  const consumer = plt.traceConsumer(
    new Consumer<string, string, string, string>({
      clientId: 'xb',
      groupId: `xb-${id()}`,
      bootstrapBrokers,
      deserializers: stringDeserializers,
      maxWaitTime: 100,
    }),
    options,
  );
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
  const fields = createLogFields({ baggage });
  const stage: Stage = {
    name: 'platformatic',
    handler: async () => undefined,
    send: async (body, headers) => {
      await producer.send({ messages: [{ topic, value: body, ...(headers ? { headers } : {}) }] });
    },
    close: async () => {
      await stream.close();
      await consumer.close(true);
      await producer.close();
    },
  };
  stream.on('data', (message) => {
    const headers: Record<string, unknown> = {};
    for (const [k, v] of message.headers) headers[String(k)] = v;
    void stage
      .handler({ body: String(message.value), headers, log: fields(), raw: message })
      .catch(() => undefined);
  });
  return stage;
}

export async function amqpStage(
  options: ConsumerTracingOptions = {},
  baggage: string[] = [],
): Promise<Stage> {
  const connection = traceConnection(await amqplib.connect(brokerEndpoint('rabbitmq').url), options);
  const channel = await connection.createConfirmChannel();
  const queue = `xb-amqp-${id()}`;
  await channel.assertQueue(queue, { autoDelete: true });
  const fields = createLogFields({ baggage });
  const stage: Stage = {
    name: 'amqp',
    handler: async () => undefined,
    send: async (body, headers) => {
      channel.sendToQueue(queue, Buffer.from(body), headers ? { headers } : {});
      await channel.waitForConfirms();
    },
    close: async () => {
      await channel.deleteQueue(queue).catch(() => undefined);
      await connection.close();
    },
  };
  await channel.consume(queue, async (msg) => {
    if (!msg) return;
    try {
      await stage.handler({
        body: msg.content.toString(),
        headers: (msg.properties.headers ?? {}) as Record<string, unknown>,
        log: fields(),
        raw: msg,
      });
    } finally {
      channel.ack(msg);
    }
  });
  return stage;
}

export async function bullmqStage(
  options: ConsumerTracingOptions = {},
  baggage: string[] = [],
): Promise<Stage> {
  const connection = { host: brokerEndpoint('redis').host, port: brokerEndpoint('redis').port };
  const name = `xb-bull-${id()}`;
  const queue = traceQueue(new Queue(name, { connection }));
  const fields = createLogFields({ baggage });
  const stage: Stage = {
    name: 'bullmq',
    handler: async () => undefined,
    send: async (body, headers) => {
      await queue.add('j', { body }, headers ? { telemetry: { metadata: JSON.stringify(headers) } } : {});
    },
    close: async () => {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    },
  };
  const worker = new Worker(
    name,
    traceProcessor(async (job) => {
      const metadata = (job.opts as { telemetry?: { metadata?: string } }).telemetry?.metadata;
      await stage.handler({
        body: (job.data as { body: string }).body,
        headers: metadata ? JSON.parse(metadata) : {},
        log: fields(),
        raw: job,
      });
    }, options),
    { connection },
  );
  await worker.waitUntilReady();
  return stage;
}

/** One stage's receipt of a message in {@link runChain}. */
export interface Hop {
  stage: string;
  received: Received;
}

/**
 * Runs one message through `stages` in order: the test sends to the first; each handler sends to the
 * next (fresh, forwarding the consumed headers as-is, or sending the headers `forward` makes of what
 * it received); resolves with every hop seen.
 */
export function runChain(
  stages: Stage[],
  first: { body: string; headers?: Record<string, string> },
  forward: boolean | ((received: Received, stage: Stage) => Record<string, string> | undefined),
  ctx = context.active(),
): Promise<Hop[]> {
  const hops: Hop[] = [];
  return new Promise<Hop[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout after ${hops.map((h) => h.stage)}`)), 30_000);
    stages.forEach((stage, i) => {
      stage.handler = async (received) => {
        if (received.body !== first.body) return;
        hops.push({ stage: stage.name, received });
        const next = stages[i + 1];
        if (!next) {
          clearTimeout(timer);
          resolve(hops);
          return;
        }
        const headers =
          typeof forward === 'function'
            ? forward(received, stage)
            : forward
              ? stringHeaders(received.headers)
              : undefined;
        await next.send(first.body, headers).catch(reject);
      };
    });
    (context.with(ctx, () => stages[0]?.send(first.body, first.headers)) ?? Promise.resolve()).catch(reject);
  });
}
