import { Writable } from 'node:stream';
import {
  captureSnapshot,
  createLogFields,
  extractContext,
  failureHeaders,
  failureLineageOf,
  injectContext,
  logFields,
  restoreSnapshot,
  withContextHeaders,
} from '@hoptrace/core';
import { useTestTracing } from '@hoptrace/test-kit';
import { type Context, context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

// The functions that read a context the application hands them: `undefined` is the active context,
// anything that is not an OpenTelemetry Context is a mistake in the calling code, said as such.

const tracing = useTestTracing();

const TRACEPARENT = '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01';

// [name, argument named in the message, call with that argument]
const readers: ReadonlyArray<readonly [string, string, (value: Context) => unknown]> = [
  ['logFields', 'context', logFields],
  ['captureSnapshot', 'context', captureSnapshot],
  ['failureLineageOf', 'context', failureLineageOf],
  ['injectContext', 'context', injectContext],
  ['extractContext', 'base', (base) => captureSnapshot(extractContext({ traceparent: TRACEPARENT }, base))],
  [
    'restoreSnapshot',
    'base',
    (base) =>
      captureSnapshot(
        restoreSnapshot({ v: 1, traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), traceFlags: 1 }, base),
      ),
  ],
  ['withContextHeaders', 'context', (ctx) => withContextHeaders({ a: '1' }, ctx)],
  ['withContextHeaders', 'context', (ctx) => withContextHeaders(new Map([['a', '1']]), ctx)],
  [
    'failureHeaders',
    'input.context',
    (ctx) => failureHeaders({ error: new Error('x'), destination: 'q', context: ctx }),
  ],
];

// Whatever data the caller hands them, with no headers or snapshot at all the base is still checked.
const withoutData: ReadonlyArray<readonly [string, (base: Context) => unknown]> = [
  ['extractContext', (base) => extractContext(undefined, base)],
  ['extractContext', (base) => extractContext(new Map(), base)],
  ['restoreSnapshot', (base) => restoreSnapshot(null, base)],
  ['restoreSnapshot', (base) => restoreSnapshot({ v: 99 }, base)],
  ['withContextHeaders', (ctx) => withContextHeaders(null, ctx)],
];

describe('a context argument that is not an OpenTelemetry Context', () => {
  const span = trace.wrapSpanContext({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 });

  it.each(readers)(
    '%s throws a TypeError naming itself, the argument (%s) and what it got',
    (name, argument, read) => {
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{}, 'an object'],
        ['ctx', '"ctx"'],
        [null, 'null'],
        [42, '42'],
        [{ getValue: 1 }, 'an object'],
        [span, 'a NonRecordingSpan'],
      ];
      for (const [value, got] of cases) {
        const call = () => read(value as Context);
        expect(call).toThrow(TypeError);
        expect(call).toThrow(
          `${name}: expected \`${argument}\` to be an OpenTelemetry Context or undefined, got ${got}`,
        );
      }
      // A span gets a hint: it is not a context, the context holding it is.
      expect(() => read(span as unknown as Context)).toThrow('trace.setSpan(context.active(), span)');
    },
  );

  it.each(withoutData)('%s checks its base even when there is no data to read', (name, read) => {
    expect(() => read({} as Context)).toThrow(`${name}: expected`);
    expect(() => read(ROOT_CONTEXT)).not.toThrow();
  });

  it('extractContext and restoreSnapshot never return the junk base: they throw before reading', () => {
    // Before, a base that was not a context came back as the result (for headers or a snapshot
    // that carried nothing usable), and the caller's context.with(junk) failed far away.
    const junk = { not: 'a context' } as unknown as Context;
    expect(() => extractContext({ traceparent: 'garbage' }, junk)).toThrow(TypeError);
    expect(() => restoreSnapshot('garbage', junk)).toThrow(TypeError);
  });

  it.each(readers)(
    '%s reads the active context for undefined, and any Context it is given',
    (_name, _argument, read) => {
      // Baggage of the base survives an extraction or a restore: the result shows which base was used.
      const bag = propagation.createBaggage({ 'tenant.id': { value: 'acme' } });
      const active = propagation.setBaggage(trace.setSpan(ROOT_CONTEXT, span), bag);
      const given = context.with(active, () => read(undefined as unknown as Context));
      expect(given).toEqual(read(active));
      expect(() => read(ROOT_CONTEXT)).not.toThrow();
    },
  );

  it('logFields given to pino as the mixin itself (pino passes its merge object): the TypeError says so on the first line', () => {
    const sink = new Writable({ write: (_chunk, _enc, done) => done() });
    const logger = pino({ mixin: logFields as never }, sink);
    expect(() => logger.info('x')).toThrow(/logFields: expected `context`/);
    expect(tracing.current.spans()).toHaveLength(0);
  });

  it('the function createLogFields returns ignores its arguments (pino passes its merge object, level and logger)', () => {
    const fields = createLogFields() as (...args: unknown[]) => unknown;
    context.with(trace.setSpan(ROOT_CONTEXT, span), () => {
      for (const args of [[{}, 30, {}], ['x'], [null], [span]]) {
        expect(fields(...args)).toEqual({
          trace_id: 'a'.repeat(32),
          span_id: 'b'.repeat(16),
          trace_flags: '01',
        });
      }
    });
  });
});
