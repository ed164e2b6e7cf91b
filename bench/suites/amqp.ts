// RabbitMQ suite (amqplib): publish N messages of 100 B to a fresh queue (plain channel: respecting
// 'drain'; confirm channel: at most 1,000 unconfirmed) and consume them on a channel of a second
// connection with prefetch 1 or 100, acking each message.
import { once } from 'node:events';
import type * as AmqplibInstrumentation from '@opentelemetry/instrumentation-amqplib';
import type * as Amqplib from 'amqplib';
import { floorTraceparent } from '../brokers/floor.ts';
import { registerRequireTime } from '../brokers/incumbent.ts';
import { importAdapter } from '../brokers/tracker.ts';
import type { BenchSuite, Counter, Prepared, Scenario, SuiteEnv } from '../brokers/types.ts';
import { packageVersion } from '../lib/versions.ts';

const SIZE = 100;
const UNCONFIRMED = 1000;

function scenarios(): Scenario[] {
  const out: Scenario[] = [];
  for (const confirm of [true, false]) {
    for (const prefetch of [1, 100]) {
      out.push({
        id: `amqp-${confirm ? 'confirm' : 'plain'}-prefetch-${prefetch}`,
        label: `${confirm ? 'confirm' : 'plain'} channel, prefetch ${prefetch}`,
        settings: { confirm, prefetch },
        targetOn: 0.6,
      });
    }
  }
  return out;
}

/** Builds one RabbitMQ scenario: connections, queue, publishing channel, consumer (consuming). */
async function prepare(env: SuiteEnv, scenario: Scenario, tracker: Counter): Promise<Prepared> {
  const amqplib = env.require('amqplib') as typeof Amqplib;
  // Publisher and consumer on separate connections, as RabbitMQ advises: credit flow throttles a
  // publishing connection as a whole, which would hold back the consumer's acks too.
  let pubConnection = await amqplib.connect(env.endpoints.rabbitmq!.url);
  let subConnection = await amqplib.connect(env.endpoints.rabbitmq!.url);
  if (env.variant.library === 'hoptrace') {
    const { traceConnection } = await importAdapter('amqp', () => import('@hoptrace/amqp'));
    pubConnection = traceConnection(pubConnection);
    subConnection = traceConnection(subConnection);
  }
  const queue = `bench-${env.unique}`;
  const confirm = scenario.settings.confirm === true;
  const pub: Amqplib.Channel = confirm
    ? await pubConnection.createConfirmChannel()
    : await pubConnection.createChannel();
  await pub.assertQueue(queue, { durable: false });
  const sub = await subConnection.createChannel();
  await sub.prefetch(Number(scenario.settings.prefetch));
  await sub.consume(queue, (msg) => {
    if (!msg) return;
    sub.ack(msg);
    tracker.message(msg.properties.headers?.traceparent !== undefined);
  });
  const body = Buffer.alloc(SIZE, 'x');
  const withHeader = env.variant.library === 'raw+header';
  // The options of message i: none, or (header floor) a traceparent header.
  const options = (i: number): Amqplib.Options.Publish =>
    withHeader ? { headers: { traceparent: floorTraceparent(i) } } : {};

  return {
    async send() {
      if (confirm) {
        const channel = pub as Amqplib.ConfirmChannel;
        let unconfirmed = 0;
        let room: (() => void) | undefined;
        const confirmed = () => {
          unconfirmed--;
          if (room && unconfirmed <= UNCONFIRMED / 2) {
            const resolve = room;
            room = undefined;
            resolve();
          }
        };
        for (let i = 0; i < tracker.n; i++) {
          const wait = tracker.room(1);
          if (wait) await wait;
          if (unconfirmed >= UNCONFIRMED) {
            await new Promise<void>((resolve) => {
              room = resolve;
            });
          }
          unconfirmed++;
          if (!channel.sendToQueue(queue, body, options(i), confirmed)) await once(channel, 'drain');
        }
        await channel.waitForConfirms();
      } else {
        for (let i = 0; i < tracker.n; i++) {
          const wait = tracker.room(1);
          if (wait) await wait;
          if (!pub.sendToQueue(queue, body, options(i))) await once(pub, 'drain');
        }
      }
    },
    async close() {
      await sub.close();
      await pub.deleteQueue(queue);
      await pub.close();
      await subConnection.close();
      await pubConnection.close();
    },
  };
}

/** amqplib 2.3.1: raw, header floor, hoptrace, @opentelemetry/instrumentation-amqplib. */
export const suite: BenchSuite = {
  name: 'amqp',
  title: 'RabbitMQ (amqplib 2.3.1)',
  broker: 'rabbitmq',
  incumbent: '@opentelemetry/instrumentation-amqplib',
  incumbentSetup: () =>
    `@opentelemetry/instrumentation-amqplib ${packageVersion('@opentelemetry/instrumentation-amqplib')} ` +
    `(@opentelemetry/instrumentation ${packageVersion('@opentelemetry/instrumentation')}), registered before amqplib ` +
    `${packageVersion('amqplib')} is required`,
  order: 20,
  messages: { full: 5_000, quick: 1_500, smoke: 200 },
  window: 5_000,
  soakScenario: 'amqp-confirm-prefetch-100',
  scenarios,
  registerIncumbent({ require, tracerProvider }) {
    const { AmqplibInstrumentation: Amqp } =
      require('@opentelemetry/instrumentation-amqplib') as typeof AmqplibInstrumentation;
    registerRequireTime(require, new Amqp(), tracerProvider);
  },
  prepare,
};
