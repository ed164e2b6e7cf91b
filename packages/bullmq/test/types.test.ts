import {
  deadLetterJobOptions,
  type FlowTracingOptions,
  type ProcessorTracingOptions,
  type QueueTracingOptions,
  traceFlowProducer,
  traceProcessor,
  traceQueue,
} from '@hoptrace/bullmq';
import type { AllUndefined, MaybeSet } from '@hoptrace/test-kit';
import type { TracerProvider } from '@opentelemetry/api';
import type { FlowProducer, Job, Queue } from 'bullmq';
import { describe, expectTypeOf, it } from 'vitest';

// Compile-time checks: `pnpm run typecheck` fails if a wrapper loses the client's type, or if an
// option marked `@ts-expect-error` below becomes accepted. Nothing here connects anywhere.
interface Order {
  id: string;
}
declare const queue: Queue<Order, { ok: boolean }, 'fulfil'>;
declare const flow: FlowProducer;
const maybeTracerProvider = undefined as TracerProvider | undefined;

const processor = async (job: Job<Order>, token?: string): Promise<{ ok: boolean }> => ({
  ok: !!job.data.id && !token,
});

describe('@hoptrace/bullmq types', () => {
  it('every wrapper returns the exact client type it was given', () => {
    // Declared values only (nothing to connect to): the checks run at compile time, never called.
    const compileOnly = () => {
      expectTypeOf(traceQueue(queue)).toEqualTypeOf<Queue<Order, { ok: boolean }, 'fulfil'>>();
      expectTypeOf(traceFlowProducer(flow)).toEqualTypeOf<FlowProducer>();
      expectTypeOf(traceProcessor(processor)).toEqualTypeOf<typeof processor>();
      expectTypeOf(traceProcessor(processor)).parameters.toEqualTypeOf<[Job<Order>, (string | undefined)?]>();
      // The dead-letter helper's result is accepted as the options of `add`.
      const job = {} as Job<Order>;
      queue.add('fulfil', job.data, deadLetterJobOptions(job, new Error('x')));
    };
    expectTypeOf(compileOnly).toBeFunction();
  });

  it('rejects invalid options at compile time', () => {
    const invalid = [
      // @ts-expect-error createSpans is a boolean
      () => traceQueue(queue, { createSpans: 'yes' }),
      // @ts-expect-error relation is 'parent' | 'link' | 'root'
      () => traceProcessor(processor, { relation: 'sibling' }),
      // @ts-expect-error onProcess is a function
      () => traceProcessor(processor, { onProcess: true }),
      // @ts-expect-error relation is a consumer option, not a queue one
      () => traceQueue(queue, { relation: 'link' }),
      // @ts-expect-error not a processor
      () => traceProcessor('fn'),
      // @ts-expect-error processTimeoutMs is a number of milliseconds
      () => traceProcessor(processor, { processTimeoutMs: '5m' }),
      // @ts-expect-error processTimeoutMs is a processor option, not a queue one
      () => traceQueue(queue, { processTimeoutMs: 5 }),
    ];
    expectTypeOf(invalid).toBeArray();
  });

  it('every option of every wrapper takes an explicit undefined (exactOptionalPropertyTypes)', () => {
    const queueOptions = {} as AllUndefined<QueueTracingOptions>;
    const flowOptions = {} as AllUndefined<FlowTracingOptions>;
    const processorOptions = {} as AllUndefined<ProcessorTracingOptions>;
    const compileOnly = () => {
      expectTypeOf(traceQueue(queue, queueOptions)).toEqualTypeOf<Queue<Order, { ok: boolean }, 'fulfil'>>();
      expectTypeOf(traceFlowProducer(flow, flowOptions)).toEqualTypeOf<FlowProducer>();
      expectTypeOf(traceQueue(queue, { tracerProvider: maybeTracerProvider })).toEqualTypeOf<
        Queue<Order, { ok: boolean }, 'fulfil'>
      >();
    };
    expectTypeOf(compileOnly).toBeFunction();
    expectTypeOf(traceProcessor(processor, processorOptions)).toEqualTypeOf<typeof processor>();
    expectTypeOf<MaybeSet<QueueTracingOptions>>().toExtend<QueueTracingOptions>();
    expectTypeOf<MaybeSet<FlowTracingOptions>>().toExtend<FlowTracingOptions>();
    expectTypeOf<MaybeSet<ProcessorTracingOptions>>().toExtend<ProcessorTracingOptions>();
  });
});
