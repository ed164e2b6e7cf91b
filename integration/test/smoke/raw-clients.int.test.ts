import { randomUUID } from 'node:crypto';
import { brokerEndpoint } from '@hoptrace/test-kit';
import amqplib from 'amqplib';
import { Queue, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';

// Proof that the harness hands out real brokers: the raw clients, no hoptrace, one round trip each.

describe('smoke: raw clients against the harness brokers', () => {
  it('produces and consumes one Kafka message', async () => {
    const topic = `smoke-${randomUUID()}`;
    const kafka = new Kafka({
      clientId: 'smoke',
      brokers: brokerEndpoint('kafka').brokers,
      logLevel: logLevel.ERROR,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: `smoke-${randomUUID()}` });
    try {
      await producer.connect();
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = new Promise<{ value: string; header: string }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            resolve({
              value: message.value?.toString() ?? '',
              header: message.headers?.probe?.toString() ?? '',
            });
          },
        });
      });
      await producer.send({ topic, messages: [{ value: 'hello kafka', headers: { probe: 'p1' } }] });
      await expect(received).resolves.toEqual({ value: 'hello kafka', header: 'p1' });
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  });

  it('publishes and consumes one RabbitMQ message', async () => {
    const connection = await amqplib.connect(brokerEndpoint('rabbitmq').url);
    try {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      const received = new Promise<string>((resolve) => {
        void channel.consume(queue, (message) => {
          if (!message) return;
          channel.ack(message);
          resolve(message.content.toString());
        });
      });
      channel.sendToQueue(queue, Buffer.from('hello rabbit'));
      await expect(received).resolves.toBe('hello rabbit');
    } finally {
      await connection.close();
    }
  });

  it('adds and processes one BullMQ job', async () => {
    const name = `smoke-${randomUUID()}`;
    const connection = brokerEndpoint('redis');
    const queue = new Queue(name, { connection });
    let worker: Worker | undefined;
    try {
      const processed = new Promise<unknown>((resolve) => {
        worker = new Worker(name, async (job) => resolve(job.data), { connection });
      });
      await queue.add('greet', { hello: 'bullmq' });
      await expect(processed).resolves.toEqual({ hello: 'bullmq' });
    } finally {
      await worker?.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
