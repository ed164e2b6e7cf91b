import { FAILURE_HEADERS, failureHeaders, readFailureLineage } from '@hoptrace/core';
import { lineageAttributes, lineageLinks } from '@hoptrace/core/adapter';
import { installTestTracing, type TestPropagator, type TestTracing } from '@hoptrace/test-kit';
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const failed = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1, isRemote: true };

describe.each<TestPropagator>(['w3c', 'b3'])('failure lineage headers under %s', (propagator) => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing({ propagator });
  });
  afterAll(() => tracing.uninstall());

  it('are plain strings naming the failure, and carry the failed attempt context through the propagator', () => {
    const error = Object.assign(new Error(`stock unavailable ${'!'.repeat(500)}`), { code: 'E_STOCK' });
    const headers = context.with(trace.setSpanContext(ROOT_CONTEXT, failed), () =>
      failureHeaders({ error, destination: 'orders', partition: 2, offset: '17', attempts: 3 }),
    );
    for (const value of Object.values(headers)) expect(typeof value).toBe('string');
    expect(headers).toMatchObject({
      [FAILURE_HEADERS.destination]: 'orders',
      [FAILURE_HEADERS.partition]: '2',
      [FAILURE_HEADERS.offset]: '17',
      [FAILURE_HEADERS.errorType]: 'E_STOCK',
      [FAILURE_HEADERS.attempts]: '3',
    });
    expect(headers[FAILURE_HEADERS.errorMessage]).toHaveLength(256);
    expect(Object.keys(headers).some((k) => k.startsWith('hoptrace-failed-'))).toBe(true);
    const lineage = readFailureLineage(headers);
    expect(lineage).toMatchObject({
      destination: 'orders',
      partition: 2,
      offset: '17',
      errorType: 'E_STOCK',
      attempts: 3,
    });
    expect(lineage?.failed?.spanId).toBe('b'.repeat(16));
    expect(lineageLinks(lineage)?.[0]?.attributes).toEqual(lineageAttributes(lineage ?? {}));
  });

  it('read no failed context from a `hoptrace-failed-__proto__` header (an AMQP table as the prototype of the fields read)', () => {
    const fields = failureHeaders({
      error: new Error('x'),
      destination: 'q',
      context: trace.setSpanContext(ROOT_CONTEXT, failed),
    });
    const nested: Record<string, unknown> = {};
    for (const key in fields) {
      if (key.startsWith('hoptrace-failed-')) nested[key.slice('hoptrace-failed-'.length)] = fields[key];
    }
    const headers = JSON.parse(
      JSON.stringify({ 'hoptrace-error-type': 'x', 'hoptrace-failed-__proto__': nested }),
    );
    expect(readFailureLineage(headers)?.failed).toBeUndefined();
  });

  it('use the classifier, so the header and the span agree', () => {
    const headers = failureHeaders({
      error: new Error('x'),
      destination: 'q',
      classifyError: () => ({ type: 'POISON', retryable: false }),
      context: ROOT_CONTEXT,
    });
    expect(headers[FAILURE_HEADERS.errorType]).toBe('POISON');
    expect(headers[FAILURE_HEADERS.retryable]).toBe('false');
    expect(readFailureLineage(headers)?.failed).toBeUndefined();
  });
});

