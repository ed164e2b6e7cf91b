import { extractContext, injectContext, withContextHeaders } from '@hoptrace/core';
import {
  acceptHeaderText,
  acceptTraceState,
  callerSpanContext,
  headerGetter,
  readMessageContext,
  relayHop,
  sendHeaders,
  withBudgetRestart,
} from '@hoptrace/core/adapter';
import {
  installTestTracing,
  makePropagator,
  type TestPropagator,
  type TestTracing,
} from '@hoptrace/test-kit';
import {
  type Context,
  context,
  createTraceState,
  defaultTextMapGetter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type TextMapPropagator,
  trace,
} from '@opentelemetry/api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

function remoteContext(traceState?: string) {
  let ctx = extractContext(
    { traceparent: TRACEPARENT, ...(traceState ? { tracestate: traceState } : {}) },
    ROOT_CONTEXT,
  );
  ctx = propagation.setBaggage(
    ctx,
    propagation.createBaggage({ 'tenant.id': { value: 'acme' }, order: { value: '42' } }),
  );
  return ctx;
}

describe('extractContext over every header shape (W3C)', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing({ propagator: 'w3c' });
  });
  afterAll(() => tracing.uninstall());

  it.each([
    ['string', TRACEPARENT],
    ['Buffer', Buffer.from(TRACEPARENT)],
    ['Uint8Array', new TextEncoder().encode(TRACEPARENT)],
    ['array of strings (first wins)', [TRACEPARENT, `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`]],
    ['array of Buffers', [Buffer.from(TRACEPARENT)]],
    ['array with a number first', [7, TRACEPARENT]],
    ["an amqplib typed string { '!': 'string', value }", { '!': 'string', value: TRACEPARENT }],
    ["an amqplib typed Buffer { '!': 'object', value }", { '!': 'object', value: Buffer.from(TRACEPARENT) }],
    // amqplib encodes each entry of an array field by its type too: on the wire, an array of strings.
    ['an array of amqplib typed strings', [{ '!': 'string', value: TRACEPARENT }]],
    ['an array of amqplib typed Buffers', [7, { '!': 'object', value: Buffer.from(TRACEPARENT) }]],
  ])('reads a traceparent given as %s', (_label, value) => {
    const ctx = extractContext({ traceparent: value }, ROOT_CONTEXT);
    expect(trace.getSpanContext(ctx)).toMatchObject({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
      isRemote: true,
    });
  });

  it.each([
    ['undefined headers', undefined],
    ['null headers', null],
    ['a number', { traceparent: 42 }],
    ['a nested object', { traceparent: { value: TRACEPARENT } }],
    ['an amqplib typed value of another type', { traceparent: { '!': 'int', value: TRACEPARENT } }],
    ['a boolean', { traceparent: true }],
    ['an all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-${SPAN_ID}-01` }],
    ['an all-zero span id', { traceparent: `00-${TRACE_ID}-${'0'.repeat(16)}-01` }],
    ['version ff', { traceparent: `ff-${TRACE_ID}-${SPAN_ID}-01` }],
    ['uppercase hex', { traceparent: TRACEPARENT.toUpperCase() }],
    ['non-UTF-8 bytes', { traceparent: Buffer.from([0xff, 0xfe, 0x00, 0x80]) }],
    [
      'a differently cased header name beside an invalid exact one',
      { traceparent: 'junk', TraceParent: TRACEPARENT },
    ],
  ])('leaves the base context as it was for %s', (_label, headers) => {
    const base = context.active();
    expect(extractContext(headers as never, base)).toBe(base);
  });

  it.each([
    ['Buffer', Buffer.from('tenant=café,city=Zürich', 'utf8')],
    ['Uint8Array', new TextEncoder().encode('tenant=café,city=Zürich')],
  ])(
    'reads header bytes as UTF-8 (as Kafka clients and other instrumentations do): baggage given as a %s',
    (_l, baggage) => {
      const ctx = extractContext({ traceparent: Buffer.from(TRACEPARENT), baggage }, ROOT_CONTEXT);
      const entries = propagation.getBaggage(ctx)?.getAllEntries() ?? [];
      expect(Object.fromEntries(entries.map(([k, v]) => [k, v.value]))).toEqual({
        tenant: 'café',
        city: 'Zürich',
      });
      expect(trace.getSpanContext(ctx)?.traceId).toBe(TRACE_ID);
    },
  );

  // Each shape a header value comes in goes through the same size limit and the same UTF-8
  // decoding: an amqplib typed value, alone or in an array, is read as the plain value would be.
  const shapes: ReadonlyArray<readonly [string, (text: string) => unknown, (bytes: Buffer) => unknown]> = [
    ['plain', (t) => t, (b) => b],
    ['typed', (t) => ({ '!': 'string', value: t }), (b) => ({ '!': 'object', value: b })],
    ['in an array', (t) => [t], (b) => [b]],
    ['typed in an array', (t) => [{ '!': 'string', value: t }], (b) => [{ '!': 'object', value: b }]],
  ];
  it.each(shapes)('%s values: the W3C size limits and UTF-8 decoding apply', (_label, text, bytes) => {
    // Four members of 127 characters: 511 in all, within the 512 a tracestate may have.
    const member = [0, 1, 2, 3].map((i) => `m${i}=${'x'.repeat(124)}`).join(',');
    expect(member).toHaveLength(511);
    const read = (tracestate: unknown, baggage: unknown) =>
      extractContext({ traceparent: TRACEPARENT, tracestate, baggage }, ROOT_CONTEXT);
    for (const state of [text(member), bytes(Buffer.from(member))]) {
      expect(trace.getSpanContext(read(state, undefined))?.traceState?.get('m3')).toHaveLength(124);
    }
    // 515 characters (and bytes): refused whole, before parsing.
    const over = `${member},c=d`;
    for (const state of [text(over), bytes(Buffer.from(over))]) {
      expect(trace.getSpanContext(read(state, undefined))?.traceState).toBeUndefined();
    }
    const bag = (ctx: Context) => propagation.getBaggage(ctx)?.getEntry('tenant')?.value;
    expect(bag(read(undefined, bytes(Buffer.from('tenant=café'))))).toBe('café');
    // 8193 bytes of baggage, though fewer characters: refused, as the bytes count.
    const big = `tenant=café,pad=${'é'.repeat(4088)}`;
    expect(Buffer.byteLength(big)).toBeGreaterThan(8192);
    expect(big.length).toBeLessThanOrEqual(8192);
    expect(bag(read(undefined, bytes(Buffer.from(big))))).toBeUndefined();
  });

  it('ignores tracestate when traceparent is invalid', () => {
    const ctx = extractContext({ traceparent: 'garbage', tracestate: 'a=b' }, ROOT_CONTEXT);
    expect(trace.getSpanContext(ctx)).toBeUndefined();
  });

  it('clears trace flags W3C does not define, so the context injected on is a traceparent others accept', () => {
    for (const [flags, expected] of [
      ['fe', 0x02],
      ['10', 0x00],
      ['ff', 0x03],
      ['05', 0x01],
      ['03', 0x03],
    ] as const) {
      const headers = { traceparent: `00-${TRACE_ID}-${SPAN_ID}-${flags}` };
      const extracted = extractContext(headers, ROOT_CONTEXT);
      const read = readMessageContext(headers);
      expect(trace.getSpanContext(extracted)?.traceFlags).toBe(expected);
      expect(read.spanContext?.traceFlags).toBe(expected);
      expect(trace.getSpanContext(read.context)?.traceFlags).toBe(expected);
      // Handed on without a span of its own (the unsampled fast path): still one trace downstream.
      const sent = injectContext(read.context).traceparent;
      expect(sent).toBe(`00-${TRACE_ID}-${SPAN_ID}-0${expected}`);
      expect(trace.getSpanContext(extractContext({ traceparent: sent }, ROOT_CONTEXT))?.traceId).toBe(
        TRACE_ID,
      );
    }
    // Known flags only: the extracted context is OpenTelemetry's own.
    const plain = readMessageContext({ traceparent: TRACEPARENT });
    expect(plain.spanContext).toBe(trace.getSpanContext(plain.context));
  });

  it('leaves the span of the base alone when the headers carry no trace context (only baggage)', () => {
    // The flags are cleared on a span context the headers gave, never on the base's own span: a
    // foreign span whose spanContext() throws must not make headers throw, and a live span with
    // flags of its own must not be swapped for a non-recording copy.
    const broken = {
      spanContext: () => {
        throw new Error('broken span');
      },
      isRecording: () => false,
    } as unknown as Span;
    const own = trace.wrapSpanContext({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0x81 });
    for (const span of [broken, own]) {
      const base = trace.setSpan(ROOT_CONTEXT, span);
      const extracted = extractContext({ baggage: 'k=v' }, base);
      expect(trace.getSpan(extracted)).toBe(span);
      expect(propagation.getBaggage(extracted)?.getEntry('k')?.value).toBe('v');
    }
  });

  it('never throws when the propagator itself throws', () => {
    propagation.disable();
    propagation.setGlobalPropagator({
      inject: () => {
        throw new Error('boom');
      },
      extract: () => {
        throw new Error('boom');
      },
      fields: () => ['traceparent'],
    });
    try {
      expect(extractContext({ traceparent: TRACEPARENT }, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
      expect(injectContext(remoteContext())).toEqual({});
    } finally {
      propagation.disable();
      propagation.setGlobalPropagator(makePropagator('w3c'));
    }
  });
});

describe('a registered propagator that misbehaves without throwing', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing({ propagator: 'w3c' });
  });
  afterAll(() => tracing.uninstall());
  const w3c = makePropagator('w3c');
  function register(overrides: Partial<Record<'extract' | 'fields', unknown>>) {
    propagation.disable();
    const propagator: TextMapPropagator = {
      inject: (ctx, carrier, setter) => w3c.inject(ctx, carrier, setter),
      extract: (ctx, carrier, getter) => w3c.extract(ctx, carrier, getter),
      fields: () => w3c.fields(),
    };
    propagation.setGlobalPropagator({ ...propagator, ...overrides } as TextMapPropagator);
  }
  function restore() {
    propagation.disable();
    propagation.setGlobalPropagator(makePropagator('w3c'));
  }

  it('extract returning no context: extractContext keeps the base, readMessageContext finds nothing, neither throws', () => {
    register({ extract: () => undefined });
    try {
      expect(extractContext({ traceparent: TRACEPARENT }, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
      expect(readMessageContext({ traceparent: TRACEPARENT })).toEqual({
        context: ROOT_CONTEXT,
        spanContext: undefined,
      });
    } finally {
      restore();
    }
  });

  it('fields() returning no list: a relay past a spent hop budget still sends the new trace, never throws', () => {
    register({ fields: () => undefined });
    try {
      const forwarded = { traceparent: TRACEPARENT, 'x-app': 'kept' };
      const caller = callerSpanContext(forwarded);
      const restarted = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: 'c'.repeat(32),
        spanId: 'd'.repeat(16),
        traceFlags: 1,
      });
      const out = sendHeaders(forwarded, withBudgetRestart(restarted, TRACE_ID), caller);
      expect(out).toEqual({ traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`, 'x-app': 'kept' });
    } finally {
      restore();
    }
  });
});

describe('injectContext and withContextHeaders', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing({ propagator: 'w3c' });
  });
  afterAll(() => tracing.uninstall());

  it('returns a fresh object with traceparent, tracestate and baggage', () => {
    const headers = injectContext(remoteContext('vendor=x'));
    expect(headers).toEqual({
      traceparent: TRACEPARENT,
      tracestate: 'vendor=x',
      baggage: 'tenant.id=acme,order=42',
    });
  });

  it('relays forwarded headers of a trace whose hop budget ran out here as the new trace', () => {
    // The consumed message: trace A at hop 3. The handler runs in trace B, restarted from A.
    const forwarded = Object.freeze({
      traceparent: TRACEPARENT,
      tracestate: 'hoptrace=3,vendor=x',
      baggage: 'tenant.id=acme',
      'x-app': 'kept',
    });
    const caller = callerSpanContext(forwarded);
    if (!caller) throw new Error('the forwarded headers carry a context');
    const restarted = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: 'c'.repeat(32),
      spanId: 'd'.repeat(16),
      traceFlags: 1,
    });
    const out = sendHeaders(forwarded, withBudgetRestart(restarted, TRACE_ID), caller);
    expect(out).toEqual({
      traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`,
      baggage: 'tenant.id=acme',
      'x-app': 'kept',
    });
    expect(forwarded.tracestate).toBe('hoptrace=3,vendor=x'); // the caller's object is untouched
    // Restarted from another trace, or no restart: the caller's context is kept as it was.
    expect(sendHeaders(forwarded, withBudgetRestart(restarted, 'e'.repeat(32)), caller)).toBe(forwarded);
    expect(sendHeaders(forwarded, restarted, caller)).toBe(forwarded);
    expect(relayHop(caller, restarted)).toBeUndefined();
  });

  it('a relayed hop count fits a full tracestate: the rightmost members give way, within 32 members and 512 characters', () => {
    const active = (hop: number) =>
      trace.setSpanContext(ROOT_CONTEXT, {
        traceId: TRACE_ID,
        spanId: 'e'.repeat(16),
        traceFlags: 1,
        traceState: createTraceState(`hoptrace=${hop}`),
      });
    const long = Array.from({ length: 4 }, (_, i) => `v${i}=${'y'.repeat(123)}`); // 507 characters
    for (const members of [Array.from({ length: 32 }, (_, i) => `v${i}=x`), long]) {
      const forwarded = { traceparent: TRACEPARENT, tracestate: members.join(',') };
      const caller = callerSpanContext(forwarded);
      if (!caller) throw new Error('the forwarded headers carry a context');
      const out = sendHeaders(forwarded, active(7), caller) as Record<string, string>;
      const kept = members.slice(0, members === long ? 3 : 31);
      expect(out.tracestate).toBe(['hoptrace=7', ...kept].join(','));
      expect(readMessageContext(out).spanContext?.traceState?.get('hoptrace')).toBe('7');
      expect(forwarded.tracestate).toBe(members.join(','));
    }
  });

  it('copies the caller headers, adds the context, and never mutates the caller object', () => {
    const mine = Object.freeze({ 'x-app': Buffer.from('1'), other: 'two' });
    const out = withContextHeaders(mine, remoteContext());
    expect(out).not.toBe(mine);
    expect(Object.keys(mine)).toEqual(['x-app', 'other']);
    expect(out).toMatchObject({ other: 'two', traceparent: TRACEPARENT });
    expect(out['x-app']).toBe(mine['x-app']);
  });

  it('keeps a traceparent the caller set and adds nothing of its own', () => {
    const theirs = { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` };
    const out = withContextHeaders(theirs, remoteContext('vendor=x'));
    expect(out).toEqual(theirs);
    expect(callerSpanContext(theirs)?.traceId).toBe('a'.repeat(32));
    expect(callerSpanContext({ 'x-other': '1' })).toBeUndefined();
  });

  it('reads no context from a header object whose key listing throws, and never throws itself', () => {
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('no keys for you');
        },
      },
    );
    expect(() => callerSpanContext(hostile)).not.toThrow();
    expect(callerSpanContext(hostile)).toBeUndefined();
    // Copying it is the host's own error, raised inside the operation that asked for the copy.
    expect(() => sendHeaders(hostile, remoteContext(), undefined)).toThrow('no keys for you');
  });

  it('treats baggage-only or malformed trace headers as no context: adds ours, overwrites nothing', () => {
    expect(callerSpanContext({ baggage: 'k=v' })).toBeUndefined();
    expect(withContextHeaders({ baggage: 'k=v' }, remoteContext('vendor=x'))).toEqual({
      baggage: 'k=v',
      traceparent: TRACEPARENT,
      tracestate: 'vendor=x',
    });
    expect(callerSpanContext({ traceparent: 'garbage' })).toBeUndefined();
    expect(withContextHeaders({ traceparent: 'garbage' }, remoteContext())).toEqual({
      traceparent: 'garbage',
      baggage: 'tenant.id=acme,order=42',
    });
  });
});

describe('hostile sizes are refused before parsing', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing({ propagator: 'w3c' });
  });
  afterAll(() => tracing.uninstall());

  /** Registers a propagator that records every value the getter hands it. */
  function recordingPropagator(): string[] {
    const seen: string[] = [];
    propagation.disable();
    propagation.setGlobalPropagator({
      inject() {},
      extract(ctx, carrier, getter) {
        for (const key of ['traceparent', 'tracestate', 'baggage', 'b3']) {
          const value = getter.get(carrier, key);
          if (typeof value === 'string') seen.push(`${key}:${value.length}`);
        }
        return ctx;
      },
      fields: () => ['traceparent', 'tracestate', 'baggage'],
    });
    return seen;
  }

  it('never hands the propagator a baggage over 8192 bytes or 64 members, a tracestate over 512 characters or 32 members, or a traceparent over 512', () => {
    const seen = recordingPropagator();
    try {
      const huge = 'k=v,'.repeat(262_144); // 1 MB
      extractContext(
        { baggage: huge, tracestate: 'a=b,'.repeat(200), traceparent: 'x'.repeat(1_000_000) },
        ROOT_CONTEXT,
      );
      extractContext(
        { baggage: Buffer.from(huge), tracestate: [Buffer.from('a'.repeat(600))] },
        ROOT_CONTEXT,
      );
      extractContext(
        {
          baggage: Array.from({ length: 65 }, (_, i) => `k${i}=v`).join(','),
          tracestate: Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','),
        },
        ROOT_CONTEXT,
      );
      expect(seen).toEqual([]);
      // At the limits, they are passed on.
      extractContext(
        { baggage: Array.from({ length: 64 }, (_, i) => `k${i}=v`).join(','), tracestate: 'a=b' },
        ROOT_CONTEXT,
      );
      expect(seen).toEqual([
        'tracestate:3',
        `baggage:${Array.from({ length: 64 }, (_, i) => `k${i}=v`).join(',').length}`,
      ]);
    } finally {
      propagation.disable();
      propagation.setGlobalPropagator(makePropagator('w3c'));
    }
  });

  it('counts only the non-empty members of a tracestate against the 32-member limit, as W3C and its propagator do', () => {
    // W3C Trace Context allows empty and whitespace-only list members (what joining several
    // tracestate headers, or a trailing comma, gives); they are not members, so do not count.
    const members = Array.from({ length: 31 }, (_, i) => `k${i}=v`);
    for (const tracestate of [`${members.join(',')},,,`, `, ${members.join(', ,')} ,`]) {
      const headers = { traceparent: TRACEPARENT, tracestate };
      const ours = trace.getSpanContext(extractContext(headers, ROOT_CONTEXT))?.traceState?.serialize();
      const theirs = trace
        .getSpanContext(propagation.extract(ROOT_CONTEXT, headers, defaultTextMapGetter))
        ?.traceState?.serialize();
      expect(theirs).toBe(members.join(','));
      expect(ours).toBe(theirs);
    }
  });

  it('counts only the non-empty members of a baggage against the 64-member limit, as its propagator reads them', () => {
    const members = Array.from({ length: 64 }, (_, i) => `k${i}=v${i}`);
    const size = (headers: Record<string, string>) =>
      propagation.getBaggage(extractContext(headers, ROOT_CONTEXT))?.getAllEntries().length;
    for (const baggage of [`${members.join(',')},`, `${members.join(',')},,`, ` ,${members.join(', ,')}, `]) {
      const theirs = propagation.getBaggage(
        propagation.extract(ROOT_CONTEXT, { baggage }, defaultTextMapGetter),
      );
      expect(theirs?.getAllEntries()).toHaveLength(64);
      expect(size({ baggage })).toBe(64);
    }
    // 65 members are over the limit whatever the blanks.
    expect(size({ baggage: `${members.join(',')},k64=v64` })).toBeUndefined();
    expect(size({ baggage: `${members.join(',')},,k64=v64,` })).toBeUndefined();
  });

  it('counts list members without walking a tracestate or baggage within its separator limit character by character', () => {
    // Every received message's tracestate and baggage is checked: one with no more separators than
    // the member limit allows is within it whatever its blanks, and costs a separator count (as
    // before blank members were told apart), not a walk over each of its up to 8192 characters.
    const tracestate = Array.from({ length: 32 }, (_, i) => `v${i}=${'x'.repeat(10)}`).join(',');
    const baggage = Array.from({ length: 64 }, (_, i) => `k${i}=${'y'.repeat(100)}`).join(',');
    const charCodeAt = String.prototype.charCodeAt;
    let reads = 0;
    String.prototype.charCodeAt = function (this: string, index: number): number {
      reads++;
      return charCodeAt.call(this, index);
    };
    let accepted: boolean[];
    let tracestateReads: number;
    try {
      accepted = [acceptTraceState(tracestate)];
      tracestateReads = reads;
      reads = 0;
      accepted.push(acceptHeaderText('baggage', baggage));
    } finally {
      String.prototype.charCodeAt = charCodeAt;
    }
    expect(accepted).toEqual([true, true]);
    expect(tracestateReads).toBe(0);
    // The UTF-8 length of a baggage reads each character once; counting its members adds none.
    expect(reads).toBeLessThanOrEqual(baggage.length);
  });

  it('reads a tracestate or baggage given more than once joined, as OpenTelemetry does, its limits applied to the whole', () => {
    const repeated = { traceparent: TRACEPARENT, tracestate: ['a=1', 'b=2'], baggage: ['k1=v1', 'k2=v2'] };
    const read = (ctx: Context) => ({
      state: trace.getSpanContext(ctx)?.traceState?.serialize(),
      baggage: propagation.getBaggage(ctx)?.getAllEntries(),
    });
    const theirs = read(propagation.extract(ROOT_CONTEXT, repeated, defaultTextMapGetter));
    expect(theirs).toEqual({
      state: 'a=1,b=2',
      baggage: [
        ['k1', { value: 'v1' }],
        ['k2', { value: 'v2' }],
      ],
    });
    const bytes = (values: string[]) => values.map((v) => Buffer.from(v));
    expect(read(extractContext(repeated, ROOT_CONTEXT))).toEqual(theirs);
    expect(
      read(
        extractContext(
          {
            traceparent: TRACEPARENT,
            tracestate: bytes(repeated.tracestate),
            baggage: bytes(repeated.baggage),
          },
          ROOT_CONTEXT,
        ),
      ),
    ).toEqual(theirs);
    // @platformatic/kafka keeps each repeated header under its own Buffer key.
    const map = new Map<Buffer, Buffer>([
      [Buffer.from('traceparent'), Buffer.from(TRACEPARENT)],
      [Buffer.from('tracestate'), Buffer.from('a=1')],
      [Buffer.from('baggage'), Buffer.from('k1=v1')],
      [Buffer.from('tracestate'), Buffer.from('b=2')],
      [Buffer.from('baggage'), Buffer.from('k2=v2')],
    ]);
    expect(read(extractContext(map, ROOT_CONTEXT))).toEqual(theirs);
    expect(
      readMessageContext(
        Object.fromEntries([
          ['traceparent', TRACEPARENT],
          ['tracestate', ['a=1', 'b=2']],
        ]),
      ).spanContext?.traceState?.serialize(),
    ).toBe('a=1,b=2');
    // The limits hold for the joined list: two halves of an oversized tracestate (33 members, or
    // 601 characters) or baggage (10 KB) are refused whole.
    const half = Array.from({ length: 17 }, (_, i) => `k${i}=v`).join(',');
    for (const tracestate of [
      [half, half.replaceAll('k', 'j')],
      ['a'.repeat(300), 'b'.repeat(300)],
    ]) {
      expect(
        read(extractContext({ traceparent: TRACEPARENT, tracestate }, ROOT_CONTEXT)).state,
      ).toBeUndefined();
    }
    const baggage = [Buffer.from(`a=${'x'.repeat(5000)}`), Buffer.from(`b=${'y'.repeat(5000)}`)];
    expect(read(extractContext({ baggage }, ROOT_CONTEXT)).baggage).toBeUndefined();
    // traceparent is no list: the first of several is read, as before.
    expect(
      trace.getSpanContext(extractContext({ traceparent: [TRACEPARENT, TRACEPARENT] }, ROOT_CONTEXT))?.spanId,
    ).toBe(SPAN_ID);
  });

  it('keeps the trace id when only the baggage is hostile', () => {
    const ctx = extractContext({ traceparent: TRACEPARENT, baggage: 'junk,'.repeat(300_000) }, ROOT_CONTEXT);
    expect(trace.getSpanContext(ctx)?.traceId).toBe(TRACE_ID);
    expect(propagation.getBaggage(ctx)).toBeUndefined();
  });

  it('never throws on a header object whose getters throw', () => {
    const hostile = Object.defineProperty({}, 'traceparent', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(extractContext(hostile, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
    expect(callerSpanContext(hostile)).toBeUndefined();
  });

  it('never throws on a header object that is itself hostile (a throwing forEach getter, a throwing get trap, a revoked Proxy)', () => {
    const throwingForEach = Object.defineProperty({ traceparent: TRACEPARENT }, 'forEach', {
      get() {
        throw new Error('getter');
      },
    });
    const trapped = new Proxy(
      { traceparent: TRACEPARENT },
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    const { proxy: revoked, revoke } = Proxy.revocable({ traceparent: TRACEPARENT }, {});
    revoke();
    // The forEach getter is not a header: the object's traceparent still continues the trace.
    expect(trace.getSpanContext(extractContext(throwingForEach, ROOT_CONTEXT))?.traceId).toBe(TRACE_ID);
    expect(readMessageContext(throwingForEach).spanContext?.traceId).toBe(TRACE_ID);
    for (const headers of [trapped, revoked]) {
      expect(extractContext(headers, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
      expect(readMessageContext(headers).spanContext).toBeUndefined();
      expect(callerSpanContext(headers)).toBeUndefined();
    }
  });

  it('never throws on header values that are hostile Proxies (a throwing trap, a revoked proxy)', () => {
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    const trapped = new Proxy([TRACEPARENT], {
      get(target, key) {
        if (key === '0') throw new Error('trap');
        return Reflect.get(target, key);
      },
    });
    for (const value of [revoked, trapped]) {
      expect(headerGetter.get({ traceparent: value }, 'traceparent')).toBeUndefined();
      expect(extractContext({ traceparent: value }, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
    }
  });
});

describe('sendHeaders: relayed messages keep the caller context and the hop count moves on', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing({ propagator: 'w3c' });
  });
  afterAll(() => tracing.uninstall());

  it('returns the caller headers untouched when they carry their own context and nothing is relayed', () => {
    const theirs = { traceparent: TRACEPARENT, other: 'x' };
    expect(sendHeaders(theirs, remoteContext(), callerSpanContext(theirs))).toBe(theirs);
  });

  it('brings the hoptrace tracestate member up to date when relayed inside the same trace with a higher count', () => {
    const forwarded = { traceparent: TRACEPARENT, tracestate: 'hoptrace=1,vendor=x', other: 'x' };
    const processing = remoteContext('hoptrace=2,vendor=x');
    const out = sendHeaders(forwarded, processing, callerSpanContext(forwarded));
    expect(out).not.toBe(forwarded);
    expect(out).toEqual({ traceparent: TRACEPARENT, tracestate: 'hoptrace=2,vendor=x', other: 'x' });
    expect(forwarded.tracestate).toBe('hoptrace=1,vendor=x');
  });

  it.each([
    ['32 members', Array.from({ length: 32 }, (_, i) => `v${i}=x`).join(',')],
    ['510 characters', `big=${'y'.repeat(250)},more=${'z'.repeat(250)}`],
  ])(
    'keeps the hop counter within the W3C limits next to a vendor tracestate of %s, dropping members from the right',
    (_, state) => {
      const forwarded = { traceparent: TRACEPARENT, tracestate: state };
      const processing = remoteContext('hoptrace=1');
      const out = sendHeaders(forwarded, processing, callerSpanContext(forwarded)) as Record<string, string>;
      const members = out.tracestate?.split(',') ?? [];
      expect(members[0]).toBe('hoptrace=1');
      expect(members.length).toBeLessThanOrEqual(32);
      expect(out.tracestate?.length).toBeLessThanOrEqual(512);
      expect(state.startsWith(members.slice(1).join(','))).toBe(true);
      // The API's own TraceState (createTraceState) has no limits of its own: the same holds.
      const caller = { ...trace.getSpanContext(remoteContext())!, traceState: createTraceState(state) };
      const relayed = relayHop(caller, processing)?.traceState?.serialize() ?? '';
      expect(relayed.split(',')[0]).toBe('hoptrace=1');
      expect(relayed.split(',').length).toBeLessThanOrEqual(32);
      expect(relayed.length).toBeLessThanOrEqual(512);
    },
  );

  it("a custom TraceState (a propagator's own) that never fits and never shrinks: the hop counter alone, no endless loop", () => {
    let n = 0;
    // Every serialization is a new, too long state; unset changes nothing.
    const restless = {
      set: () => restless,
      unset: () => restless,
      get: () => undefined,
      serialize: () => `v${n++}=${'x'.repeat(600)}`,
    };
    const caller = { ...trace.getSpanContext(remoteContext())!, traceState: restless };
    expect(relayHop(caller, remoteContext('hoptrace=2'))?.traceState?.serialize()).toBe('hoptrace=2');
  });

  it('leaves a context from another trace alone', () => {
    const forwarded = { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, tracestate: 'hoptrace=1' };
    expect(sendHeaders(forwarded, remoteContext('hoptrace=5'), callerSpanContext(forwarded))).toBe(forwarded);
  });
});

const hex = (len: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${len}}$`));
const validIds = fc
  .record({ traceId: hex(32), spanId: hex(16), sampled: fc.boolean() })
  .filter((r) => !/^0+$/.test(r.traceId) && !/^0+$/.test(r.spanId));

describe.each<TestPropagator>(['w3c', 'b3', 'b3multi'])('round trips under the %s propagator', (kind) => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing({ propagator: kind });
  });
  afterAll(() => tracing.uninstall());

  it('inject then extract keeps trace id, span id, flags and baggage (strings and Buffers)', () => {
    const tracestate = fc.constantFrom(undefined, 'vendor=x', 'a=1,b@c=2');
    const bag = fc.dictionary(
      fc.stringMatching(/^[a-z][a-z0-9_.-]{0,15}$/),
      fc.stringMatching(/^[A-Za-z0-9 %,;=]{1,30}$/),
      {
        maxKeys: 5,
      },
    );
    fc.assert(
      fc.property(validIds, tracestate, bag, fc.boolean(), (ids, state, entries, asBuffers) => {
        let ctx = trace.setSpanContext(ROOT_CONTEXT, {
          traceId: ids.traceId,
          spanId: ids.spanId,
          traceFlags: ids.sampled ? 1 : 0,
          isRemote: true,
          ...(state ? { traceState: extractTraceState(state) } : {}),
        });
        if (Object.keys(entries).length > 0) {
          ctx = propagation.setBaggage(
            ctx,
            propagation.createBaggage(
              Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, { value: v }])),
            ),
          );
        }
        const headers: Record<string, string | Buffer> = injectContext(ctx);
        if (asBuffers) for (const k of Object.keys(headers)) headers[k] = Buffer.from(headers[k] as string);
        const back = extractContext(headers, ROOT_CONTEXT);
        const sc = trace.getSpanContext(back);
        expect(sc?.traceId).toBe(ids.traceId);
        expect(sc?.spanId).toBe(ids.spanId);
        expect(sc?.traceFlags).toBe(ids.sampled ? 1 : 0);
        if (kind === 'w3c') expect(sc?.traceState?.serialize() ?? undefined).toBe(state);
        const got = Object.fromEntries(
          (propagation.getBaggage(back)?.getAllEntries() ?? []).map(([k, e]) => [k, e.value]),
        );
        expect(got).toEqual(entries);
      }),
      { numRuns: 300 },
    );
  });

  it('extract never throws on arbitrary header maps and returns base or a valid context', () => {
    const value = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      fc.array(
        fc.oneof(
          fc.string(),
          fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)),
        ),
      ),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.object(),
      fc.string({ minLength: 9000, maxLength: 20000 }),
      fc.tuple(hex(32), hex(16)).map(([t, s]) => `00-${t}-${s}-0`),
      fc.tuple(hex(32), hex(16)).map(([t, s]) => `${t}-${s}-1-extra-junk`),
    );
    const names = fc.oneof(
      fc.string(),
      fc.constantFrom(
        'traceparent',
        'tracestate',
        'baggage',
        'b3',
        'x-b3-traceid',
        'x-b3-spanid',
        'x-b3-sampled',
      ),
    );
    fc.assert(
      fc.property(fc.dictionary(names, value, { maxKeys: 8 }), (headers) => {
        const base = ROOT_CONTEXT;
        const out = extractContext(headers, base);
        const sc = trace.getSpanContext(out);
        if (sc) {
          expect(sc.traceId).toMatch(/^[0-9a-f]{32}$/);
          expect(sc.traceId).not.toMatch(/^0+$/);
          expect(sc.spanId).toMatch(/^[0-9a-f]{16}$/);
        }
      }),
      { numRuns: 500 },
    );
  });
});

