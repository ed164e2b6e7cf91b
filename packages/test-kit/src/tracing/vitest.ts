import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { installTestTracing, type TestPropagator, type TestTracing } from './tracing.ts';

/**
 * Installs in-memory tracing for one test file and checks, after every test, that every span that
 * started has ended (a leak fails that test). Finished spans are cleared before each test.
 *
 * @returns a live handle: read `tracing.current` inside tests.
 */
export function useTestTracing(
  options: { propagator?: TestPropagator; sampled?: boolean; leakGraceMs?: number } = {},
): {
  readonly current: TestTracing;
} {
  let tracing: TestTracing | undefined;
  const handle = {
    get current(): TestTracing {
      if (!tracing) throw new Error('useTestTracing: tracing is installed in beforeAll; use it inside tests');
      return tracing;
    },
  };
  beforeAll(() => {
    tracing = installTestTracing(options);
  });
  beforeEach(() => tracing?.reset());
  afterEach(async () => {
    await tracing?.assertNoOpenSpans(options.leakGraceMs);
  });
  afterAll(async () => {
    await tracing?.uninstall();
  });
  return handle;
}
