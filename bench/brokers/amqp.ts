// RabbitMQ suite: publish N messages of 100 B to a fresh queue (plain channel: respecting 'drain';
// confirm channel: at most 1,000 unconfirmed) and consume them on a second channel with prefetch 1
// or 100 (on a second connection), acking each message.
import { once } from 'node:events';
import type * as Amqplib from 'amqplib';
import { importAdapter, type Prepared, type SuiteEnv, type Tracker } from './tracker.ts';
import type { Scenario } from './types.ts';

const SIZE = 100;
const UNCONFIRMED = 1000;

/** RabbitMQ scenarios: channel kind x prefetch. */
export function amqpScenarios(): Scenario[] {
  const out: Scenario[] = [];
  for (const confirm of [true, false]) {
    for (const prefetch of [1, 100]) {
      out.push({
        id: `amqp-${confirm ? 'confirm' : 'plain'}-prefetch-${prefetch}`,
        label: `${confirm ? 'confirm' : 'plain'} channel, prefetch ${prefetch}`,
        settings: { confirm, prefetch },
      });
    }
  }
  return out;
}

/** Builds one RabbitMQ scenario: connection, queue, publishing channel, consumer (consuming). */
export async function prepareAmqp(env: SuiteEnv, scenario: Scenario, tracker: Tracker): Promise<Prepared> {
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
    tracker.message();
  });
  const body = Buffer.alloc(SIZE, 'x');

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
          if (!channel.sendToQueue(queue, body, {}, confirmed)) await once(channel, 'drain');
        }
        await channel.waitForConfirms();
      } else {
        for (let i = 0; i < tracker.n; i++) {
          const wait = tracker.room(1);
          if (wait) await wait;
          if (!pub.sendToQueue(queue, body)) await once(pub, 'drain');
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