describe('failureHeaders on values of the wrong type', () => {
  it('never throws: a destination that is not a string, or an offset that cannot be stringified, is left out', () => {
    const error = Object.assign(new Error('x'), { code: 'E_X' });
    for (const destination of [undefined, 42, null, { name: 'orders' }]) {
      const headers = failureHeaders({ error, destination: destination as never });
      expect(headers[FAILURE_HEADERS.errorType]).toBe('E_X');
      expect(headers[FAILURE_HEADERS.destination]).toBeUndefined();
    }
    const headers = failureHeaders({ error, destination: 'orders', offset: Object.create(null) as never });
    expect(headers[FAILURE_HEADERS.offset]).toBeUndefined();
    expect(headers[FAILURE_HEADERS.destination]).toBe('orders');
    expect(
      failureHeaders({ error, destination: 'orders', offset: 17n as never })[FAILURE_HEADERS.offset],
    ).toBe('17');
  });

  it('writes attempts only as a non-negative safe integer (a count read back exactly)', () => {
    const error = new Error('x');
    for (const attempts of [
      Number.NaN,
      -1,
      2.5,
      1e20,
      Number.MAX_SAFE_INTEGER + 1,
      Number.POSITIVE_INFINITY,
    ]) {
      const headers = failureHeaders({ error, destination: 'q', attempts });
      expect(headers[FAILURE_HEADERS.attempts], String(attempts)).toBeUndefined();
    }
    expect(failureHeaders({ error, destination: 'q', attempts: 0 })[FAILURE_HEADERS.attempts]).toBe('0');
  });
});

