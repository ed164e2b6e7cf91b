import { Writable } from 'node:stream';
import { captureSnapshot, createLogFields, failureLineageOf, logFields } from '@hoptrace/core';
import { useTestTracing } from '@hoptrace/test-kit';
import { type Context, context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

// The functions that read a context the application hands them: `undefined` is the active context,
// anything that is not an OpenTelemetry Context is a mistake in the calling code, said as such.

const tracing = useTestTracing();

const readers: ReadonlyArray<readonly [string, (value: Context) => unknown]> = [
  ['logFields', logFields],
  ['captureSnapshot', captureSnapshot],
  ['failureLineageOf', failureLineageOf],
];

describe('a context argument that is not an OpenTelemetry Context', () => {
  const span = trace.wrapSpanContext({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 });

  it.each(readers)('%s throws a TypeError naming itself, the argument and what it got', (name, read) => {
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
        `${name}: expected \`context\` to be an OpenTelemetry Context or undefined, got ${got}`,
      );
    }
    // A span gets a hint: it is not a context, the context holding it is.
    expect(() => read(span as unknown as Context)).toThrow('trace.setSpan(context.active(), span)');
  });

  it.each(readers)(
    '%s reads the active context for undefined, and any Context it is given',
    (_name, read) => {
      const active = trace.setSpan(ROOT_CONTEXT, span);
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
