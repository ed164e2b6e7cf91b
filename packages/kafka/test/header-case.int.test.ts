import { traceKafka } from '@hoptrace/kafka';
import { until, useTestTracing } from '@hoptrace/test-kit';
import { context, trace } from '@opentelemetry/api';
import type { IHeaders, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopics, groupId, newKafka, useKafkaClients } from './helpers.ts';

useTestTracing();
const clients = useKafkaClients();
const STALE = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;

/** What a plain kafkajs consumer reads: each header name with its text, in wire order. */
async function received(kafka: Kafka, name: string, count: number): Promise<[string, string][][]> {
  const out: [string, string][][] = [];
  const consumer = await clients.consumer(kafka.consumer({ groupId: groupId(), maxWaitTimeInMs: 100 }), [
    name,
  ]);
  await consumer.run({
    eachMessage: async ({ message }) => {
      out.push(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
    },
  });
  await until(() => out.length >= count);
  return out;
}

describe('kafkajs: caller headers naming a propagation field in another case', () => {
  it('a stale Traceparent/Tracestate/Baggage travels once, as the fresh lowercase field; other headers as sent', async () => {
    const raw = newKafka('hdrfix-raw');
    const [name] = (await createTopics(raw)) as [string];
    const producer = await clients.producer(traceKafka(newKafka('hdrfix')).producer());
    const request = trace.getTracer('app').startSpan('request');
    const headers: IHeaders = { Traceparent: STALE, TRACESTATE: 'old=1', Baggage: 'tenant=stale', app: 'a' };
    await context.with(trace.setSpan(context.active(), request), () =>
      producer.send({ topic: name, messages: [{ value: 'v', headers }] }),
    );
    request.end();
    expect(Object.keys(headers)).toEqual(['Traceparent', 'TRACESTATE', 'Baggage', 'app']);
    const [wire] = await received(raw, name, 1);
    const names = wire?.map(([k]) => k) ?? [];
    expect(names.filter((k) => k.toLowerCase() === 'traceparent')).toEqual(['traceparent']);
    expect(names.filter((k) => k.toLowerCase() === 'tracestate')).toEqual([]);
    expect(names.filter((k) => k.toLowerCase() === 'baggage')).toEqual([]);
    expect(wire).toContainEqual(['app', 'a']);
    const traceparent = wire?.find(([k]) => k === 'traceparent')?.[1];
    expect(traceparent?.split('-')[1]).toBe(request.spanContext().traceId);
  });
});
