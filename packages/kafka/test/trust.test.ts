import { ATTR_HOPTRACE_ERROR_RETRYABLE } from '@hoptrace/core';
import {
  ATTR_ERROR_TYPE,
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_MESSAGING_DESTINATION_NAME,
  DEFAULT_METRIC_ATTRIBUTE_SETS,
  DEFAULT_SPAN_TEMPLATES,
} from '@hoptrace/core/adapter';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/kafka';
import { onlySpan, spansNamed, TestMetricReader, useTestTracing } from '@hoptrace/test-kit';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { EachMessagePayload, Producer, ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { batchPayload, fakeConsumer, fakeProducer, message } from './helpers.ts';

const tracing = useTestTracing();

const hostile = {
  get message(): string {
    throw new Error('message getter');
  },
  get name(): string {
    throw new Error('name getter');
  },
  toString(): string {
    throw new Error('toString');
  },
};
const trap = new Proxy(
  {},
  {
    get() {
      throw new Error('get trap');
    },
    getPrototypeOf() {
      throw new Error('prototype trap');
    },
  },
);

/** Every kind of value a handler or client can throw. */
const THROWN: ReadonlyArray<readonly [string, unknown]> = [
  ['null', null],
  ['undefined', undefined],
  ['a number', 0],
  ['a string', 'plain text'],
  ['a boolean', false],
  ['a bigint', 12n],
  ['a symbol', Symbol('thrown')],
  ['a null-prototype object', Object.assign(Object.create(null), { code: 'NULL_PROTO' })],
  ['an object whose message/name/toString throw', hostile],
  ['a Proxy whose traps throw', trap],
  ['a frozen Error', Object.freeze(new TypeError('frozen'))],
];

/**
 * Settles `promise` and returns what it rejected with (a sentinel when it resolved). Boxed, so a
 * thrown thenable-looking value (a Proxy) is never adopted by the promise that carries it back.
 */
async function settle(promise: Promise<unknown> | undefined): Promise<{ error: unknown }> {
  try {
    await promise;
    return { error: RESOLVED };
  } catch (error) {
    return { error };
  }
}
const RESOLVED = Symbol('resolved');
async function expectRejection(promise: Promise<unknown> | undefined, value: unknown): Promise<void> {
  const { error } = await settle(promise);
  expect(error).toBe(value);
}

function payloadFor(topic: string): EachMessagePayload {
  return {
    topic,
    partition: 0,
    message: message(1),
    heartbeat: async () => undefined,
    pause: () => () => undefined,
  };
}

describe('12.1 any thrown value reaches the host unchanged and the span ends ERROR', () => {
  it.each(THROWN)('eachMessage handler throws %s', async (_, value) => {
    const fake = fakeConsumer();
    await traceConsumer(fake.consumer).run({
      eachMessage: async () => {
        throw value;
      },
    });
    await expectRejection(fake.config?.eachMessage?.(payloadFor('t')), value);
    const span = onlySpan(tracing.current.spans(), 'process t');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(typeof span.attributes[ATTR_ERROR_TYPE]).toBe('string');
  });

  it.each(THROWN)('eachMessage handler throws %s synchronously', async (_, value) => {
    const fake = fakeConsumer();
    await traceConsumer(fake.consumer).run({
      eachMessage: (() => {
        throw value;
      }) as never,
    });
    let caught: unknown = Symbol('none');
    try {
      await fake.config?.eachMessage?.(payloadFor('t'));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(value);
    expect(onlySpan(tracing.current.spans(), 'process t').status.code).toBe(SpanStatusCode.ERROR);
  });

  it.each(THROWN)('eachBatch handler throws %s (both batch modes)', async (_, value) => {
    for (const batchSpans of ['message', 'batch'] as const) {
      tracing.current.reset();
      const fake = fakeConsumer();
      await traceConsumer(fake.consumer, { batchSpans }).run({
        eachBatch: async () => {
          throw value;
        },
      });
      const { payload } = batchPayload('t', [message(0), message(1)]);
      await expectRejection(fake.config?.eachBatch?.(payload), value);
      const spans = spansNamed(tracing.current.spans(), 'process t');
      const batch = spans.find((s) => s.attributes['messaging.batch.message_count'] === 2);
      expect(batch?.status.code).toBe(SpanStatusCode.ERROR);
      expect(tracing.current.openSpans()).toHaveLength(0);
    }
  });

  it.each(THROWN)('withMessageContext callback throws %s', async (_, value) => {
    const fake = fakeConsumer();
    let inner: unknown = Symbol('none');
    await traceConsumer(fake.consumer, { batchSpans: 'batch' }).run({
      eachBatch: async ({ batch }) => {
        try {
          await withMessageContext(batch.messages[0] as never, async () => {
            throw value;
          });
        } catch (error) {
          inner = error;
        }
      },
    });
    const { payload } = batchPayload('t', [message(0)]);
    await fake.config?.eachBatch?.(payload);
    expect(inner).toBe(value);
    const spans = spansNamed(tracing.current.spans(), 'process t');
    expect(spans.filter((s) => s.status.code === SpanStatusCode.ERROR)).toHaveLength(1);
  });

  it.each(THROWN)('send rejects with %s (plain and in a transaction)', async (_, value) => {
    const failing = (): Promise<never> => Promise.reject(value);
    const raw = fakeProducer().producer;
    const producer = traceProducer({ ...raw, send: failing, sendBatch: failing } as Producer);
    await expectRejection(producer.send({ topic: 't', messages: [{ value: 'a' }] }), value);
    await expectRejection(
      producer.sendBatch({ topicMessages: [{ topic: 't', messages: [{ value: 'a' }, { value: 'b' }] }] }),
      value,
    );
    const spans = spansNamed(tracing.current.spans(), 'send t');
    expect(spans).toHaveLength(2);
    for (const span of spans) expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('12.2 caller data that throws while copied', () => {
  it('a headers object with a throwing getter: create and send spans end, the host gets its own error', async () => {
    const own = new Error('getter');
    const headers = {
      get 'x-tenant'(): string {
        throw own;
      },
    };
    const seen: ProducerRecord[] = [];
    const raw = fakeProducer().producer;
    const producer = traceProducer(
      {
        ...raw,
        // Like kafkajs: reading every header value while encoding.
        send: async (record: ProducerRecord) => {
          seen.push(record);
          for (const m of record.messages)
            for (const key of Object.keys(m.headers ?? {})) void m.headers?.[key];
          return [];
        },
      } as Producer,
      { createSpans: true },
    );
    const record = { topic: 't', messages: [{ value: 'a', headers }, { value: 'b' }] };
    await expectRejection(producer.send(record), own);
    // kafkajs got the caller's own record (it raised the same error it raises without hoptrace).
    expect(seen[0]).toBe(record);
    const all = tracing.current.spans();
    expect(spansNamed(all, 'create t')).toHaveLength(2);
    expect(spansNamed(all, 'send t')).toHaveLength(1);
    for (const span of all) expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(tracing.current.openSpans()).toHaveLength(0);
  });

  it('a record whose messages getter throws goes to kafkajs untouched, with no span', async () => {
    const own = new Error('messages getter');
    const raw = fakeProducer().producer;
    const producer = traceProducer({
      ...raw,
      send: async (record: ProducerRecord) => record.messages && [],
    } as Producer);
    const record = {
      topic: 't',
      get messages(): never {
        throw own;
      },
    };
    await expectRejection(producer.send(record as never), own);
    expect(tracing.current.spans()).toHaveLength(0);
  });
});

describe('12.4 keys are private by default and capped when opted in', () => {
  it('never records a key by default; a 1 MB key becomes at most 256 characters', async () => {
    const huge = 'k'.repeat(1024 * 1024);
    const hugeBuffer = Buffer.alloc(1024 * 1024, 0x6b);
    for (const captureKeys of [false, true]) {
      tracing.current.reset();
      const fake = fakeProducer();
      const producer = traceProducer(fake.producer, captureKeys ? { captureKeys } : {});
      await producer.send({ topic: 't', messages: [{ key: huge, value: 'a' }] });
      await producer.send({ topic: 'u', messages: [{ key: hugeBuffer, value: 'a' }] });
      const consumer = fakeConsumer();
      await traceConsumer(consumer.consumer, captureKeys ? { captureKeys } : {}).run({
        eachMessage: async () => undefined,
      });
      await consumer.config?.eachMessage?.({
        ...payloadFor('t'),
        message: message(1, {}, Buffer.from(huge)),
      });
      const keyOf = (name: string) =>
        onlySpan(tracing.current.spans(), name).attributes[ATTR_KAFKA_MESSAGE_KEY];
      if (!captureKeys) {
        expect(keyOf('send t')).toBeUndefined();
        expect(keyOf('process t')).toBeUndefined();
      } else {
        expect(keyOf('send t')).toBe('k'.repeat(256));
        // Buffer keys over 1 KB are never decoded.
        expect(keyOf('send u')).toBeUndefined();
        expect(keyOf('process t')).toBeUndefined();
      }
      expect(fake.sent[0]?.messages[0]?.key).toBe(huge);
    }
  });
});

describe('12.9 caches keyed by topic names are capped', () => {
  it('past the cap, metric series collapse without a destination and span names stay right', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer, { meterProvider });
    const topics = Math.max(DEFAULT_METRIC_ATTRIBUTE_SETS, DEFAULT_SPAN_TEMPLATES) + 50;
    for (let i = 0; i < topics; i++) await producer.send({ topic: `topic-${i}`, messages: [{ value: 'a' }] });
    const { resourceMetrics } = await reader.collect();
    const sent = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === 'messaging.client.sent.messages');
    const points = sent?.dataPoints ?? [];
    expect(points.length).toBeLessThanOrEqual(DEFAULT_METRIC_ATTRIBUTE_SETS + 1);
    const collapsed = points.find((p) => p.attributes[ATTR_MESSAGING_DESTINATION_NAME] === undefined);
    expect(collapsed?.value).toBe(topics - (points.length - 1));
    // Templates past the cap are built per call: names are still exact.
    const last = onlySpan(tracing.current.spans(), `send topic-${topics - 1}`);
    expect(last.attributes[ATTR_MESSAGING_DESTINATION_NAME]).toBe(`topic-${topics - 1}`);
  });
});

describe('13.1 classifyError', () => {
  it('names error.type and retryable on the process and send spans; a throwing classifier changes nothing for the host', async () => {
    class StockError extends Error {}
    const classifyError = (error: unknown) =>
      error instanceof StockError ? { type: 'STOCK_UNAVAILABLE', retryable: true } : undefined;
    const fake = fakeConsumer();
    await traceConsumer(fake.consumer, { classifyError }).run({
      eachMessage: async () => {
        throw new StockError('none left');
      },
    });
    await settle(fake.config?.eachMessage?.(payloadFor('t')));
    const span = onlySpan(tracing.current.spans(), 'process t');
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe('STOCK_UNAVAILABLE');
    expect(span.attributes[ATTR_HOPTRACE_ERROR_RETRYABLE]).toBe(true);

    tracing.current.reset();
    const own = new StockError('x');
    const broken = fakeConsumer();
    await traceConsumer(broken.consumer, {
      classifyError: () => {
        throw new Error('classifier bug');
      },
    }).run({
      eachMessage: async () => {
        throw own;
      },
    });
    await expectRejection(broken.config?.eachMessage?.(payloadFor('t')), own);
    expect(onlySpan(tracing.current.spans(), 'process t').attributes[ATTR_ERROR_TYPE]).toBe('StockError');

    tracing.current.reset();
    const failing = (): Promise<never> => Promise.reject(new StockError('y'));
    const producer = traceProducer({ ...fakeProducer().producer, send: failing } as Producer, {
      classifyError,
    });
    await settle(producer.send({ topic: 't', messages: [{ value: 'a' }] }));
    expect(onlySpan(tracing.current.spans(), 'send t').attributes[ATTR_ERROR_TYPE]).toBe('STOCK_UNAVAILABLE');
  });
});

describe('16.1 unsampled fast path', () => {
  it("runs the handler in the message's own context with no span, so the trace id flows downstream", async () => {
    const fake = fakeConsumer();
    const sent = fakeProducer();
    const producer = traceProducer(sent.producer, { unsampled: 'skip' });
    const unsampled = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
    let active: string | undefined;
    const own = new Error('still rethrown');
    await traceConsumer(fake.consumer, { unsampled: 'skip' }).run({
      eachMessage: async ({ message: m }) => {
        active = trace.getSpanContext(context.active())?.traceId;
        await producer.send({ topic: 'next', messages: [{ value: 'x' }] });
        if (m.offset === '2') throw own;
      },
    });
    await fake.config?.eachMessage?.({ ...payloadFor('t'), message: message(1, { traceparent: unsampled }) });
    await expectRejection(
      fake.config?.eachMessage?.({ ...payloadFor('t'), message: message(2, { traceparent: unsampled }) }),
      own,
    );
    expect(active).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(tracing.current.spans()).toHaveLength(0);
    expect(String(sent.sent[0]?.messages[0]?.headers?.traceparent)).toBe(unsampled);
  });
});

describe('handlers that throw synchronously', () => {
  it('eachBatch: the batch span and the open message span end at once, and kafkajs sees the very value', async () => {
    const fake = fakeConsumer();
    const thrown = { reason: 'sync' };
    await traceConsumer(fake.consumer).run({
      // A plain (non-async) handler: the throw happens before any promise exists.
      eachBatch: (() => {
        throw thrown;
      }) as never,
    });
    const { payload } = batchPayload('sync-batch', [message(0), message(1)]);
    let caught: unknown;
    try {
      await fake.config?.eachBatch?.(payload);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(thrown);
    // Nothing waits for stop(): every span this batch started has ended.
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(fake.stopped).toBe(false);
    const processed = spansNamed(tracing.current.spans(), 'process sync-batch');
    expect(processed.length).toBeGreaterThan(0);
    expect(processed.some((s) => s.status.code === SpanStatusCode.ERROR)).toBe(true);
  });

  it('eachMessage: the span ends ERROR and kafkajs sees the very value', async () => {
    const fake = fakeConsumer();
    const thrown = new Error('sync');
    await traceConsumer(fake.consumer).run({
      eachMessage: (() => {
        throw thrown;
      }) as never,
    });
    const payload = {
      topic: 'sync-message',
      partition: 0,
      message: message(0),
      heartbeat: async () => undefined,
      pause: () => () => undefined,
    } as EachMessagePayload;
    expect(() => fake.config?.eachMessage?.(payload)).toThrow(thrown);
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(onlySpan(tracing.current.spans(), 'process sync-message').status.code).toBe(SpanStatusCode.ERROR);
  });
});