function extractTraceState(serialized: string) {
  return createTraceState(serialized);
}

describe.each<TestPropagator>(['jaeger', 'ot', 'w3c+jaeger'])(
  'baggage one header per entry (%s): a hostile count of entries is read up to a bound',
  (kind) => {
    let tracing: TestTracing;
    beforeAll(() => {
      tracing = installTestTracing({ propagator: kind });
    });
    afterAll(() => tracing.uninstall());

    /** The headers the registered propagator writes for a sampled context with one baggage entry. */
    function tracedHeaders(): Record<string, string> {
      const ctx = propagation.setBaggage(
        trace.setSpanContext(ROOT_CONTEXT, {
          traceId: `${'0'.repeat(16)}${'a'.repeat(16)}`,
          spanId: 'b'.repeat(16),
          traceFlags: 1,
          isRemote: true,
        }),
        propagation.createBaggage({ first: { value: 'kept' } }),
      );
      return injectContext(ctx);
    }
    const prefix = kind.endsWith('ot') ? 'ot-baggage-' : 'uberctx-';

    it('10,000 entry headers after the trace headers: the trace is read and at most 64 headers are listed', () => {
      const headers = tracedHeaders();
      const own = Object.keys(headers).length;
      for (let i = 0; i < 10_000; i++) headers[`${prefix}k${i}`] = `v${i}`;
      // Before the bound, the propagators added all 10,000 entries one copy of the baggage at a time:
      // seconds of event-loop time for one message.
      for (const read of [(h: typeof headers) => extractContext(h, ROOT_CONTEXT), readMessageContext]) {
        const result = read(headers);
        const ctx = 'context' in result ? (result.context as Context) : (result as Context);
        expect(trace.getSpanContext(ctx)?.traceId).toBe(`${'0'.repeat(16)}${'a'.repeat(16)}`);
        const entries = propagation.getBaggage(ctx)?.getAllEntries() ?? [];
        // The propagator's own headers come first; the rest of the 64 names listed are entries.
        expect(entries.length).toBe(64 - own + 1);
        expect(propagation.getBaggage(ctx)?.getEntry('first')?.value).toBe('kept');
        expect(propagation.getBaggage(ctx)?.getEntry('k0')?.value).toBe('v0');
        expect(propagation.getBaggage(ctx)?.getEntry(`k${64 - own}`)).toBeUndefined();
      }
    });

    it('a message with a few entry headers among others keeps every entry', () => {
      const headers: Record<string, string> = { 'app-1': 'x', 'app-2': 'y', ...tracedHeaders() };
      headers[`${prefix}tenant`] = 'acme';
      const ctx = extractContext(headers, ROOT_CONTEXT);
      const entries = Object.fromEntries(
        (propagation.getBaggage(ctx)?.getAllEntries() ?? []).map(([k, e]) => [k, e.value]),
      );
      expect(entries).toEqual({ first: 'kept', tenant: 'acme' });
    });
  },
);
