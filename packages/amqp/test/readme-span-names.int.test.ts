import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { traceChannel } from '@hoptrace/amqp';
import { deferred, spansNamed, until, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import type { ConsumeMessage, GetMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { connect } from './helpers.ts';

const tracing = useTestTracing();

/** The span names of the README's Spans table (second column), `{placeholder}` parts as patterns. */
function readmeSpanNames(): { text: string; pattern: RegExp }[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(
    readme.indexOf('\n## Spans'),
    readme.indexOf('\n## ', readme.indexOf('\n## Spans') + 1),
  );
  // The first table of the section: its rows after the header and the separator.
  const lines = section.split('\n');
  const rows: string[] = [];
  for (let i = lines.findIndex((l) => l.startsWith('|')) + 2; lines[i]?.startsWith('|'); i++) {
    rows.push(lines[i] as string);
  }
  const names: { text: string; pattern: RegExp }[] = [];
  for (const row of rows) {
    const cell = row.split('|')[2] ?? '';
    for (const [, text] of cell.matchAll(/`([^`]+)`/g)) {
      const source = (text as string)
        .split(/(\{[^}]+\})/)
        .map((part) => (part.startsWith('{') ? '[^ ]+' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
        .join('');
      names.push({ text: text as string, pattern: new RegExp(`^${source}$`) });
    }
  }
  return names;
}

describe('README span names (12.18)', () => {
  it('every span name the README shows is emitted, and every emitted name is one the README shows', async () => {
    const documented = readmeSpanNames();
    expect(documented.length).toBe(16);
    const connection = await connect();
    try {
      const channel = traceChannel(await connection.createChannel(), { settleSpans: true });
      const id = randomUUID();
      const queue = `named-${id}`;
      const exchange = `ex-${id}`;
      await channel.assertQueue(queue, { exclusive: true });
      await channel.assertExchange(exchange, 'direct', { autoDelete: true });
      const { queue: bound } = await channel.assertQueue('', { exclusive: true });
      const { queue: direct } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(bound, exchange, 'rk');
      const held: ConsumeMessage[] = [];
      await channel.consume(queue, (m) => m && held.push(m));
      await channel.consume(bound, (m) => m && channel.reject(m, false));
      await channel.consume(direct, (m) => m && channel.ack(m));
      const reply = deferred();
      await channel.consume('amq.rabbitmq.reply-to', (m) => m && reply.resolve(), { noAck: true });
      channel.sendToQueue(queue, Buffer.from('1'), { replyTo: 'amq.rabbitmq.reply-to' }); // send {queue}
      channel.sendToQueue(queue, Buffer.from('2'));
      channel.publish(exchange, 'rk', Buffer.from('3')); // send {exchange} -> process {exchange}
      channel.sendToQueue(direct, Buffer.from('4')); // send -> process
      await until(() => held.length === 2, 'two deliveries');
      const first = held[0] as ConsumeMessage;
      channel.sendToQueue(String(first.properties.replyTo), Buffer.from('r')); // send amq.rabbitmq.reply-to
      await reply.promise;
      channel.ack(first); // ack {queue}
      channel.nack(held[1] as ConsumeMessage, false, false); // nack {queue}
      channel.nackAll(); // nothing open: nack
      const pulled = `pull-${id}`;
      await channel.assertQueue(pulled, { exclusive: true });
      channel.sendToQueue(pulled, Buffer.from('5'));
      channel.sendToQueue(pulled, Buffer.from('6'));
      channel.sendToQueue(pulled, Buffer.from('7'));
      const pull = traceChannel(await connection.createChannel(), {
        settleSpans: true,
        maxOpenDeliveries: 1,
      });
      let got: GetMessage | false = false;
      while (got === false) got = await pull.get(pulled); // receive {queue}
      pull.ack(got); // a got message's settle names its queue too: ack {queue}
      pull.ackAll(); // nothing open: ack
      await pull.get(direct); // receive (server-named)
      // Two deliveries on a channel that keeps one open: the first is pushed out, its settle names none.
      const pushed: ConsumeMessage[] = [];
      await pull.consume(pulled, (m) => m && pushed.push(m));
      await until(() => pushed.length === 2, 'two deliveries on the pull channel');
      pull.reject(pushed[0] as ConsumeMessage, false); // reject
      const done = await waitForSpans(
        tracing.current.spans,
        (s) =>
          spansNamed(s, `reject ${exchange}`).length === 1 &&
          s.some((x) => x.name === 'process') &&
          s.some((x) => x.name === 'reject'),
      );
      const emitted = new Set(done.map((s) => s.name));
      for (const name of emitted) {
        expect(
          documented.some((d) => d.pattern.test(name)),
          `${name} is not in the README`,
        ).toBe(true);
      }
      for (const d of documented) {
        expect(
          [...emitted].some((name) => d.pattern.test(name)),
          `README shows ${d.text}, never emitted`,
        ).toBe(true);
      }
    } finally {
      await connection.close();
    }
  });
});
