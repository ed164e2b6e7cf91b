import { FAILURE_HEADERS, failureHeaders, readFailureLineage } from '@hoptrace/core';
import {
  ATTR_KAFKA_MESSAGE_KEY,
  addKafkaMessageAttributes,
  capValue,
  classifyError,
  describeError,
  MAX_ATTRIBUTE_VALUE_LENGTH,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

/** No lone surrogate: a `u` regex reads a pair as one code point, so `\p{Cs}` matches only half a pair. */
function wellFormed(text: string | undefined): boolean {
  return text !== undefined && !/\p{Cs}/u.test(text);
}

/** A string whose code unit at `at - 1` is the high half of an emoji (a surrogate pair across `at`). */
function pairAcross(at: number): string {
  return `${'a'.repeat(at - 1)}${'😀'.repeat(50)}`;
}

describe('values cut to a cap stay well-formed text (never half a surrogate pair)', () => {
  it('capValue cuts before a pair it would split, and keeps a pair that ends at the cap', () => {
    const cut = capValue(pairAcross(MAX_ATTRIBUTE_VALUE_LENGTH));
    expect(wellFormed(cut)).toBe(true);
    expect(cut).toBe('a'.repeat(MAX_ATTRIBUTE_VALUE_LENGTH - 1));
    const whole = capValue(pairAcross(MAX_ATTRIBUTE_VALUE_LENGTH - 1));
    expect(whole).toBe(`${'a'.repeat(MAX_ATTRIBUTE_VALUE_LENGTH - 2)}😀`);
    expect(capValue('😀'.repeat(10), 5)).toBe('😀😀');
    // text that is already ill-formed is the caller's: cut, not repaired
    expect(capValue('ab\ud800', 10)).toBe('ab\ud800');
  });

  it('a Kafka key from the wire (opted in), an error message and type, and lineage headers', () => {
    const key = pairAcross(MAX_ATTRIBUTE_VALUE_LENGTH);
    const out: Attributes = {};
    addKafkaMessageAttributes(out, { key: Buffer.from(key), value: 'v' }, true, false);
    expect(wellFormed(String(out[ATTR_KAFKA_MESSAGE_KEY]))).toBe(true);

    const { name, message } = describeError(
      Object.assign(new Error(pairAcross(1024)), { name: pairAcross(128) }),
    );
    expect(wellFormed(message)).toBe(true);
    expect(wellFormed(name)).toBe(true);
    const failure = classifyError(new Error('x'), () => ({
      type: pairAcross(128),
      attributes: { 'app.note': pairAcross(256) },
    }));
    expect(wellFormed(failure.type)).toBe(true);
    expect(wellFormed(String(failure.attributes?.['app.note']))).toBe(true);

    const headers = failureHeaders({
      error: new Error(pairAcross(256)),
      destination: pairAcross(MAX_ATTRIBUTE_VALUE_LENGTH),
      context: ROOT_CONTEXT,
    });
    expect(wellFormed(headers[FAILURE_HEADERS.errorMessage])).toBe(true);
    expect(wellFormed(headers[FAILURE_HEADERS.destination])).toBe(true);

    const lineage = readFailureLineage({
      [FAILURE_HEADERS.errorType]: Buffer.from(pairAcross(128)),
      [FAILURE_HEADERS.destination]: Buffer.from(pairAcross(256)),
      [FAILURE_HEADERS.errorMessage]: pairAcross(256),
    });
    expect(wellFormed(lineage?.errorType)).toBe(true);
    expect(wellFormed(lineage?.destination)).toBe(true);
    expect(wellFormed(lineage?.errorMessage)).toBe(true);
  });
});
