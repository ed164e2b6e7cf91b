import { ATTR_HOPTRACE_FAILURE_ATTEMPTS, FAILURE_HEADERS } from '@hoptrace/core';
import { deadLetterMessage, traceConsumer, withMessageContext } from '@hoptrace/kafka';
import { spansNamed, useTestTracing } from '@hoptrace/test-kit';
import { context, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { batchPayload, fakeConsumer, message } from './helpers.ts';

const tracing = useTestTracing();
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('deadLetterMessage', () => {
  it('copies key, value and headers, adds lineage, never touches the failed message', () => {
    const headers = { traceparent: Buffer.from(TRACEPARENT), 'x-tenant': Buffer.from('acme') };
    const failed = { topic: 'orders', partition: 2, message: message(41, headers, Buffer.from('k')) };
    const span = trace.getTracer('t').startSpan('failed attempt');
    const out = context.with(trace.setSpan(context.active(), span), () =>
      deadLetterMessage(failed, new RangeError('x'.repeat(1000))),
    );
    span.end();
    expect(failed.message.headers).toBe(headers);
    expect(Object.keys(headers)).toEqual(['traceparent', 'x-tenant']);
    expect(out.key).toBe(failed.message.key);
    expect(out.value).toBe(failed.message.value);
    expect(out.headers?.traceparent).toBe(headers.traceparent);
    expect(out.headers?.['x-tenant']).toBe(headers['x-tenant']);
    expect(out.headers).toMatchObject({
      [FAILURE_HEADERS.destination]: 'orders',
      [FAILURE_HEADERS.partition]: '2',
      [FAILURE_HEADERS.offset]: '41',
      [FAILURE_HEADERS.errorType]: 'RangeError',
      [FAILURE_HEADERS.attempts]: '1',
      'hoptrace-failed-traceparent': `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`,
    });
    expect(String(out.headers?.[FAILURE_HEADERS.errorMessage])).toHaveLength(256);
  });

  it('options that are not an object, or hold a value of the wrong type, throw a clear TypeError', () => {
    // null and a string were taken as no options, attempts: '3' and classifyError: 'x' ignored.
    const failed = { topic: 'orders', partition: 0, message: message(7, {}, null) };
    expect(() => deadLetterMessage(failed, 'x', null as never)).toThrow(
      new TypeError('Expected `options` to be an object, got null'),
    );
    expect(() => deadLetterMessage(failed, 'x', 'orders.DLT' as never)).toThrow(
      new TypeError('Expected `options` to be an object, got "orders.DLT"'),
    );
    expect(() => deadLetterMessage(failed, 'x', { attempts: '3' as never })).toThrow(
      new TypeError('Expected `attempts` to be an integer >= 0, got "3"'),
    );
    expect(() => deadLetterMessage(failed, 'x', { classifyError: 'x' as never })).toThrow(
      new TypeError('Expected `classifyError` to be a function, got "x"'),
    );
    expect(deadLetterMessage(failed, new TypeError('bad')).headers).toMatchObject({
      [FAILURE_HEADERS.errorType]: 'TypeError',
      [FAILURE_HEADERS.attempts]: '1',
    });
  });

  it('an options.context that is not a Context throws a TypeError naming deadLetterMessage', () => {
    // Before, the copy went without hoptrace-failed-traceparent and only a diag warning told.
    const failed = { topic: 'orders', partition: 0, message: message(7, {}, null) };
    expect(() => deadLetterMessage(failed, 'x', { context: {} as never })).toThrow(
      'deadLetterMessage: expected `options.context` to be an OpenTelemetry Context or undefined, got an object',
    );
  });

  it('refuses an option it does not take, naming the one it most likely misspells (it was ignored)', () => {
    const failed = { topic: 'orders', partition: 0, message: message(7, {}, null) };
    expect(() => deadLetterMessage(failed, 'x', { attempt: 3 } as never)).toThrow(
      new TypeError('Unknown option `attempt` for deadLetterMessage (did you mean `attempts`?)'),
    );
    expect(() => deadLetterMessage(failed, 'x', { topic: 'orders.DLT' } as never)).toThrow(
      new TypeError('Unknown option `topic` for deadLetterMessage'),
    );
    const out = deadLetterMessage(failed, 'x', {
      attempts: 3,
      classifyError: () => undefined,
      context: context.active(),
    });
    expect(out.headers?.[FAILURE_HEADERS.attempts]).toBe('3');
    expect(() => deadLetterMessage(failed, 'x', { attempt: undefined } as never)).not.toThrow();
  });

  it('a retry of a retry counts attempts up and replaces the earlier lineage', () => {
    const first = deadLetterMessage(
      { topic: 'orders', partition: 0, message: message(1, { traceparent: TRACEPARENT }) },
      'first',
      {
        context: trace.setSpanContext(context.active(), {
          traceId: 'a'.repeat(32),
          spanId: 'b'.repeat(16),
          traceFlags: 1,
        }),
      },
    );
    const consumed = message(9, first.headers as never);
    const second = deadLetterMessage(
      { topic: 'orders.retry', partition: 1, message: consumed },
      new TypeError('again'),
    );
    expect(second.headers).toMatchObject({
      traceparent: TRACEPARENT,
      [FAILURE_HEADERS.destination]: 'orders.retry',
      [FAILURE_HEADERS.attempts]: '2',
      [FAILURE_HEADERS.errorType]: 'TypeError',
      [FAILURE_HEADERS.offset]: '9',
    });
    // No failed context is active now, so the earlier one is not carried on.
    expect(second.headers?.['hoptrace-failed-traceparent']).toBeUndefined();
    expect(
      deadLetterMessage({ topic: 'o', partition: 0, message: consumed }, 'x', { attempts: 7 }).headers,
    ).toMatchObject({
      [FAILURE_HEADERS.attempts]: '7',
    });
  });

  it('never throws on headers whose reads throw', () => {
    const headers = {
      get boom(): never {
        throw new Error('getter');
      },
      ok: Buffer.from('1'),
    };
    const out = deadLetterMessage({ topic: 'o', partition: 0, message: message(0, headers as never) }, null);
    expect(out.headers?.ok).toBe(headers.ok);
    expect(out.headers?.boom).toBeUndefined();
    expect(out.headers?.[FAILURE_HEADERS.errorType]).toBeTypeOf('string');
  });

  it('a per-message span of a traced batch links to the failed attempt too', async () => {
    const copy = deadLetterMessage(
      { topic: 'orders', partition: 0, message: message(3, { traceparent: TRACEPARENT }) },
      new Error('x'),
      {
        context: trace.setSpanContext(context.active(), {
          traceId: 'c'.repeat(32),
          spanId: 'd'.repeat(16),
          traceFlags: 1,
        }),
      },
    );
    const fake = fakeConsumer();
    await traceConsumer(fake.consumer, { batchSpans: 'batch' }).run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) withMessageContext(m, () => undefined);
      },
    });
    const { payload } = batchPayload('dlq', [message(0, copy.headers as never)]);
    await fake.config?.eachBatch?.(payload);
    const perMessage = spansNamed(tracing.current.spans(), 'process dlq').find(
      (s) => s.links.length === 1 && s.links[0]?.context.spanId === 'd'.repeat(16),
    );
    expect(perMessage?.attributes[ATTR_HOPTRACE_FAILURE_ATTEMPTS]).toBe(1);
    expect(perMessage?.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    const all = spansNamed(tracing.current.spans(), 'process dlq');
    expect(all).toHaveLength(2);
    // The batch span links to the creation context and to the failed attempt (batch mode).
    const batchSpan = all.find((s) => s !== perMessage);
    expect(batchSpan?.links.map((l) => l.context.spanId)).toEqual(['00f067aa0ba902b7', 'd'.repeat(16)]);
    expect(batchSpan?.links[1]?.attributes?.[ATTR_HOPTRACE_FAILURE_ATTEMPTS]).toBe(1);
    expect(batchSpan?.attributes['hoptrace.batch.link_count']).toBe(2);
  });

  it.each(['link', 'root'] as const)(
    'relation %s: the copy gets a new trace linked to its creation context and to the failed attempt',
    async (relation) => {
      const copy = deadLetterMessage(
        { topic: 'orders', partition: 0, message: message(3, { traceparent: TRACEPARENT }) },
        new Error('x'),
        {
          context: trace.setSpanContext(context.active(), {
            traceId: 'c'.repeat(32),
            spanId: 'd'.repeat(16),
            traceFlags: 1,
          }),
        },
      );
      const fake = fakeConsumer();
      await traceConsumer(fake.consumer, { relation }).run({ eachMessage: async () => undefined });
      await fake.config?.eachMessage?.({
        topic: 'dlq',
        partition: 0,
        message: message(0, copy.headers as never),
        heartbeat: async () => undefined,
        pause: () => () => undefined,
      });
      const span = spansNamed(tracing.current.spans(), 'process dlq')[0];
      expect(span?.spanContext().traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(span?.links.map((l) => l.context.spanId).sort()).toEqual(
        ['00f067aa0ba902b7', 'd'.repeat(16)].sort(),
      );
      expect(span?.attributes[ATTR_HOPTRACE_FAILURE_ATTEMPTS]).toBe(1);
    },
  );
});
