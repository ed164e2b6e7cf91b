import {
  type ConsumerTracingOptions,
  createLogFields,
  type FailureInput,
  failureHeaders,
  type LogFieldsOptions,
  type TracingOptions,
} from '@hoptrace/core';
import type { AllUndefined, MaybeSet } from '@hoptrace/test-kit';
import type { Context, MeterProvider, TracerProvider } from '@opentelemetry/api';
import { describe, expectTypeOf, it } from 'vitest';

// Compile-time checks under the repository's `exactOptionalPropertyTypes`, as an application
// compiled with it sees the options: `pnpm run typecheck` fails if an option stops taking an
// explicit `undefined` (which hoptrace reads as "not set").

const maybeTracerProvider = undefined as TracerProvider | undefined;
const maybeMeterProvider = undefined as MeterProvider | undefined;
const maybeContext = undefined as Context | undefined;

describe('@hoptrace/core types', () => {
  it('every option takes an explicit undefined (exactOptionalPropertyTypes)', () => {
    expectTypeOf<AllUndefined<TracingOptions>>().toExtend<TracingOptions>();
    expectTypeOf<AllUndefined<ConsumerTracingOptions>>().toExtend<ConsumerTracingOptions>();
    expectTypeOf<MaybeSet<TracingOptions>>().toExtend<TracingOptions>();
    expectTypeOf<MaybeSet<ConsumerTracingOptions>>().toExtend<ConsumerTracingOptions>();
    const options: TracingOptions = {
      tracerProvider: maybeTracerProvider,
      meterProvider: maybeMeterProvider,
    };
    expectTypeOf(options).toExtend<TracingOptions>();
  });

  it('createLogFields and failureHeaders take every optional input as undefined', () => {
    const logOptions = {} as AllUndefined<LogFieldsOptions>;
    expectTypeOf<MaybeSet<LogFieldsOptions>>().toExtend<LogFieldsOptions>();
    expectTypeOf(createLogFields(logOptions)).toBeFunction();
    expectTypeOf<
      Omit<MaybeSet<FailureInput>, 'destination'> & { destination: string }
    >().toExtend<FailureInput>();
    const compileOnly = () =>
      failureHeaders({
        error: new Error('x'),
        destination: 'orders',
        partition: undefined,
        offset: undefined,
        attempts: undefined,
        classifyError: undefined,
        context: maybeContext,
      });
    expectTypeOf(compileOnly).returns.toEqualTypeOf<Record<string, string>>();
  });

  it('still rejects a wrong value', () => {
    const invalid = [
      // @ts-expect-error legacyAttributes is a boolean
      (): TracingOptions => ({ legacyAttributes: 'yes' }),
      // @ts-expect-error relation is 'parent' | 'link' | 'root'
      (): ConsumerTracingOptions => ({ relation: 'sibling' }),
      // @ts-expect-error errorType is a boolean
      () => createLogFields({ errorType: 'no' }),
    ];
    expectTypeOf(invalid).toBeArray();
  });
});
