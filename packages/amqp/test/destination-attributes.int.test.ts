import { randomUUID } from 'node:crypto';
import { traceChannel } from '@hoptrace/amqp';
import {
  ATTR_MESSAGING_DESTINATION_ANONYMOUS,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_TEMPLATE,
} from '@hoptrace/core/adapter';
import {
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  until,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { SpanKind } from '@opentelemetry/api';
import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { useConnection } from './helpers.ts';

const tracing = useTestTracing();
const amqp = useConnection();

describe('destination attributes of anonymous destinations (semconv-audit)', () => {
  it('direct reply-to: spans named amq.rabbitmq.reply-to carry it as messaging.destination.template', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const queue = `semconv-rpc-${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    const requests: ConsumeMessage[] = [];
    await channel.consume(queue, (m) => m && requests.push(m));
    const reply = deferred();
    await channel.consume('amq.rabbitmq.reply-to', (m) => m && reply.resolve(), { noAck: true });
    channel.sendToQueue(queue, Buffer.from('request'), { replyTo: 'amq.rabbitmq.reply-to' });
    await until(() => requests.length === 1, 'the request');
    const request = requests[0] as ConsumeMessage;
    const address = String(request.properties.replyTo);
    expect(address.startsWith('amq.rabbitmq.reply-to.')).toBe(true);
    channel.sendToQueue(address, Buffer.from('reply'));
    await reply.promise;
    channel.ack(request);
    const spans = await waitForSpans(
      tracing.current.spans,
      (s) =>
        spansNamed(s, 'process amq.rabbitmq.reply-to').length === 1 &&
        spansNamed(s, `process ${queue}`).length === 1,
    );
    const replySend = onlySpan(spans, 'send amq.rabbitmq.reply-to');
    const replyProcess = onlySpan(spans, 'process amq.rabbitmq.reply-to');
    expect(replySend.kind).toBe(SpanKind.PRODUCER);
    expect(replyProcess.kind).toBe(SpanKind.CONSUMER);
    expect(parentSpanId(replyProcess)).toBe(replySend.spanContext().spanId);
    expect(replySend.spanContext().traceId).toBe(replyProcess.spanContext().traceId);
    // The full (high-cardinality) address stays the destination name; the span name's low-cardinality
    // form is its template.
    expect(replySend.attributes).toMatchObject({
      [ATTR_MESSAGING_DESTINATION_NAME]: address,
      [ATTR_MESSAGING_DESTINATION_ANONYMOUS]: true,
      [ATTR_MESSAGING_DESTINATION_TEMPLATE]: 'amq.rabbitmq.reply-to',
    });
    expect(replyProcess.attributes).toMatchObject({
      [ATTR_MESSAGING_DESTINATION_ANONYMOUS]: true,
      [ATTR_MESSAGING_DESTINATION_TEMPLATE]: 'amq.rabbitmq.reply-to',
    });
    expect(String(replyProcess.attributes[ATTR_MESSAGING_DESTINATION_NAME])).toContain(address);
    // A named queue's spans have no template (their name is low-cardinality already).
    const requestSend = onlySpan(spans, `send ${queue}`);
    const requestProcess = onlySpan(spans, `process ${queue}`);
    for (const span of [requestSend, requestProcess]) {
      expect(span.attributes[ATTR_MESSAGING_DESTINATION_NAME]).toBe(queue);
      expect(span.attributes[ATTR_MESSAGING_DESTINATION_TEMPLATE]).toBeUndefined();
      expect(span.attributes[ATTR_MESSAGING_DESTINATION_ANONYMOUS]).toBeUndefined();
    }
    expect(tracing.current.spans()).toHaveLength(4);
  });

  it('a get on an empty server-named queue marks the destination anonymous, as a get of a message does', async () => {
    const channel = traceChannel(await amqp.connection.createChannel());
    const { queue } = await channel.assertQueue('', { exclusive: true });
    expect(queue.startsWith('amq.gen-')).toBe(true);
    expect(await channel.get(queue)).toBe(false);
    channel.sendToQueue(queue, Buffer.from('x'));
    let got: false | ConsumeMessage = false;
    while (got === false) got = (await channel.get(queue)) as false | ConsumeMessage;
    channel.ack(got);
    const receives = spansNamed(tracing.current.spans(), 'receive');
    expect(receives).toHaveLength(2);
    for (const span of receives) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.attributes[ATTR_MESSAGING_DESTINATION_NAME]).toBe(queue);
      expect(span.attributes[ATTR_MESSAGING_DESTINATION_ANONYMOUS]).toBe(true);
      expect(span.attributes[ATTR_MESSAGING_DESTINATION_TEMPLATE]).toBeUndefined();
    }
    const [empty, full] = receives as [(typeof receives)[0], (typeof receives)[0]];
    expect(empty.links).toEqual([]);
    expect(full.links.map((l) => l.context.spanId)).toEqual([
      onlySpan(tracing.current.spans(), 'send').spanContext().spanId,
    ]);
  });
});

describe('spanDestination: the destination of span names, chosen by the application', () => {
  const cases: Array<[string, (queue: string) => unknown, (queue: string) => string | undefined]> = [
    ['a name it returns', () => 'orders-custom', () => 'orders-custom'],
    ['undefined: left out', () => undefined, () => undefined],
    [
      'a hook that throws: the default',
      () => {
        throw new Error('hook broke');
      },
      (queue) => queue,
    ],
    ['a value that is not a string (a number): the default, as when it throws', () => 42, (queue) => queue],
    ['null: left out, as undefined', () => null, () => undefined],
  ];
  for (const [label, hook, expected] of cases) {
    it(label, async () => {
      const channel = traceChannel(await amqp.connection.createChannel(), {
        spanDestination: hook as () => string | undefined,
      });
      const queue = `span-destination-${randomUUID()}`;
      await channel.assertQueue(queue, { exclusive: true });
      const got = deferred<ConsumeMessage>();
      await channel.consume(queue, (m) => m && got.resolve(m));
      channel.sendToQueue(queue, Buffer.from('x'));
      channel.ack(await got.promise);
      const name = expected(queue);
      const spans = await waitForSpans(tracing.current.spans, (s) => s.length === 2);
      const send = onlySpan(spans, name === undefined ? 'send' : `send ${name}`);
      const process = onlySpan(spans, name === undefined ? 'process' : `process ${name}`);
      expect(parentSpanId(process)).toBe(send.spanContext().spanId);
      // The attribute follows the conventions whatever the span name says.
      for (const span of [send, process])
        expect(span.attributes[ATTR_MESSAGING_DESTINATION_NAME]).toBe(queue);
      await channel.close();
    });
  }
});
