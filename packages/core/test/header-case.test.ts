import { extractContext, withContextHeaders } from '@hoptrace/core';
import {
  callerSpanContext,
  fieldCaseVariants,
  readMessageContext,
  sendHeaders,
} from '@hoptrace/core/adapter';
import { installTestTracing, type TestTracing } from '@hoptrace/test-kit';
import { propagation, ROOT_CONTEXT, type TextMapPropagator, trace } from '@opentelemetry/api';
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

describe('fieldCaseVariants: edge cases', () => {
  let tracing: TestTracing | undefined;
  afterEach(() => {
    tracing?.uninstall();
    tracing = undefined;
    propagation.disable();
  });

  it('B3 single header: a caller B3 of a stale trace is not sent beside the fresh b3', () => {
    tracing = installTestTracing({ propagator: 'b3' });
    const headers = { B3: `${'1'.repeat(32)}-${'2'.repeat(16)}-1`, app: 'a' };
    const context = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: FRESH_TRACE,
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    });
    const out = sendHeaders(headers, context, callerSpanContext(headers));
    expect(named(out, 'b3')).toEqual(['b3']);
    expect(String(out.b3).startsWith(FRESH_TRACE)).toBe(true);
    expect(out.app).toBe('a');
  });

  it('a header object whose keys cannot be listed, or a getter that throws: no variants, no throw, no getter called', () => {
    tracing = installTestTracing({ propagator: 'w3c' });
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('no keys');
        },
      },
    );
    expect(fieldCaseVariants(hostile)).toBeUndefined();
    let read = 0;
    const getter = Object.defineProperty({ Traceparent: STALE }, 'Baggage', {
      enumerable: true,
      get() {
        read++;
        throw new Error('no value');
      },
    });
    expect(fieldCaseVariants(getter)).toEqual(['Traceparent', 'Baggage']);
    expect(read).toBe(0);
  });

  it('a propagator writing a mixed-case name: its exact spelling is the caller’s own; other spellings but the lower-case one go', () => {
    const propagator: TextMapPropagator = {
      inject: (ctx, carrier, setter) => {
        const span = trace.getSpanContext(ctx);
        if (span) setter.set(carrier, 'X-Trace', span.traceId);
      },
      extract: (ctx) => ctx,
      fields: () => ['X-Trace'],
    };
    propagation.setGlobalPropagator(propagator);
    expect(fieldCaseVariants({ 'X-Trace': 'mine', 'X-TRACE': 'stale', other: '1' })).toEqual(['X-TRACE']);
    // Lower-case names are never listed (the path every all-lower-case header map takes): a
    // lower-case twin of a mixed-case field travels on.
    expect(fieldCaseVariants({ 'x-trace': 'stale' })).toBeUndefined();
  });
});

describe('received headers naming a propagation field in another case (another tool wrote it so)', () => {
  let tracing: TestTracing | undefined;
  afterEach(() => {
    tracing?.uninstall();
    tracing = undefined;
  });
  const B3_TRACE = '5'.repeat(32);
  const B3_SPAN = '6'.repeat(16);

  it('B3 multi-header as Java OpenTelemetry writes it (X-B3-TraceId, X-B3-SpanId, X-B3-Sampled): continued', () => {
    tracing = installTestTracing({ propagator: 'b3multi' });
    for (const sampled of ['1', '0']) {
      const headers = { 'X-B3-TraceId': B3_TRACE, 'X-B3-SpanId': B3_SPAN, 'X-B3-Sampled': sampled };
      const expected = { traceId: B3_TRACE, spanId: B3_SPAN, traceFlags: Number(sampled), isRemote: true };
      expect(trace.getSpanContext(extractContext(headers, ROOT_CONTEXT))).toEqual(expected);
      expect(readMessageContext(headers).spanContext).toEqual(expected);
      // a send given these headers still takes them for stale fields: its copy carries its own
      expect(callerSpanContext(headers)).toBeUndefined();
    }
  });

  it('W3C Traceparent, Tracestate and Baggage alone: continued, with the tracestate and baggage', () => {
    tracing = installTestTracing({ propagator: 'w3c' });
    const headers = { Traceparent: FRESH, TRACESTATE: 'app=1', Baggage: 'tenant=acme', other: 'x' };
    for (const ctx of [extractContext(headers, ROOT_CONTEXT), readMessageContext(headers).context]) {
      expect(trace.getSpanContext(ctx)).toMatchObject({ traceId: FRESH_TRACE, spanId: '00f067aa0ba902b7' });
      expect(trace.getSpanContext(ctx)?.traceState?.get('app')).toBe('1');
      expect(propagation.getBaggage(ctx)?.getEntry('tenant')?.value).toBe('acme');
    }
  });

  it('the exact name wins over another spelling, present or not first; an exact null is absent; limits apply', () => {
    tracing = installTestTracing({ propagator: 'w3c' });
    for (const headers of [
      { Traceparent: STALE, traceparent: FRESH },
      { traceparent: FRESH, Traceparent: STALE },
      { traceparent: null, Traceparent: FRESH },
    ]) {
      expect(readMessageContext(headers).spanContext?.traceId).toBe(FRESH_TRACE);
    }
    // of two other spellings, the first in the headers' order
    expect(readMessageContext({ TraceParent: FRESH, TRACEPARENT: STALE }).spanContext?.traceId).toBe(
      FRESH_TRACE,
    );
    // an over-long value under another spelling is refused as under its own name
    const ctx = extractContext({ Traceparent: FRESH, Baggage: `k=${'v'.repeat(9000)}` }, ROOT_CONTEXT);
    expect(trace.getSpanContext(ctx)?.traceId).toBe(FRESH_TRACE);
    expect(propagation.getBaggage(ctx)).toBeUndefined();
    // an inherited name is not the message's
    const inherited = Object.create({ Traceparent: FRESH }) as Record<string, unknown>;
    expect(readMessageContext(inherited).spanContext).toBeUndefined();
  });
});
