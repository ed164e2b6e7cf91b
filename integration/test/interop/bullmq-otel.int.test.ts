import { randomUUID } from 'node:crypto';
import { traceFlowProducer, traceQueue } from '@hoptrace/bullmq';
import { brokerEndpoint, parentSpanId, until, useTestTracing } from '@hoptrace/test-kit';
import { context, propagation, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { FlowProducer, type Job, Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { type PeerRun, type PeerSpan, runPeer, useCleanup } from './helpers.ts';
import * as our from './our-clients.ts';

// BullMQ's richer shapes across BullMQ's own telemetry (bullmq-otel, in the peer process), both
// ways: flows (a parent and its children), job schedulers, addBulk with create spans, retries
// (attempts) and baggage. Every job's processing continues the context that job carried, in one
// trace, whichever tool wrote it and whichever reads it.
const tracing = useTestTracing({ leakGraceMs: 5000 });
const spans = (): ReadableSpan[] => tracing.current.spans();
const cleanup = useCleanup();
const connection = brokerEndpoint('redis');
const queueName = () => `bullinterop-${randomUUID()}`;
/** A caller of the peer (sampled, with baggage) whose request span the peer continues. */
const incoming = () =>
  JSON.stringify({
    traceparent: `00-${randomUUID().replaceAll('-', '')}-1111111111111111-01`,
    baggage: 'tenant.id=acme',
  });
/** The active context with the baggage `tenant.id=acme`. */
const withTenant = () =>
  propagation.setBaggage(context.active(), propagation.createBaggage({ 'tenant.id': { value: 'acme' } }));

const ourProcess = () => spans().filter((s) => s.kind === SpanKind.CONSUMER);
/** The peer's job-level spans of `operation` (their `bullmq.job.id` set), by job id. */
function peerJobSpans(run: PeerRun, operation: string): Map<string, PeerSpan[]> {
  const byJob = new Map<string, PeerSpan[]>();
  for (const span of run.spans) {
    const id = span.attributes['bullmq.job.id'];
    if (span.attributes['bullmq.queue.operation'] !== operation || typeof id !== 'string') continue;
    byJob.set(id, [...(byJob.get(id) ?? []), span]);
  }
  return byJob;
}
const only = <T>(items: T[] | undefined, what: string): T => {
  expect(items, what).toHaveLength(1);
  return (items as T[])[0] as T;
};

describe('bullmq-otel producer -> hoptrace worker', () => {
  it("their flow (a parent, two children) with baggage -> our worker: each process span is the child of its own node's addNode span, with their baggage", async () => {
    const name = queueName();
    our.dropAfter(cleanup, new Queue(name, { connection }));
    const produced = await runPeer(cleanup, 'bullmq', 'produce', name, 3, {
      PEER_FLOW: '1',
      PEER_INCOMING: incoming(),
    });
    const request = only(
      produced.spans.filter((s) => s.name === 'peer-request'),
      'the peer request',
    );
    const addNode = peerJobSpans(produced, 'addNode');
    expect(addNode.size).toBe(3);
    const baggage: (string | undefined)[] = [];
    our.bullmqWorker(
      cleanup,
      name,
      async () => {
        baggage.push(propagation.getBaggage(context.active())?.getEntry('tenant.id')?.value);
      },
      { baggageAttributes: ['tenant.id'] },
    );
    await until(() => ourProcess().length === 3, 'the three process spans');
    for (const span of ourProcess()) {
      const node = only(addNode.get(span.attributes['messaging.message.id'] as string), 'its addNode span');
      expect(span.spanContext().traceId).toBe(request.traceId);
      expect(parentSpanId(span)).toBe(node.spanId);
      expect(span.attributes['tenant.id']).toBe('acme');
    }
    expect(baggage).toEqual(['acme', 'acme', 'acme']);
  });

  it('their add with attempts: 2 -> our worker fails the first: both attempts are siblings under their add span', async () => {
    const name = queueName();
    our.dropAfter(cleanup, new Queue(name, { connection }));
    const produced = await runPeer(cleanup, 'bullmq', 'produce', name, 1, { PEER_ATTEMPTS: '2' });
    const add = only([...peerJobSpans(produced, 'add').values()].flat(), 'their add span');
    our.bullmqWorker(cleanup, name, async (job: Job) => {
      if (job.attemptsMade === 0) throw new Error('try again');
    });
    await until(() => ourProcess().length === 2, 'both attempts');
    const attempts = ourProcess().sort(
      (a, b) => Number(a.attributes['bullmq.job.attempt']) - Number(b.attributes['bullmq.job.attempt']),
    );
    for (const span of attempts) {
      expect(span.spanContext().traceId).toBe(add.traceId);
      expect(parentSpanId(span)).toBe(add.spanId);
    }
    expect(attempts.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.UNSET]);
  });

  it("their job scheduler -> our worker: each run is a new trace linked to the context the scheduler's job carried", async () => {
    const name = queueName();
    our.dropAfter(cleanup, new Queue(name, { connection }));
    const produced = await runPeer(cleanup, 'bullmq', 'produce', name, 1, { PEER_SCHEDULER: 'every' });
    const add = only([...peerJobSpans(produced, 'add').values()].flat(), 'their scheduling add span');
    our.bullmqWorker(cleanup, name, async () => undefined);
    await until(() => ourProcess().length >= 2, 'two runs');
    const runs = ourProcess().slice(0, 2);
    expect(new Set(runs.map((s) => s.spanContext().traceId)).size).toBe(2);
    for (const run of runs) {
      expect(run.spanContext().traceId).not.toBe(add.traceId);
      expect(run.links.map((l) => l.context.spanId)).toEqual([add.spanId]);
      expect(run.attributes['bullmq.scheduler.id']).toBe('every');
    }
  });
});

describe('hoptrace producer -> bullmq-otel worker', () => {
  it.each([false, true])(
    'our flow (createSpans %s) with baggage -> their worker: each process span is the child of the context its own node carried, with our baggage',
    async (createSpans) => {
      const name = queueName();
      our.dropAfter(cleanup, new Queue(name, { connection }));
      const flows = traceFlowProducer(new FlowProducer({ connection }), { createSpans });
      cleanup.push(() => flows.close());
      await context.with(withTenant(), () =>
        flows.add({
          name: 'parent',
          queueName: name,
          children: [
            { name: 'a', queueName: name },
            { name: 'b', queueName: name },
          ],
        }),
      );
      const send = only(
        spans().filter((s) => s.name.startsWith('send ')),
        'our send span',
      );
      // The context each job carries: its create span (createSpans), else the flow's send span.
      const carried = new Map(
        createSpans
          ? spans()
              .filter((s) => s.name.startsWith('create '))
              .map((s) => [s.attributes['messaging.message.id'] as string, s.spanContext().spanId])
          : [],
      );
      const run = await runPeer(cleanup, 'bullmq', 'consume', name, 3);
      const process = peerJobSpans(run, 'process');
      expect(process.size).toBe(3);
      for (const [id, [span]] of process) {
        expect(span?.traceId).toBe(send.spanContext().traceId);
        expect(span?.parentSpanId).toBe(createSpans ? carried.get(id) : send.spanContext().spanId);
      }
      for (const seen of run.seen) expect(seen.baggage).toEqual({ 'tenant.id': 'acme' });
    },
  );

  it('our addBulk with createSpans -> their worker: each process span is the child of its own job’s create span', async () => {
    const name = queueName();
    const queue = our.dropAfter(cleanup, traceQueue(new Queue(name, { connection }), { createSpans: true }));
    await queue.addBulk([
      { name: 'a', data: {} },
      { name: 'b', data: {} },
    ]);
    const creates = spans().filter((s) => s.name.startsWith('create '));
    expect(creates).toHaveLength(2);
    const run = await runPeer(cleanup, 'bullmq', 'consume', name, 2);
    const process = peerJobSpans(run, 'process');
    for (const create of creates) {
      const span = only(process.get(create.attributes['messaging.message.id'] as string), 'its process span');
      expect(span.traceId).toBe(create.spanContext().traceId);
      expect(span.parentSpanId).toBe(create.spanContext().spanId);
    }
  });

  it('our add with attempts: 2 -> their worker fails the first: both attempts are children of our send span', async () => {
    const name = queueName();
    const queue = our.dropAfter(cleanup, traceQueue(new Queue(name, { connection })));
    await queue.add('x', {}, { attempts: 2 });
    const send = only(spans(), 'our send span').spanContext();
    const run = await runPeer(cleanup, 'bullmq', 'consume', name, 1, { PEER_ATTEMPTS: '2' });
    expect(run.seen.map((s) => s.job?.attemptsMade)).toEqual([0, 1]);
    const attempts = peerJobSpans(run, 'process').get('1');
    expect(attempts).toHaveLength(2);
    for (const span of attempts ?? [])
      expect(span).toMatchObject({ traceId: send.traceId, parentSpanId: send.spanId });
  });

  it("our job scheduler -> their worker: every run's process span is the child of our schedule span", async () => {
    const name = queueName();
    const queue = our.dropAfter(cleanup, traceQueue(new Queue(name, { connection })));
    await queue.upsertJobScheduler('every', { every: 100 }, { name: 'tick' });
    const schedule = only(spans(), 'our schedule span').spanContext();
    const run = await runPeer(cleanup, 'bullmq', 'consume', name, 2);
    const process = [...peerJobSpans(run, 'process').values()].flat();
    expect(process.length).toBeGreaterThanOrEqual(2);
    for (const span of process)
      expect(span).toMatchObject({ traceId: schedule.traceId, parentSpanId: schedule.spanId });
  });
});
