import { brokerEndpoint, onlySpan, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { SpanKind } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName } from './helpers.ts';

const tracing = useTestTracing();

/** The telemetry options BullMQ stored for a job (its `opts.telemetry`), read back from Redis. */
async function storedTelemetry(
  queue: { getJob(id: string): Promise<{ opts: { telemetry?: unknown } } | undefined> },
  id: string | undefined,
): Promise<unknown> {
  return (await queue.getJob(String(id)))?.opts.telemetry;
}

describe.each(BULLMQ_VERSIONS)(
  "BullMQ %s: the queue's defaultJobOptions.telemetry, as BullMQ applies them",
  (_label, bullmq) => {
    const { Queue } = bullmq;
    const queues: QueueHandle[] = [];
    afterEach(async () => cleanup([], queues));

    function queueWith(defaultJobOptions: Record<string, unknown>) {
      const queue = new Queue(uniqueQueueName('defaults'), {
        connection: brokerEndpoint('redis'),
        defaultJobOptions,
      });
      queues.push(queue);
      return queue;
    }

    it('omitContext in defaultJobOptions: add and upsertJobScheduler store what they store without hoptrace, no context', async () => {
      const defaults = { telemetry: { omitContext: true }, attempts: 2 };
      const raw = queueWith(defaults);
      const traced = queueWith(defaults);
      const queue = traceQueue(traced);

      const plain = await raw.add('a', { n: 1 });
      const job = await queue.add('a', { n: 1 });
      expect(await storedTelemetry(raw, plain.id)).toEqual({ omitContext: true });
      expect(await storedTelemetry(traced, job.id)).toEqual(await storedTelemetry(raw, plain.id));
      // The caller's own telemetry still replaces the default one, as BullMQ merges them.
      const own = await queue.add('b', {}, { telemetry: { omitContext: false } });
      expect(((await storedTelemetry(traced, own.id)) as { metadata?: unknown }).metadata).toBeTypeOf(
        'string',
      );

      const rawNext = await raw.upsertJobScheduler('s', { every: 60_000 }, { name: 't' });
      const next = await queue.upsertJobScheduler('s', { every: 60_000 }, { name: 't' });
      expect(await storedTelemetry(traced, next?.id)).toEqual(await storedTelemetry(raw, rawNext?.id));

      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => s.filter((span) => span.name.startsWith('send ')).length === 2,
      );
      expect(onlySpan(spans, `schedule ${traced.name}`).kind).toBe(SpanKind.PRODUCER);
    });

    it("a context in defaultJobOptions is the caller's: kept, and the send span links to it", async () => {
      const metadata = JSON.stringify({ traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` });
      const traced = queueWith({ telemetry: { metadata } });
      const job = await traceQueue(traced).add('a', {});
      expect(await storedTelemetry(traced, job.id)).toEqual({ metadata });
      const send = onlySpan(tracing.current.spans(), `send ${traced.name}`);
      expect(send.kind).toBe(SpanKind.CLIENT);
      expect(send.links.map((l) => l.context.spanId)).toEqual(['b'.repeat(16)]);
    });
  },
);
