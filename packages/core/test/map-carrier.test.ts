import { runInNewContext } from 'node:vm';
import {
  extractContext,
  FAILURE_HEADERS,
  failureHeaders,
  readFailureLineage,
  withContextHeaders,
} from '@hoptrace/core';
import { installTestTracing, makePropagator, type TestTracing } from '@hoptrace/test-kit';
import { propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// What @platformatic/kafka hands out: message headers as a Map whose keys and values are Buffers
// (or strings with string deserializers).

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;
const OTHER_TRACEPARENT = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
const b = (text: string) => Buffer.from(text);

let tracing: TestTracing;
beforeAll(() => {
  tracing = installTestTracing({ propagator: 'w3c' });
});
afterAll(() => tracing.uninstall());

function remoteContext() {
  const ctx = extractContext({ traceparent: TRACEPARENT, tracestate: 'vendor=x' }, ROOT_CONTEXT);
  return propagation.setBaggage(ctx, propagation.createBaggage({ 'tenant.id': { value: 'acme' } }));
}

describe('extractContext over a Map of headers', () => {
  it.each([
    ['string keys and values', new Map([['traceparent', TRACEPARENT]])],
    ['Buffer keys and values', new Map([[b('traceparent'), b(TRACEPARENT)]])],
    ['Uint8Array keys', new Map([[new TextEncoder().encode('traceparent'), TRACEPARENT]])],
    ['an array value (first textual value wins)', new Map([['traceparent', [7, b(TRACEPARENT)]]])],
  ])('reads the context from %s, with tracestate and baggage', (_label, headers) => {
    const map = new Map<unknown, unknown>(headers);
    map.set(b('tracestate'), b('vendor=x'));
    map.set('baggage', 'tenant.id=acme');
    map.set(42, 'a key that is not text is skipped');
    const ctx = extractContext(map, ROOT_CONTEXT);
    expect(trace.getSpanContext(ctx)).toMatchObject({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
      isRemote: true,
    });
    expect(trace.getSpanContext(ctx)?.traceState?.get('vendor')).toBe('x');
    expect(propagation.getBaggage(ctx)?.getEntry('tenant.id')?.value).toBe('acme');
  });

  it('an empty Map or a Map without a context: the base', () => {
    for (const map of [new Map(), new Map([['x-app', '1']])]) {
      expect(extractContext(map, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
    }
  });

  it('a name spelled in another case (string or Buffer key) is read when its own spelling is absent', () => {
    for (const map of [
      new Map([['Traceparent', TRACEPARENT]]),
      new Map([[b('TraceParent'), b(TRACEPARENT)]]),
    ]) {
      expect(trace.getSpanContext(extractContext(map, ROOT_CONTEXT))).toMatchObject({
        traceId: TRACE_ID,
        spanId: SPAN_ID,
      });
    }
    const both = new Map([
      [b('Traceparent'), b(OTHER_TRACEPARENT)],
      [b('traceparent'), b(TRACEPARENT)],
    ]);
    expect(trace.getSpanContext(extractContext(both, ROOT_CONTEXT))?.traceId).toBe(TRACE_ID);
  });

  it('the first entry of a name wins (a string key and a Buffer key spelling the same name)', () => {
    const map = new Map<unknown, unknown>([
      ['traceparent', TRACEPARENT],
      [b('traceparent'), OTHER_TRACEPARENT],
    ]);
    expect(trace.getSpanContext(extractContext(map, ROOT_CONTEXT))?.traceId).toBe(TRACE_ID);
  });

  it('a tracestate or baggage under several keys, one of whose values is an array, is read with every value joined', () => {
    // A value may be an array (as an object carrier's may: an AMQP array field, kafkajs's repeated
    // headers): under a second key spelling the same list header, its entries join the others.
    const map = new Map<unknown, unknown>([
      ['traceparent', TRACEPARENT],
      ['tracestate', ['a=1', b('b=2')]],
      [b('tracestate'), 'c=3'],
      ['baggage', 'k1=v1'],
      [b('baggage'), [b('k2=v2'), 'k3=v3']],
    ]);
    const ctx = extractContext(map, ROOT_CONTEXT);
    expect(trace.getSpanContext(ctx)?.traceState?.serialize()).toBe('a=1,b=2,c=3');
    expect(
      propagation
        .getBaggage(ctx)
        ?.getAllEntries()
        .map(([key]) => key),
    ).toEqual(['k1', 'k2', 'k3']);
    // The limits hold for all of them: 33 members over the keys are refused whole.
    const many = new Map<unknown, unknown>([
      ['traceparent', TRACEPARENT],
      ['tracestate', Array.from({ length: 17 }, (_, i) => `k${i}=v`)],
      [b('tracestate'), Array.from({ length: 16 }, (_, i) => `j${i}=v`)],
    ]);
    expect(trace.getSpanContext(extractContext(many, ROOT_CONTEXT))?.traceState).toBeUndefined();
  });

  it('reads a Map made in another realm (a vm context), which is no `instanceof Map` here', () => {
    const foreign = runInNewContext('new Map([["traceparent", tp], ["x-app", "1"]])', { tp: TRACEPARENT });
    expect(foreign instanceof Map).toBe(false);
    expect(trace.getSpanContext(extractContext(foreign, ROOT_CONTEXT))?.spanId).toBe(SPAN_ID);
    const appOnly = runInNewContext('new Map([["x-app", "1"]])');
    const out = withContextHeaders(appOnly as ReadonlyMap<unknown, unknown>, remoteContext());
    expect(out).toBeInstanceOf(Map);
    expect(out.size).toBe(4);
    expect(out.get('x-app')).toBe('1');
    expect(out.get('traceparent')).toBe(TRACEPARENT);
    expect(out.get('baggage')).toBe('tenant.id=acme');
  });

  it('reads bytes made in another realm (a vm context) as keys and values, under the same limits', () => {
    const foreignBytes = (text: string): Uint8Array =>
      runInNewContext('Uint8Array.from(codes)', { codes: [...Buffer.from(text)] });
    const value = foreignBytes(TRACEPARENT);
    expect(value instanceof Uint8Array).toBe(false);
    const expectTraceparentRead = (headers: Parameters<typeof extractContext>[0]) =>
      expect(trace.getSpanContext(extractContext(headers, ROOT_CONTEXT))).toMatchObject({
        traceId: TRACE_ID,
        spanId: SPAN_ID,
      });
    expectTraceparentRead({ traceparent: value });
    expectTraceparentRead({ traceparent: [value] });
    expectTraceparentRead(new Map([[foreignBytes('traceparent'), value]]));
    expectTraceparentRead(runInNewContext('new Map([[k, v]])', { k: foreignBytes('traceparent'), v: value }));
    // over the W3C baggage limit (8192 bytes): refused before decoding; the traceparent beside it is read
    const ctx = extractContext(
      { traceparent: value, baggage: foreignBytes(`k=${'v'.repeat(9000)}`) },
      ROOT_CONTEXT,
    );
    expect(trace.getSpanContext(ctx)?.spanId).toBe(SPAN_ID);
    expect(propagation.getBaggage(ctx)).toBeUndefined();
    const small = extractContext(
      { traceparent: value, baggage: foreignBytes('tenant.id=acme') },
      ROOT_CONTEXT,
    );
    expect(propagation.getBaggage(small)?.getEntry('tenant.id')?.value).toBe('acme');
  });

  it('only real Uint8Arrays read as bytes: an object calling itself one, or other typed arrays, are not', () => {
    const codes = [...Buffer.from(TRACEPARENT)];
    const impostor = {
      ...Uint8Array.from(codes),
      byteLength: codes.length,
      [Symbol.toStringTag]: 'Uint8Array',
    };
    const wide: unknown = runInNewContext('Uint16Array.from(codes)', { codes });
    const spoofed = Uint16Array.from(codes);
    Object.defineProperty(spoofed, Symbol.toStringTag, { value: 'Uint8Array' });
    for (const traceparent of [impostor, wide, spoofed]) {
      expect(extractContext({ traceparent }, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
      expect(extractContext(new Map([['traceparent', traceparent]]), ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
    }
  });

  it('a record that only calls itself a Map (tag, forEach) reads as no headers, never throws', () => {
    const impostor = {
      traceparent: TRACEPARENT,
      forEach: () => {
        throw new Error('not a map');
      },
      [Symbol.toStringTag]: 'Map',
    };
    expect(extractContext(impostor, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
    // an object with a forEach but no Map tag stays a record
    const record = { traceparent: TRACEPARENT, forEach: () => undefined };
    expect(trace.getSpanContext(extractContext(record, ROOT_CONTEXT))?.spanId).toBe(SPAN_ID);
  });

  it('never throws on a Map whose iteration throws, and reads nothing from it', () => {
    class Hostile extends Map<unknown, unknown> {
      override forEach(): void {
        throw new Error('no entries for you');
      }
      override [Symbol.iterator](): MapIterator<[unknown, unknown]> {
        throw new Error('no entries for you');
      }
    }
    const hostile = new Hostile([['traceparent', TRACEPARENT]]);
    expect(extractContext(hostile, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
    expect(readFailureLineage(hostile)).toBeUndefined();
  });

  it('refuses oversized values before the propagator sees them, without decoding them, as for objects', () => {
    const seen: string[] = [];
    propagation.disable();
    propagation.setGlobalPropagator({
      inject() {},
      extract(ctx, carrier, getter) {
        for (const key of ['traceparent', 'tracestate', 'baggage']) {
          const value = getter.get(carrier, key);
          if (typeof value === 'string') seen.push(`${key}:${value.length}`);
        }
        return ctx;
      },
      fields: () => ['traceparent', 'tracestate', 'baggage'],
    });
    try {
      let decoded = 0;
      const huge = Buffer.alloc(1 << 20, 0x41);
      huge.toString = function (this: Buffer, ...args: Parameters<Buffer['toString']>) {
        decoded++;
        return Buffer.prototype.toString.apply(this, args);
      };
      extractContext(
        new Map<unknown, unknown>([
          [b('baggage'), huge],
          [b('tracestate'), [huge]],
          ['traceparent', 'x'.repeat(1_000_000)],
        ]),
        ROOT_CONTEXT,
      );
      extractContext(
        new Map([
          ['baggage', Array.from({ length: 65 }, (_, i) => `k${i}=v`).join(',')],
          ['tracestate', Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')],
        ]),
        ROOT_CONTEXT,
      );
      expect(seen).toEqual([]);
      expect(decoded).toBe(0);
      extractContext(new Map([[b('tracestate'), b('a=b')]]), ROOT_CONTEXT);
      expect(seen).toEqual(['tracestate:3']);
    } finally {
      propagation.disable();
      propagation.setGlobalPropagator(makePropagator('w3c'));
    }
  });

  it('skips a key longer than 128 bytes without decoding it (no propagation field name is near that)', () => {
    let decoded = 0;
    const key = Buffer.alloc(1 << 20, 0x61);
    key.toString = function (this: Buffer, ...args: Parameters<Buffer['toString']>) {
      decoded++;
      return Buffer.prototype.toString.apply(this, args);
    };
    const map = new Map<unknown, unknown>([
      [key, 'x'],
      ['a'.repeat(129), 'y'],
      [b('traceparent'), b(TRACEPARENT)],
    ]);
    expect(trace.getSpanContext(extractContext(map, ROOT_CONTEXT))?.traceId).toBe(TRACE_ID);
    expect(decoded).toBe(0);
  });
});

describe('withContextHeaders over a Map of headers', () => {
  it('returns a new Map: the caller entries as they were (same keys and values), the context added', () => {
    const appKey = b('x-app');
    const appValue = b('1');
    const mine = new Map<unknown, unknown>([
      [appKey, appValue],
      ['other', 'two'],
    ]);
    const out = withContextHeaders(mine, remoteContext());
    expect(out).toBeInstanceOf(Map);
    expect(out).not.toBe(mine);
    expect([...mine.keys()]).toEqual([appKey, 'other']); // the caller's map is not written to
    expect(out.get(appKey)).toBe(appValue);
    expect(out.get('other')).toBe('two');
    expect(out.get('traceparent')).toBe(TRACEPARENT);
    expect(out.get('tracestate')).toBe('vendor=x');
    expect(out.get('baggage')).toBe('tenant.id=acme');
    expect(out.size).toBe(5);
    // What it wrote is read back by extractContext.
    expect(trace.getSpanContext(extractContext(out, ROOT_CONTEXT))?.spanId).toBe(SPAN_ID);
  });

  it('keeps a context the caller put in the Map (Buffer entries): a copy, nothing added', () => {
    const theirs = new Map<unknown, unknown>([[b('traceparent'), b(OTHER_TRACEPARENT)]]);
    const out = withContextHeaders(theirs, remoteContext());
    expect(out).not.toBe(theirs);
    expect([...out]).toEqual([...theirs]);
  });

  it('leaves out a stale field spelled in another case and adds the fresh one; keeps a field the caller set', () => {
    const stale = b('Traceparent');
    const mine = new Map<unknown, unknown>([
      [stale, b(OTHER_TRACEPARENT)],
      ['baggage', 'k=v'],
      ['x-app', '1'],
    ]);
    const out = withContextHeaders(mine, remoteContext());
    expect(out.has(stale)).toBe(false);
    expect(out.get('traceparent')).toBe(TRACEPARENT);
    expect(out.get('baggage')).toBe('k=v');
    expect(out.get('x-app')).toBe('1');
    expect(mine.has(stale)).toBe(true);
  });
});

describe('readFailureLineage over a Map of headers', () => {
  it('reads the lineage a dead-letter copy carries under Buffer keys and values', () => {
    const failed = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: 'c'.repeat(32),
      spanId: 'd'.repeat(16),
      traceFlags: 1,
    });
    const written = failureHeaders({
      error: new Error('boom'),
      destination: 'orders',
      attempts: 2,
      context: failed,
    });
    const map = new Map(Object.entries(written).map(([k, v]) => [b(k), b(v)]));
    expect(readFailureLineage(map)).toMatchObject({
      destination: 'orders',
      errorType: 'Error',
      errorMessage: 'boom',
      attempts: 2,
      failed: { traceId: 'c'.repeat(32), spanId: 'd'.repeat(16) },
    });
    expect(readFailureLineage(new Map([[b(FAILURE_HEADERS.destination), b('orders')]]))).toBeUndefined();
  });
});
