import { captureSnapshot, extractContext, restoreSnapshot, SnapshotPool } from '@hoptrace/core';
import { installTestTracing, type TestTracing } from '@hoptrace/test-kit';
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
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

  it('returns undefined when there is nothing to capture', () => {
    expect(captureSnapshot(ROOT_CONTEXT)).toBeUndefined();
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

  it('drops an oversized tracestate and keeps the ids', () => {
    const restored = restoreSnapshot(
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, traceState: `a=${'x'.repeat(600)}` },
      ROOT_CONTEXT,
    );
    const sc = trace.getSpanContext(restored);
    expect(sc?.traceId).toBe(TRACE_ID);
    expect(sc?.traceState).toBeUndefined();
  });

  it('keeps at most 64 baggage members from a snapshot', () => {
    const pairs = Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v']);
    const restored = restoreSnapshot(
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, baggage: pairs },
      ROOT_CONTEXT,
    );
    expect(propagation.getBaggage(restored)?.getAllEntries()).toHaveLength(64);
  });
});

describe('SnapshotPool', () => {
  it('reuses released snapshots, clears them, and counts what happened', () => {
    const pool = new SnapshotPool(2);
    const a = pool.acquire(sample());
    expect(a?.traceId).toBe(TRACE_ID);
    pool.release(a);
    expect(a).toEqual({ traceId: '', spanId: '', traceFlags: 0 });
    const b = pool.acquire(sample());
    expect(b).toBe(a);
    expect(pool.stats()).toMatchObject({ created: 1, reused: 1, released: 1, free: 0 });
  });

  it('treats a double release as harmless', () => {
    const pool = new SnapshotPool(4);
    const a = pool.acquire(sample());
    pool.release(a);
    pool.release(a);
    expect(pool.stats()).toMatchObject({ released: 1, doubleReleases: 1, free: 1 });
    const b = pool.acquire(sample());
    const c = pool.acquire(sample());
    expect(b).not.toBe(c);
  });

  it('is bounded: releases beyond capacity are dropped', () => {
    const pool = new SnapshotPool(1);
    const a = pool.acquire(sample());
    const b = pool.acquire(sample());
    pool.release(a);
    pool.release(b);
    expect(pool.stats()).toMatchObject({ free: 1, dropped: 1 });
  });

  it('takes nothing from the pool when the context has nothing to capture', () => {
    const pool = new SnapshotPool(1);
    expect(pool.acquire(ROOT_CONTEXT)).toBeUndefined();
    expect(pool.stats()).toMatchObject({ free: 1, created: 1 });
  });

  it('ignores snapshots it did not hand out', () => {
    const pool = new SnapshotPool(1);
    pool.release(captureSnapshot(sample()));
    expect(pool.stats()).toMatchObject({ free: 0, released: 0 });
  });

  it('throws a clear error for a bad capacity', () => {
    expect(() => new SnapshotPool(-1)).toThrow('Expected `capacity` to be an integer >= 0, got -1');
  });
});
