import { FAILURE_HEADERS } from '@hoptrace/core';
import { checkFailureCopyOptions, isLineageHeader, nextFailureHeaders } from '@hoptrace/core/adapter';
import { context } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

describe('failure copies', () => {
  it('tells lineage headers from the rest', () => {
    for (const name of Object.values(FAILURE_HEADERS)) expect(isLineageHeader(name)).toBe(true);
    expect(isLineageHeader('hoptrace-failed-traceparent')).toBe(true);
    expect(isLineageHeader('traceparent')).toBe(false);
  });

  it('counts attempts from the failed message, unless given', () => {
    const input = { error: new Error('x'), destination: 'orders' };
    expect(nextFailureHeaders(undefined, input)[FAILURE_HEADERS.attempts]).toBe('1');
    const retried = { [FAILURE_HEADERS.errorType]: 'E', [FAILURE_HEADERS.attempts]: '4' };
    expect(nextFailureHeaders(retried, input)[FAILURE_HEADERS.attempts]).toBe('5');
    expect(nextFailureHeaders(retried, { ...input, attempts: 9 })[FAILURE_HEADERS.attempts]).toBe('9');
  });

  it("checks a dead-letter helper's options the same way for every adapter", () => {
    const keys = { attempts: true, classifyError: true, context: true } as const;
    const check = (options: unknown) => () => checkFailureCopyOptions('deadLetterX', options as never, keys);
    expect(checkFailureCopyOptions('deadLetterX', undefined, keys)).toEqual({});
    const given = {
      attempts: 2,
      classifyError: () => undefined,
      context: context.active(),
      other: undefined,
    };
    expect(checkFailureCopyOptions('deadLetterX', given, keys)).toBe(given);
    expect(check(null)).toThrow(new TypeError('Expected `options` to be an object, got null'));
    expect(check([])).toThrow(TypeError);
    expect(check('x')).toThrow(new TypeError('Expected `options` to be an object, got "x"'));
    expect(check({ attempt: 1 })).toThrow(
      new TypeError('Unknown option `attempt` for deadLetterX (did you mean `attempts`?)'),
    );
    expect(check({ attempts: 1.5 })).toThrow(
      new TypeError('Expected `attempts` to be an integer >= 0, got 1.5'),
    );
    expect(check({ classifyError: {} })).toThrow(TypeError);
    expect(check({ context: {} })).toThrow(
      'deadLetterX: expected `options.context` to be an OpenTelemetry Context or undefined, got an object',
    );
  });
});
