import { FAILURE_HEADERS } from '@hoptrace/core';
import { isLineageHeader, nextFailureHeaders } from '@hoptrace/core/adapter';
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
});
