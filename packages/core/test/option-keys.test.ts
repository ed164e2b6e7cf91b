import { assertKnownOptions, TRACING_OPTION_KEYS } from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';

describe('assertKnownOptions (an option the wrapper does not take throws at wrap time)', () => {
  it('names the wrapper, the unknown option and the option it most likely misspells', () => {
    expect(() => assertKnownOptions('traceX', { legacyAttribute: true }, TRACING_OPTION_KEYS)).toThrow(
      new TypeError('Unknown option `legacyAttribute` for traceX (did you mean `legacyAttributes`?)'),
    );
    expect(() => assertKnownOptions('traceX', { TracerProvider: {} }, TRACING_OPTION_KEYS)).toThrow(
      new TypeError('Unknown option `TracerProvider` for traceX (did you mean `tracerProvider`?)'),
    );
    expect(() => assertKnownOptions('traceX', { sampler: 'always' }, TRACING_OPTION_KEYS)).toThrow(
      new TypeError('Unknown option `sampler` for traceX'),
    );
  });

  it('takes the known options, an option left undefined, and leaves non-objects to the other checks', () => {
    expect(() =>
      assertKnownOptions('traceX', { legacyAttributes: true, unsampled: 'skip' }, TRACING_OPTION_KEYS),
    ).not.toThrow();
    expect(() => assertKnownOptions('traceX', { typo: undefined }, TRACING_OPTION_KEYS)).not.toThrow();
    for (const value of [undefined, null, 'x', 42]) {
      expect(() => assertKnownOptions('traceX', value, TRACING_OPTION_KEYS)).not.toThrow();
    }
    // Inherited and symbol keys are not options.
    const inherited = Object.create({ typo: true }) as object;
    expect(() => assertKnownOptions('traceX', inherited, TRACING_OPTION_KEYS)).not.toThrow();
    expect(() => assertKnownOptions('traceX', { [Symbol('s')]: 1 }, TRACING_OPTION_KEYS)).not.toThrow();
  });

  it('quotes at most 64 characters of an unknown name, and a throwing getter counts as set', () => {
    const long = 'x'.repeat(10_000);
    expect(() => assertKnownOptions('traceX', { [long]: 1 }, TRACING_OPTION_KEYS)).toThrow(
      new TypeError(`Unknown option \`${'x'.repeat(64)}\` for traceX`),
    );
    const hostile = {
      get typo(): unknown {
        throw new Error('getter');
      },
    };
    expect(() => assertKnownOptions('traceX', hostile, TRACING_OPTION_KEYS)).toThrow(/Unknown option `typo`/);
  });
});