describe('readFailureLineage on hostile or ordinary input', () => {
  it('is undefined for ordinary messages and never throws', () => {
    expect(readFailureLineage(undefined)).toBeUndefined();
    expect(readFailureLineage({ traceparent: 'x' })).toBeUndefined();
    const hostile = Object.defineProperty({}, FAILURE_HEADERS.errorType, {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(readFailureLineage(hostile)).toBeUndefined();
  });

  it('never throws on a header object that is itself hostile (a throwing forEach getter, a throwing get trap, a revoked Proxy)', () => {
    const throwingForEach = Object.defineProperty({ [FAILURE_HEADERS.errorType]: 'T' }, 'forEach', {
      get() {
        throw new Error('getter');
      },
    });
    expect(readFailureLineage(throwingForEach)?.errorType).toBe('T');
    const trapped = new Proxy(
      { [FAILURE_HEADERS.errorType]: 'T' },
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    const { proxy: revoked, revoke } = Proxy.revocable({ [FAILURE_HEADERS.errorType]: 'T' }, {});
    revoke();
    for (const headers of [trapped, revoked]) expect(readFailureLineage(headers)).toBeUndefined();
  });

  it('never throws on header values that are hostile Proxies (a throwing trap, a revoked proxy)', () => {
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    const trapped = new Proxy(['x'], {
      get(target, key) {
        if (key === '0') throw new Error('trap');
        return Reflect.get(target, key);
      },
    });
    for (const value of [revoked, trapped]) {
      expect(readFailureLineage({ [FAILURE_HEADERS.errorType]: value })).toBeUndefined();
      expect(
        readFailureLineage({ [FAILURE_HEADERS.errorType]: 'T', [FAILURE_HEADERS.attempts]: value }),
      ).toEqual(expect.objectContaining({ errorType: 'T', attempts: undefined }));
    }
  });

  it('caps values and skips invalid numbers; reads Buffers', () => {
    const lineage = readFailureLineage({
      [FAILURE_HEADERS.errorType]: Buffer.from('T'.repeat(500)),
      [FAILURE_HEADERS.attempts]: 'many',
      [FAILURE_HEADERS.partition]: '-1',
      [FAILURE_HEADERS.destination]: 'd'.repeat(5000),
    });
    expect(lineage?.errorType).toHaveLength(128);
    expect(lineage?.attempts).toBeUndefined();
    expect(lineage?.partition).toBeUndefined();
    expect(lineage?.destination).toBeUndefined();
    // Bytes are the UTF-8 a Kafka client (or a byte-array AMQP header) wrote, not Latin-1.
    expect(
      readFailureLineage({
        [FAILURE_HEADERS.errorType]: [Buffer.from('ÉPUISÉ')],
        [FAILURE_HEADERS.errorMessage]: Buffer.from('für 📦'),
        [FAILURE_HEADERS.destination]: Buffer.from([0x71, 0xff]),
      }),
    ).toEqual(
      expect.objectContaining({ errorType: 'ÉPUISÉ', errorMessage: 'für 📦', destination: 'q\ufffd' }),
    );
  });

  it('refuses an oversized value by its size, before decoding it', () => {
    let decoded = 0;
    const huge = Buffer.alloc(1 << 20, 0x41);
    huge.toString = function (this: Buffer, ...args: Parameters<Buffer['toString']>) {
      decoded++;
      return Buffer.prototype.toString.apply(this, args);
    };
    expect(readFailureLineage({ [FAILURE_HEADERS.errorType]: huge })).toBeUndefined();
    expect(readFailureLineage({ [FAILURE_HEADERS.errorType]: [huge] })).toBeUndefined();
    expect(
      readFailureLineage({ [FAILURE_HEADERS.errorType]: 'T', [FAILURE_HEADERS.destination]: huge }),
    ).toEqual(expect.objectContaining({ errorType: 'T', destination: undefined }));
    expect(decoded).toBe(0);
  });
});

describe('failureHeaders: an input that is not an object', () => {
  it('throws a TypeError that says so (it threw "Cannot read properties of null")', () => {
    for (const bad of [null, undefined, 'x', 42, Symbol('s')]) {
      expect(() => failureHeaders(bad as never)).toThrow(/Expected `input` to be an object/);
    }
  });
});

describe('failureHeaders: a field it does not take', () => {
  const error = new Error('boom');

  it('throws a TypeError naming it and the field it most likely misspells (it was ignored)', () => {
    expect(() => failureHeaders({ error, destination: 'q', atempts: 3 } as never)).toThrow(
      new TypeError('Unknown option `atempts` for failureHeaders (did you mean `attempts`?)'),
    );
    expect(() =>
      failureHeaders({ error, destination: 'q', classifyErrors: () => undefined } as never),
    ).toThrow(
      new TypeError('Unknown option `classifyErrors` for failureHeaders (did you mean `classifyError`?)'),
    );
    expect(() => failureHeaders({ error, destination: 'q', queue: 'orders' } as never)).toThrow(
      new TypeError('Unknown option `queue` for failureHeaders'),
    );
  });

  it('takes every field it knows, and an unknown one set to undefined', () => {
    const all = {
      error,
      destination: 'q',
      partition: 1,
      offset: '2',
      attempts: 3,
      classifyError: () => undefined,
      context: ROOT_CONTEXT,
    };
    expect(failureHeaders(all)[FAILURE_HEADERS.attempts]).toBe('3');
    expect(failureHeaders({ error, destination: 'q', atempts: undefined } as never)).toEqual(
      failureHeaders({ error, destination: 'q' }),
    );
  });
});

describe.each<TestPropagator>(['jaeger', 'ot', 'w3c+jaeger', 'w3c+ot'])(
  'failure lineage headers under %s (baggage one header per entry)',
  (propagator) => {
    let tracing: TestTracing;
    beforeAll(() => {
      tracing = installTestTracing({ propagator });
    });
    afterAll(() => tracing.uninstall());

    it('carry the failed attempt context but not its baggage, whatever the baggage headers are named', () => {
      // OT trace headers carry 64 bits of the trace id: one whose upper half is zero survives them.
      const failedContext = propagation.setBaggage(
        trace.setSpanContext(ROOT_CONTEXT, { ...failed, traceId: `${'0'.repeat(16)}${'a'.repeat(16)}` }),
        propagation.createBaggage({ 'tenant.id': { value: 'acme' }, user: { value: 'alice' } }),
      );
      const headers = failureHeaders({ error: new Error('x'), destination: 'q', context: failedContext });
      const failedFields = Object.keys(headers).filter((k) => k.startsWith('hoptrace-failed-'));
      expect(failedFields.length).toBeGreaterThan(0);
      // Only the trace fields: the message's own baggage already travels, as with W3C's `baggage`.
      expect(failedFields.filter((k) => /baggage|uberctx|acme|alice/.test(k + headers[k]))).toEqual([]);
      expect(readFailureLineage(headers)?.failed).toMatchObject({
        traceId: `${'0'.repeat(16)}${'a'.repeat(16)}`,
        spanId: 'b'.repeat(16),
      });
    });
  },
);
