import { captureSnapshot, extractContext, injectContext, restoreSnapshot } from '@hoptrace/core';
import { installTestTracing, type TestTracing } from '@hoptrace/test-kit';
import { context, propagation, ROOT_CONTEXT, type TraceState, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

let tracing: TestTracing;
beforeAll(() => {
  tracing = installTestTracing();
});
afterAll(() => tracing.uninstall());

function sample() {
  let ctx = extractContext(
    { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, tracestate: 'hoptrace=2,v=x' },
    ROOT_CONTEXT,
  );
  ctx = propagation.setBaggage(ctx, propagation.createBaggage({ 'tenant.id': { value: 'acme' } }));
  return ctx;
}

describe('captureSnapshot / restoreSnapshot', () => {
  it('captures ids, flags, tracestate and baggage into a JSON-safe object', () => {
    const snapshot = captureSnapshot(sample());
    expect(snapshot).toEqual({
      v: 1,
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
      traceState: 'hoptrace=2,v=x',
      baggage: [['tenant.id', 'acme']],
    });
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
  });

  it('restores a remote parent and baggage after a JSON round trip', () => {
    const restored = restoreSnapshot(JSON.parse(JSON.stringify(captureSnapshot(sample()))), ROOT_CONTEXT);
    const sc = trace.getSpanContext(restored);
    expect(sc).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, isRemote: true });
    expect(sc?.traceState?.get('hoptrace')).toBe('2');
    expect(propagation.getBaggage(restored)?.getEntry('tenant.id')?.value).toBe('acme');
  });

  it('a span started under a restored snapshot is its child', () => {
    const snapshot = captureSnapshot(sample());
    const span = trace.getTracer('t').startSpan('child', {}, restoreSnapshot(snapshot, ROOT_CONTEXT));
    span.end();
    const [finished] = tracing.spans().slice(-1);
    expect(finished?.spanContext().traceId).toBe(TRACE_ID);
    expect(finished?.parentSpanContext?.spanId).toBe(SPAN_ID);
  });

  it('writes its format version first, so a stored snapshot says which release can read it', () => {
    expect(JSON.stringify(captureSnapshot(sample()))).toMatch(/^\{"v":1,"traceId":/);
  });

  it('restores a snapshot without a version (written by an earlier release) as version 1', () => {
    const { v, ...earlier } = captureSnapshot(sample()) ?? {};
    expect(v).toBe(1);
    const restored = restoreSnapshot(JSON.parse(JSON.stringify(earlier)), ROOT_CONTEXT);
    expect(trace.getSpanContext(restored)).toMatchObject({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
    });
    expect(trace.getSpanContext(restored)?.traceState?.get('hoptrace')).toBe('2');
    expect(propagation.getBaggage(restored)?.getEntry('tenant.id')?.value).toBe('acme');
  });

  it.each([
    ['2 (a later release)', 2],
    ['0', 0],
    ['"1" (a string)', '1'],
    ['1.5', 1.5],
    ['null', null],
  ])('refuses a snapshot of a version it does not know, %s, whole: returns base', (_label, v) => {
    const snapshot = { ...captureSnapshot(sample()), v };
    const base = context.active();
    expect(restoreSnapshot(snapshot, base)).toBe(base);
    expect(restoreSnapshot(JSON.parse(JSON.stringify(snapshot)), base)).toBe(base);
  });

  it('returns undefined when there is nothing to capture', () => {
    expect(captureSnapshot(ROOT_CONTEXT)).toBeUndefined();
    // An empty baggage (what removing its last entry leaves) is nothing to capture either.
    expect(
      captureSnapshot(propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage())),
    ).toBeUndefined();
  });

  it.each([
    ['null', null],
    ['a string', 'x'],
    ['an all-zero trace id', { traceId: '0'.repeat(32), spanId: SPAN_ID, traceFlags: 1 }],
    ['a short span id', { traceId: TRACE_ID, spanId: 'abc', traceFlags: 1 }],
    ['non-hex ids', { traceId: 'z'.repeat(32), spanId: SPAN_ID, traceFlags: 1 }],
    ['ids of the wrong type', { traceId: 1, spanId: 2 }],
  ])('ignores a snapshot with %s and returns base', (_label, value) => {
    const base = context.active();
    expect(restoreSnapshot(value, base)).toBe(base);
  });

  it.each([
    ['-1 (read as 255: sampled)', -1],
    ['257 (read as 1: sampled)', 257],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ['a string', '01'],
    ['missing', undefined],
  ])(
    'leaves out the span context of a snapshot whose traceFlags are %s, as extract refuses flags that are not two hex digits',
    (_label, traceFlags) => {
      const restored = restoreSnapshot({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags }, ROOT_CONTEXT);
      expect(trace.getSpanContext(restored)).toBeUndefined();
    },
  );

  it('accepts every flag value from 0 to 255, keeping the flags W3C defines (sampled, random) and clearing the rest, as a header read does', () => {
    for (const [traceFlags, kept] of [
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
      [0x10, 0],
      [0xfe, 2],
      [255, 3],
    ] as const) {
      const restored = restoreSnapshot({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags }, ROOT_CONTEXT);
      expect(trace.getSpanContext(restored)?.traceFlags).toBe(kept);
      // Handed on as it is restored: a traceparent others accept.
      expect(injectContext(restored).traceparent).toBe(`00-${TRACE_ID}-${SPAN_ID}-0${kept}`);
    }
  });

  it('refuses uppercase hex ids, as extractContext refuses an uppercase traceparent (W3C ids are lowercase)', () => {
    const upper = { traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID.toUpperCase(), traceFlags: 1 };
    const base = context.active();
    expect(restoreSnapshot(upper, base)).toBe(base);
    expect(extractContext({ traceparent: `00-${upper.traceId}-${upper.spanId}-01` }, base)).toBe(base);
  });

  it('drops an oversized tracestate and keeps the ids', () => {
    const restored = restoreSnapshot(
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, traceState: `a=${'x'.repeat(600)}` },
      ROOT_CONTEXT,
    );
    const sc = trace.getSpanContext(restored);
    expect(sc?.traceId).toBe(TRACE_ID);
    expect(sc?.traceState).toBeUndefined();
  });

  it('agrees with extract on the limits: baggage over 64 members or 8192 bytes, tracestate over 32 members, are dropped whole', () => {
    const restore = (extra: object) =>
      restoreSnapshot({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, ...extra }, ROOT_CONTEXT);
    const members = (n: number) => Array.from({ length: n }, (_, i) => [`k${i}`, 'v']);
    expect(propagation.getBaggage(restore({ baggage: members(64) }))?.getAllEntries()).toHaveLength(64);
    expect(propagation.getBaggage(restore({ baggage: members(65) }))).toBeUndefined();
    expect(propagation.getBaggage(restore({ baggage: [['k', 'v'.repeat(8191)]] }))).toBeUndefined();
    expect(
      propagation.getBaggage(restore({ baggage: [['k', 'v'.repeat(8190)]] }))?.getAllEntries(),
    ).toHaveLength(1);
    const state = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`).join(',');
    expect(trace.getSpanContext(restore({ traceState: state(32) }))?.traceState?.serialize()).toBe(state(32));
    expect(trace.getSpanContext(restore({ traceState: state(33) }))?.traceState).toBeUndefined();
    // The same content as headers is accepted or refused alike.
    const asHeader = (baggage: string) => propagation.getBaggage(extractContext({ baggage }, ROOT_CONTEXT));
    expect(
      asHeader(
        members(64)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      )?.getAllEntries(),
    ).toHaveLength(64);
    expect(
      asHeader(
        members(65)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      ),
    ).toBeUndefined();
  });
  describe('capture writes nothing restore would refuse (a snapshot is capped as restore is)', () => {
    const withBaggage = (n: number, valueLength = 100) =>
      propagation.setBaggage(
        sample(),
        propagation.createBaggage(
          Object.fromEntries(
            Array.from({ length: n }, (_, i) => [`k${i}`, { value: 'x'.repeat(valueLength) }]),
          ),
        ),
      );

    it('leaves out baggage over 64 members or 8192 bytes (restore drops it whole), and keeps the span context', () => {
      // Before: 1000 local entries made a 112 KB snapshot, stored and carried, then dropped whole on restore.
      const snapshot = captureSnapshot(withBaggage(1000));
      expect(snapshot).toEqual({
        v: 1,
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        traceFlags: 1,
        traceState: 'hoptrace=2,v=x',
      });
      expect(JSON.stringify(snapshot).length).toBeLessThan(200);
      expect(captureSnapshot(withBaggage(65, 1))?.baggage).toBeUndefined();
      expect(captureSnapshot(withBaggage(1, 8200))?.baggage).toBeUndefined();
      // At the limits it is kept, and restored whole.
      const atLimit = captureSnapshot(withBaggage(64, 1));
      expect(atLimit?.baggage).toHaveLength(64);
      expect(propagation.getBaggage(restoreSnapshot(atLimit, ROOT_CONTEXT))?.getAllEntries()).toHaveLength(
        64,
      );
    });

    it('captures nothing for baggage alone over the limits (restore would return base)', () => {
      const bag = propagation.createBaggage(
        Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, { value: 'v' }])),
      );
      expect(captureSnapshot(propagation.setBaggage(ROOT_CONTEXT, bag))).toBeUndefined();
    });

    it('leaves out a tracestate over 512 characters (restore drops it) and keeps the ids', () => {
      // The API's own TraceState keeps within the limits; a propagator's own TraceState need not.
      const text = ['a', 'b', 'c'].map((k) => `${k}=${k.repeat(250)}`).join(',');
      const long: TraceState = {
        set: () => long,
        unset: () => long,
        get: () => undefined,
        serialize: () => text,
      };
      const ctx = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        traceFlags: 1,
        isRemote: true,
        traceState: long,
      });
      expect(long.serialize().length).toBeGreaterThan(512);
      expect(captureSnapshot(ctx)).toEqual({ v: 1, traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 });
    });
  });
});
