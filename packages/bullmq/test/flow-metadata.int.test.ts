import {
  brokerEndpoint,
  deferred,
  onlySpan,
  parentSpanId,
  spansNamed,
  useTestTracing,
  waitForSpans,
} from '@hoptrace/test-kit';
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_CHILD_LINKS, MAX_METADATA_LENGTH } from '../src/carrier.ts';
import { traceFlowProducer, traceProcessor } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName, type WorkerHandle } from './helpers.ts';

const tracing = useTestTracing();

const REMOTE_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const REMOTE_SPAN = '00f067aa0ba902b7';

describe.each(BULLMQ_VERSIONS)(
  'BullMQ %s: a wide flow parent’s metadata stays readable',
  (_label, bullmq) => {
    const workers: WorkerHandle[] = [];
    const queues: QueueHandle[] = [];
    const connection = () => brokerEndpoint('redis');
    afterEach(async () => cleanup(workers, queues));

    /**
     * Adds a flow of one parent and MAX_CHILD_LINKS children inside `ctx`, processes it, and returns
     * the parent's stored metadata and the spans.
     */
    async function wideFlow(prefix: string, ctx: ReturnType<typeof context.active>) {
      const parentName = uniqueQueueName(`${prefix}-parent`);
      const childName = uniqueQueueName(`${prefix}-child`);
      for (const name of [parentName, childName])
        queues.push(new bullmq.Queue(name, { connection: connection() }));
      const flow = traceFlowProducer(new bullmq.FlowProducer({ connection: connection() }), {
        createSpans: true,
      });
      const done = deferred();
      workers.push(
        new bullmq.Worker(
          childName,
          traceProcessor(async () => 'child'),
          { connection: connection(), concurrency: 64 },
        ),
        new bullmq.Worker(
          parentName,
          traceProcessor(async () => done.resolve()),
          { connection: connection() },
        ),
      );
      let metadata: string | undefined;
      try {
        const children = Array.from({ length: MAX_CHILD_LINKS }, (_, i) => ({
          name: `c${i}`,
          queueName: childName,
        }));
        const tree = await context.with(ctx, () =>
          flow.add({ name: 'order', queueName: parentName, children }),
        );
        await done.promise;
        const stored = await bullmq.Job.fromId(
          queues.at(-2) as InstanceType<typeof bullmq.Queue>,
          tree.job.id as string,
        );
        metadata = stored?.opts.telemetry?.metadata;
      } finally {
        await flow.close();
      }
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) =>
          spansNamed(s, `process ${parentName}`).length === 1 &&
          spansNamed(s, `process ${childName}`).length === MAX_CHILD_LINKS,
      );
      const parentProcess = onlySpan(spans, `process ${parentName}`);
      const parentCreate = onlySpan(spans, `create ${parentName}`);
      const childCreates = new Set(
        spansNamed(spans, `create ${childName}`).map((s) => s.spanContext().spanId),
      );
      return { metadata: metadata ?? '', parentProcess, parentCreate, childCreates };
    }

    it('128 children under a context with baggage: the parent continues its create span and links to every child', async () => {
      const app = trace.getTracer('app').startSpan('app');
      const bag = propagation.createBaggage({
        tenant: { value: 'acme-corporation-eu-west-1' },
        user: { value: 'u'.repeat(64) },
      });
      const ctx = propagation.setBaggage(trace.setSpan(ROOT_CONTEXT, app), bag);
      const { metadata, parentProcess, parentCreate, childCreates } = await wideFlow('bag', ctx);
      app.end();
      expect(metadata.length).toBeLessThanOrEqual(MAX_METADATA_LENGTH);
      expect(parentProcess.spanContext().traceId).toBe(app.spanContext().traceId);
      expect(parentSpanId(parentProcess)).toBe(parentCreate.spanContext().spanId);
      expect(parentProcess.links).toHaveLength(MAX_CHILD_LINKS);
      for (const link of parentProcess.links) expect(childCreates.has(link.context.spanId)).toBe(true);
      expect(parentProcess.attributes.tenant).toBeUndefined();
    });

    it('128 children under a remote context with a long tracestate: the parent continues its create span, links to the children that fit', async () => {
      const state = Array.from({ length: 20 }, (_, i) => `v${i}=${'x'.repeat(20)}`).join(',');
      const remote = propagation.extract(ROOT_CONTEXT, {
        traceparent: `00-${REMOTE_TRACE}-${REMOTE_SPAN}-01`,
        tracestate: state,
      });
      const { metadata, parentProcess, parentCreate, childCreates } = await wideFlow('state', remote);
      expect(metadata.length).toBeLessThanOrEqual(MAX_METADATA_LENGTH);
      expect(parentProcess.spanContext().traceId).toBe(REMOTE_TRACE);
      expect(parentSpanId(parentProcess)).toBe(parentCreate.spanContext().spanId);
      expect(parentProcess.links.length).toBeGreaterThan(0);
      expect(parentProcess.links.length).toBeLessThan(MAX_CHILD_LINKS);
      for (const link of parentProcess.links) expect(childCreates.has(link.context.spanId)).toBe(true);
    });

    it('a parent whose job id leaves no room for any child entry: it continues its create span (without a child list or marker)', async () => {
      const parentName = uniqueQueueName('long-id-parent');
      const childName = uniqueQueueName('long-id-child');
      const parents = new bullmq.Queue(parentName, { connection: connection() });
      queues.push(parents, new bullmq.Queue(childName, { connection: connection() }));
      const flow = traceFlowProducer(new bullmq.FlowProducer({ connection: connection() }), {
        createSpans: true,
      });
      const done = deferred();
      workers.push(
        new bullmq.Worker(
          childName,
          traceProcessor(async () => 'child'),
          { connection: connection() },
        ),
        new bullmq.Worker(
          parentName,
          traceProcessor(async () => done.resolve()),
          { connection: connection() },
        ),
      );
      // The marker names the id: with it, the metadata alone is past what hoptrace reads.
      const jobId = `order-${'x'.repeat(MAX_METADATA_LENGTH - 150)}`;
      let metadata: string | undefined;
      try {
        await flow.add({
          name: 'order',
          queueName: parentName,
          opts: { jobId },
          children: [{ name: 'a', queueName: childName }],
        });
        await done.promise;
        metadata = (await parents.getJob(jobId))?.opts.telemetry?.metadata;
      } finally {
        await flow.close();
      }
      const spans = await waitForSpans(
        tracing.current.spans,
        (s) => spansNamed(s, `process ${parentName}`).length === 1,
      );
      const parentProcess = onlySpan(spans, `process ${parentName}`);
      const parentCreate = onlySpan(spans, `create ${parentName}`);
      expect(metadata?.length).toBeLessThanOrEqual(MAX_METADATA_LENGTH);
      expect(Object.keys(JSON.parse(metadata ?? '{}'))).toEqual(['traceparent']);
      expect(parentProcess.spanContext().traceId).toBe(parentCreate.spanContext().traceId);
      expect(parentSpanId(parentProcess)).toBe(parentCreate.spanContext().spanId);
      expect(parentProcess.links).toEqual([]);
    });
  },
);
