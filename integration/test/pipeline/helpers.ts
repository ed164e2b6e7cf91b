import { parentSpanId } from '@hoptrace/test-kit';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { expect } from 'vitest';

/** The spans of one order's trace, found by their conventions attributes (not by name). */
export interface OrderTrace {
  request: ReadableSpan;
  kafkaSend: ReadableSpan;
  kafkaProcess: ReadableSpan;
  rabbitSend: ReadableSpan;
  rabbitProcess: ReadableSpan;
  bullSend?: ReadableSpan;
  bullProcess: ReadableSpan[];
  /** The poison order's dead-letter copy: its send (inside the failed attempt) and its processing. */
  deadLetterSend?: ReadableSpan;
  deadLetterProcess?: ReadableSpan;
}

const sys = (s: ReadableSpan) => s.attributes['messaging.system.name'];
const op = (s: ReadableSpan) => s.attributes['messaging.operation.type'];

function one(spans: ReadableSpan[], what: string, pick: (s: ReadableSpan) => boolean): ReadableSpan {
  const found = spans.filter(pick);
  expect(found, `${what}: ${spans.map((s) => s.name).join(', ')}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

/** Splits one order's trace into its hops and asserts count, kinds, names and parentage hop by hop. */
export function orderTrace(
  all: readonly ReadableSpan[],
  traceId: string,
  names: { ordersTopic: string; fulfilmentQueue: string; deadLetterExchange: string },
): OrderTrace {
  const spans = all.filter((s) => s.spanContext().traceId === traceId);
  const request = one(spans, 'request span', (s) => s.name === 'POST /orders');
  expect(request.kind).toBe(SpanKind.SERVER);
  expect(parentSpanId(request)).toBeUndefined();

  const kafkaSend = one(spans, 'kafka send', (s) => sys(s) === 'kafka' && op(s) === 'send');
  expect(kafkaSend.name).toBe(`send ${names.ordersTopic}`);
  expect(kafkaSend.kind).toBe(SpanKind.PRODUCER);
  expect(parentSpanId(kafkaSend)).toBe(request.spanContext().spanId);

  const kafkaProcess = one(spans, 'kafka process', (s) => sys(s) === 'kafka' && op(s) === 'process');
  expect(kafkaProcess.name).toBe(`process ${names.ordersTopic}`);
  expect(kafkaProcess.kind).toBe(SpanKind.CONSUMER);
  expect(parentSpanId(kafkaProcess)).toBe(kafkaSend.spanContext().spanId);
  // The parent already ties them: no link repeating it.
  expect(kafkaProcess.links).toEqual([]);

  const toDeadLetters = (s: ReadableSpan) =>
    s.attributes['messaging.destination.name'] === names.deadLetterExchange;
  const rabbitSend = one(
    spans,
    'rabbitmq send',
    (s) => sys(s) === 'rabbitmq' && op(s) === 'send' && !toDeadLetters(s),
  );
  expect(rabbitSend.name).toMatch(/^send /);
  expect(rabbitSend.kind).toBe(SpanKind.PRODUCER);
  expect(parentSpanId(rabbitSend)).toBe(kafkaProcess.spanContext().spanId);

  const rabbitProcesses = spans.filter((s) => sys(s) === 'rabbitmq' && op(s) === 'process');
  const rabbitProcess = one(rabbitProcesses, 'rabbitmq process (first delivery)', (s) =>
    String(s.attributes['messaging.destination.name']).includes('fulfilment-requests'),
  );
  expect(rabbitProcess.kind).toBe(SpanKind.CONSUMER);
  expect(parentSpanId(rabbitProcess)).toBe(rabbitSend.spanContext().spanId);
  const deadLetterProcess = rabbitProcesses.find((s) =>
    String(s.attributes['messaging.destination.name']).includes('fulfilment-dead'),
  );
  const deadLetterSend = spans.find((s) => sys(s) === 'rabbitmq' && op(s) === 'send' && toDeadLetters(s));
  if (deadLetterSend) expect(parentSpanId(deadLetterSend)).toBe(rabbitProcess.spanContext().spanId);

  const bullSends = spans.filter((s) => sys(s) === 'bullmq' && op(s) === 'send');
  const bullProcess = spans
    .filter((s) => sys(s) === 'bullmq' && op(s) === 'process')
    .sort((a, b) => Number(a.attributes['bullmq.job.attempt']) - Number(b.attributes['bullmq.job.attempt']));
  const bullSend = bullSends[0];
  if (bullSend) {
    expect(bullSends).toHaveLength(1);
    expect(bullSend.name).toBe(`send ${names.fulfilmentQueue}`);
    expect(bullSend.kind).toBe(SpanKind.PRODUCER);
    expect(parentSpanId(bullSend)).toBe(rabbitProcess.spanContext().spanId);
    for (const attempt of bullProcess) {
      expect(attempt.name).toBe(`process ${names.fulfilmentQueue}`);
      expect(attempt.kind).toBe(SpanKind.CONSUMER);
      expect(parentSpanId(attempt)).toBe(bullSend.spanContext().spanId);
    }
  }
  return {
    request,
    kafkaSend,
    kafkaProcess,
    rabbitSend,
    rabbitProcess,
    ...(bullSend ? { bullSend } : {}),
    bullProcess,
    ...(deadLetterSend ? { deadLetterSend } : {}),
    ...(deadLetterProcess ? { deadLetterProcess } : {}),
  };
}
