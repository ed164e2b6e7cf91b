import { useTestTracing } from '@hoptrace/test-kit';
import { diag } from '@opentelemetry/api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { traceFlowProducer, traceQueue } from '../src/index.ts';
import { fakeQueue } from './helpers.ts';

// A caller's `opts.telemetry.metadata` that is not a string is not a carrier BullMQ defines (its type
// is a JSON string): hoptrace writes the job's context in its place, as BullMQ's own telemetry does.
// Raw BullMQ would store the value as given, so the replacement is reported through `diag` (once per
// process, not once per job). Its own file: the once-per-process state starts fresh here.

useTestTracing();

const metadataOf = (opts: unknown) =>
  (opts as { telemetry?: { metadata?: unknown } } | undefined)?.telemetry?.metadata;

describe('opts.telemetry.metadata that is not a string', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is replaced by the context with a diag warning naming what was replaced, once per process; null, empty and string metadata are not reported', async () => {
    const warn = vi.spyOn(diag, 'warn');
    const { queue, calls } = fakeQueue();
    const traced = traceQueue(queue);
    await traced.add('a', {}, { telemetry: { metadata: null } });
    await traced.add('b', {}, { telemetry: { metadata: '' } });
    await traced.add('c', {}, { telemetry: { metadata: 'not json' } });
    expect(warn).not.toHaveBeenCalled();
    const object = { traceparent: 'set by hand' };
    await traced.add('d', {}, { telemetry: { metadata: object } });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(
      /opts\.telemetry\.metadata.*an object.*not a string.*replaced/,
    );
    // The context is written in its place (as before), the caller's options untouched.
    expect(typeof metadataOf(calls[3]?.[2])).toBe('string');
    expect(JSON.parse(metadataOf(calls[3]?.[2]) as string)).toHaveProperty('traceparent');
    await traced.add('e', {}, { telemetry: { metadata: 42 } });
    await traced.addBulk([{ name: 'f', data: {}, opts: { telemetry: { metadata: true } } }]);
    // The flow producer writes through the same path.
    const added: unknown[] = [];
    const flow = traceFlowProducer({
      async add(tree: unknown) {
        added.push(tree);
        return { job: { id: '1' } };
      },
    });
    await flow.add({ name: 'root', queueName: 'q', opts: { telemetry: { metadata: { a: 1 } } } });
    expect(typeof metadataOf((added[0] as { opts?: unknown }).opts)).toBe('string');
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
