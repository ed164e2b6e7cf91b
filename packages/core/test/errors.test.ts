import { classifyError, describeError, errorTypeOf } from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';

describe('errorTypeOf', () => {
  it.each([
    [Object.assign(new Error('x'), { type: 'REQUEST_TIMED_OUT' }), 'REQUEST_TIMED_OUT'],
    [Object.assign(new Error('x'), { code: 'ECONNRESET' }), 'ECONNRESET'],
    [new RangeError('x'), 'RangeError'],
    [
      Object.assign(new (class KafkaJSNumberOfRetriesExceeded extends Error {})('x'), {
        cause: Object.assign(new Error('inner'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' }),
      }),
      'UNKNOWN_TOPIC_OR_PARTITION',
    ],
    [new (class KafkaJSNumberOfRetriesExceeded extends Error {})('x'), 'KafkaJSNumberOfRetriesExceeded'],
    [new Error('plain'), 'Error'],
    [{ code: 'C'.repeat(500) }, 'C'.repeat(128)],
    ['a string', '_OTHER'],
    [undefined, '_OTHER'],
    [Object.create(null), '_OTHER'],
    [{}, '_OTHER'],
    // @platformatic/kafka: a ProtocolError names the Kafka error in apiId, its code is the library's
    [{ code: 'PLT_KFK_PROTOCOL', apiId: 'INVALID_TOPIC_EXCEPTION' }, 'INVALID_TOPIC_EXCEPTION'],
    // a response error (an aggregate) whose errors agree, or not
    [
      {
        code: 'PLT_KFK_RESPONSE',
        errors: [
          { code: 'PLT_KFK_PROTOCOL', apiId: 'NOT_LEADER_OR_FOLLOWER' },
          { code: 'PLT_KFK_PROTOCOL', apiId: 'NOT_LEADER_OR_FOLLOWER' },
        ],
      },
      'NOT_LEADER_OR_FOLLOWER',
    ],
    [
      {
        code: 'PLT_KFK_RESPONSE',
        errors: [
          { code: 'PLT_KFK_PROTOCOL', apiId: 'NOT_LEADER_OR_FOLLOWER' },
          { code: 'PLT_KFK_PROTOCOL', apiId: 'UNKNOWN_TOPIC_OR_PARTITION' },
        ],
      },
      'PLT_KFK_RESPONSE',
    ],
    [{ code: 'PLT_KFK_RESPONSE', errors: [{ code: 'PLT_KFK_NETWORK' }] }, 'PLT_KFK_RESPONSE'],
    [{ code: 'PLT_KFK_MULTIPLE', errors: [] }, 'PLT_KFK_MULTIPLE'],
  ])('maps %s to %s', (error, expected) => {
    expect(errorTypeOf(error)).toBe(expected);
  });

  it('never throws on getters that throw', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    expect(errorTypeOf(hostile)).toBe('_OTHER');
    const revoked = Proxy.revocable([], {});
    revoked.revoke();
    expect(errorTypeOf({ code: 'PLT_KFK_RESPONSE', errors: revoked.proxy })).toBe('PLT_KFK_RESPONSE');
    const throwingEntry = [{ apiId: 'A' }];
    Object.defineProperty(throwingEntry, 0, {
      get() {
        throw new Error('trap');
      },
    });
    expect(errorTypeOf({ code: 'PLT_KFK_RESPONSE', errors: throwingEntry })).toBe('PLT_KFK_RESPONSE');
    expect(describeError(hostile)).toEqual({ name: undefined, message: undefined });
  });
});

describe('describeError', () => {
  it('reads messages safely and caps them', () => {
    expect(describeError('text')).toEqual({ name: undefined, message: 'text' });
    expect(describeError(null)).toEqual({ name: undefined, message: 'null' });
    expect(describeError(Symbol('s')).message).toBe('Symbol(s)');
    expect(describeError(new Error('m'.repeat(5000))).message).toHaveLength(1024);
    expect(describeError({ toString: () => 'never called' })).toEqual({
      name: undefined,
      message: undefined,
    });
  });
});

describe('classifyError', () => {
  it('prefers the classifier, then the adapter fallback, then errorTypeOf', () => {
    const error = Object.assign(new Error('x'), { code: 'E1' });
    expect(classifyError(error).type).toBe('E1');
    expect(classifyError(error, undefined, 'nacked').type).toBe('nacked');
    expect(classifyError(error, () => ({ type: 'MINE' }), 'nacked').type).toBe('MINE');
    expect(classifyError(error, () => undefined, 'nacked').type).toBe('nacked');
    expect(classifyError(error, () => 'not an object' as never).type).toBe('E1');
  });
});
