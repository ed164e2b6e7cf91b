import { FAILURE_HEADERS } from '@hoptrace/core';
import { deadLetterMessage } from '@hoptrace/platformatic-kafka';
import { useTestTracing } from '@hoptrace/test-kit';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

useTestTracing();
const failedContext = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: 'c'.repeat(32),
  spanId: 'd'.repeat(16),
  traceFlags: 1,
});

describe('deadLetterMessage', () => {
  it('keeps the original headers in their form, replaces an earlier failure, counts the attempt', () => {
    const headers = new Map([
      [Buffer.from('traceparent'), Buffer.from(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`)],
      [Buffer.from(FAILURE_HEADERS.errorType), Buffer.from('OLD')],
      [Buffer.from(FAILURE_HEADERS.attempts), Buffer.from('2')],
      [Buffer.from('hoptrace-failed-traceparent'), Buffer.from('old')],
    ]);
    const failed = {
      topic: 'orders',
      partition: 1,
      offset: 7n,
      key: Buffer.from('k'),
      value: Buffer.from('v'),
      headers,
    };
    const copy = deadLetterMessage(failed, Object.assign(new Error('no stock'), { code: 'STOCK' }), {
      context: failedContext,
    });
    expect(headers.size).toBe(4);
    expect(copy.key).toBe(failed.key);
    expect(copy.value).toBe(failed.value);
    const text = Object.fromEntries([...copy.headers].map(([k, v]) => [k.toString(), v.toString()]));
    for (const key of copy.headers.keys()) expect(Buffer.isBuffer(key)).toBe(true);
    expect(text).toMatchObject({
      traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
      [FAILURE_HEADERS.destination]: 'orders',
      [FAILURE_HEADERS.partition]: '1',
      [FAILURE_HEADERS.offset]: '7',
      [FAILURE_HEADERS.errorType]: 'STOCK',
      [FAILURE_HEADERS.attempts]: '3',
      'hoptrace-failed-traceparent': `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`,
    });
    expect([...copy.headers.keys()].filter((k) => k.toString() === FAILURE_HEADERS.errorType)).toHaveLength(
      1,
    );
  });

  it('writes strings for string messages, and never throws on odd input', () => {
    const copy = deadLetterMessage({ topic: 't', value: 'v' }, null);
    expect(copy.headers.get(FAILURE_HEADERS.attempts as never)).toBe('1');
    expect(() => deadLetterMessage(undefined as never, undefined)).not.toThrow();
    // Options that are not an object throw a clear TypeError (null and a string were taken as none).
    expect(() => deadLetterMessage({ topic: 't', value: 'v' }, 'x', null as never)).toThrow(
      new TypeError('Expected `options` to be an object, got null'),
    );
    expect(() => deadLetterMessage({ topic: 't', value: 'v' }, 'x', 't.DLT' as never)).toThrow(
      new TypeError('Expected `options` to be an object, got "t.DLT"'),
    );
    expect(() => deadLetterMessage({ topic: 't', value: 'v' }, 'x', { attempts: -1 })).toThrow(
      new TypeError('Expected `attempts` to be an integer >= 0, got -1'),
    );
    const throwing = new Map();
    throwing[Symbol.iterator] = () => {
      throw new Error('boom');
    };
    expect(() => deadLetterMessage({ topic: 't', headers: throwing }, 1)).not.toThrow();
  });

  it('an options.context that is not a Context throws a TypeError naming deadLetterMessage', () => {
    // Before, the copy went without hoptrace-failed-traceparent and only a diag warning told.
    const failed = { topic: 'orders', partition: 0, offset: 1n, value: 'v', headers: new Map() };
    expect(() => deadLetterMessage(failed, 'x', { context: {} as never })).toThrow(
      'deadLetterMessage: expected `options.context` to be an OpenTelemetry Context or undefined, got an object',
    );
  });

  it('refuses an option it does not take, naming the one it most likely misspells (it was ignored)', () => {
    const failed = { topic: 'orders', partition: 0, offset: 1n, value: 'v', headers: new Map() };
    expect(() => deadLetterMessage(failed, 'x', { attempt: 3 } as never)).toThrow(
      new TypeError('Unknown option `attempt` for deadLetterMessage (did you mean `attempts`?)'),
    );
    expect(() => deadLetterMessage(failed, 'x', { Context: failedContext } as never)).toThrow(
      new TypeError('Unknown option `Context` for deadLetterMessage (did you mean `context`?)'),
    );
    expect(() => deadLetterMessage(failed, 'x', { topic: 'orders.DLT' } as never)).toThrow(
      new TypeError('Unknown option `topic` for deadLetterMessage'),
    );
    const copy = deadLetterMessage(failed, 'x', {
      attempts: 3,
      classifyError: () => undefined,
      context: failedContext,
    });
    expect(copy.headers.get(FAILURE_HEADERS.attempts as never)).toBe('3');
    expect(() => deadLetterMessage(failed, 'x', { attempt: undefined } as never)).not.toThrow();
  });
});
