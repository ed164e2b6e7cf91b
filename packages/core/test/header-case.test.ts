import { extractContext, withContextHeaders } from '@hoptrace/core';
import { callerSpanContext, sendHeaders } from '@hoptrace/core/adapter';
import { installTestTracing, type TestTracing } from '@hoptrace/test-kit';
import { propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';

const STALE = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;
const FRESH_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const FRESH = `00-${FRESH_TRACE}-00f067aa0ba902b7-01`;

/** A context whose injection is known: the fresh trace, sampled, with baggage. */
function freshContext() {
  const ctx = extractContext({ traceparent: FRESH, tracestate: 'app=1' }, ROOT_CONTEXT);
  return propagation.setBaggage(ctx, propagation.createBaggage({ tenant: { value: 'acme' } }));
}

/** Header names that match `name` when case is ignored. */
function named(headers: Readonly<Record<string, unknown>>, name: string): string[] {
  return Object.keys(headers).filter((key) => key.toLowerCase() === name);
}

describe('caller headers naming a propagation field in another case', () => {
  let tracing: TestTracing | undefined;
  afterEach(() => tracing?.uninstall());

  it.each([
    ['Traceparent', { Traceparent: STALE }],
    ['TRACEPARENT', { TRACEPARENT: STALE }],
    ['Tracestate', { Tracestate: 'old=1' }],
    ['Baggage', { Baggage: 'tenant=stale' }],
    ['all three', { TraceParent: STALE, TraceState: 'old=1', BAGGAGE: 'tenant=stale', other: 'kept' }],
  ])(
    'W3C, %s: the copy carries each field once, under its own name, with the fresh values',
    (_l, headers) => {
      tracing = installTestTracing({ propagator: 'w3c' });
      const caller = callerSpanContext(headers);
      expect(caller).toBeUndefined();
      const out = sendHeaders(headers, freshContext(), caller);
      for (const field of ['traceparent', 'tracestate', 'baggage'])
        expect(named(out, field)).toEqual([field]);
      expect(out.traceparent).toBe(FRESH);
      expect(out.baggage).toBe('tenant=acme');
      if ('other' in headers) expect(out.other).toBe('kept');
      // The caller's object is never written to.
      expect(Object.keys(headers).every((key) => key !== key.toLowerCase() || key === 'other')).toBe(true);
      expect(withContextHeaders(headers, freshContext())).toEqual(out);
    },
  );

  it('B3 multi-header: a caller X-B3-TraceId/X-B3-SpanId of a stale trace is not sent beside the fresh ones', () => {
    tracing = installTestTracing({ propagator: 'b3multi' });
    const headers = { 'X-B3-TraceId': '1'.repeat(32), 'X-B3-SpanId': '2'.repeat(16), 'X-B3-Sampled': '1' };
    const context = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: FRESH_TRACE,
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    });
    const out = sendHeaders(headers, context, callerSpanContext(headers));
    for (const field of ['x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled']) {
      expect(named(out, field)).toEqual([field]);
    }
    expect(out['x-b3-traceid']).toBe(FRESH_TRACE);
  });

  it('a field the caller set under its own name still stays as they sent it; its other-case twin goes', () => {
    tracing = installTestTracing({ propagator: 'w3c' });
    const headers = { baggage: 'mine=1', Baggage: 'tenant=stale' };
    const out = sendHeaders(headers, freshContext(), callerSpanContext(headers));
    expect(named(out, 'baggage')).toEqual(['baggage']);
    expect(out.baggage).toBe('mine=1');
    expect(out.traceparent).toBe(FRESH);
  });

  it('a caller context under the exact name is kept as it is (nothing copied, nothing dropped)', () => {
    tracing = installTestTracing({ propagator: 'w3c' });
    const headers = { traceparent: FRESH, Traceparent: STALE };
    const caller = callerSpanContext(headers);
    expect(caller?.traceId).toBe(FRESH_TRACE);
    expect(sendHeaders(headers, freshContext(), caller)).toBe(headers);
  });

  it('extraction: a stale Traceparent beside a fresh traceparent yields the fresh one, in any key order', () => {
    tracing = installTestTracing({ propagator: 'w3c' });
    for (const headers of [
      { Traceparent: STALE, traceparent: FRESH },
      { traceparent: FRESH, TRACEPARENT: STALE },
    ]) {
      expect(trace.getSpanContext(extractContext(headers, ROOT_CONTEXT))?.traceId).toBe(FRESH_TRACE);
    }
  });
});
