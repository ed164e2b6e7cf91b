import { type LogLine, memoryLogger, type Pipeline, startPipeline } from '@hoptrace/integration/pipeline';
import { brokerEndpoint, parentSpanId, useTestTracing, waitForSpans } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderTrace } from './helpers.ts';

// One order crossing Kafka -> RabbitMQ -> BullMQ on real brokers must stay one trace.
const tracing = useTestTracing({ leakGraceMs: 5000 });
let pipeline: Pipeline;
let lines: LogLine[];

beforeAll(async () => {
  const logs = memoryLogger();
  lines = logs.lines;
  pipeline = await startPipeline({
    endpoints: {
      kafka: brokerEndpoint('kafka'),
      rabbitmq: brokerEndpoint('rabbitmq'),
      redis: brokerEndpoint('redis'),
    },
    logger: logs.logger,
  });
});
afterAll(async () => {
  await pipeline?.stop();
});

const spans = () => tracing.current.spans();

describe('the order pipeline', () => {
  it('keeps one trace from the request to the BullMQ worker, each hop parented by the previous one', async () => {
    const { traceId, done } = await pipeline.placeOrder({ id: 'order-1', tenant: 'acme', items: 2 });
    await expect(done).resolves.toEqual({ orderId: 'order-1', status: 'fulfilled', attempts: 1 });
    await waitForSpans(spans, (all) => all.filter((s) => s.spanContext().traceId === traceId).length >= 7);
    const t = orderTrace(spans(), traceId, pipeline.names);
    expect(t.bullProcess).toHaveLength(1);
    expect(spans().filter((s) => s.spanContext().traceId === traceId)).toHaveLength(7);

    // Every pino line written inside a hop carries that hop's trace and span ids.
    const byHop = (hop: string) =>
      lines.filter((l) => l.hop === hop && (l as { orderId?: string }).orderId === 'order-1');
    const expectIds = (hop: string, spanId: string) => {
      const hopLines = byHop(hop);
      expect(hopLines.length, hop).toBeGreaterThan(0);
      for (const line of hopLines)
        expect({ trace_id: line.trace_id, span_id: line.span_id, tenant: line['tenant.id'] }).toEqual({
          trace_id: traceId,
          span_id: spanId,
          tenant: 'acme', // the business code travelled as baggage through every hop
        });
    };
    expectIds('http', t.request.spanContext().spanId);
    expectIds('kafka', t.kafkaProcess.spanContext().spanId);
    expectIds('rabbitmq', t.rabbitProcess.spanContext().spanId);
    expectIds('bullmq', (t.bullProcess[0] ?? t.request).spanContext().spanId);

    // Baggage: tenant id reaches the worker's span, and only that span (it is the only allow-list).
    expect(t.bullProcess[0]?.attributes['tenant.id']).toBe('acme');
    const withTenant = spans().filter(
      (s) => s.spanContext().traceId === traceId && 'tenant.id' in s.attributes,
    );
    expect(withTenant.map((s) => s.spanContext().spanId)).toEqual([t.bullProcess[0]?.spanContext().spanId]);
  });

  it('shows a failing BullMQ attempt as ERROR and the retry that succeeds as OK, as siblings', async () => {
    const { traceId, done } = await pipeline.placeOrder({
      id: 'order-flaky',
      tenant: 'acme',
      items: 1,
      flaky: true,
    });
    await expect(done).resolves.toMatchObject({ status: 'fulfilled', attempts: 2 });
    await waitForSpans(spans, (all) => all.filter((s) => s.spanContext().traceId === traceId).length >= 8);
    const t = orderTrace(spans(), traceId, pipeline.names);
    expect(t.bullProcess.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.UNSET]);
    expect(t.bullProcess.map((s) => s.attributes['bullmq.job.attempt'])).toEqual([1, 2]);
    expect(t.bullProcess[0]?.attributes['error.type']).toBe('Error');
    expect(new Set(t.bullProcess.map((s) => parentSpanId(s)))).toEqual(
      new Set([t.bullSend?.spanContext().spanId]),
    );
  });

  it('dead-letters a poison message at the RabbitMQ hop and processes it later within its original trace', async () => {
    const { traceId, done } = await pipeline.placeOrder({
      id: 'order-poison',
      tenant: 'acme',
      items: 1,
      poison: true,
    });
    await expect(done).resolves.toMatchObject({ status: 'dead-lettered' });
    await waitForSpans(spans, (all) => all.filter((s) => s.spanContext().traceId === traceId).length >= 7);
    const t = orderTrace(spans(), traceId, pipeline.names);
    expect(spans().filter((s) => s.spanContext().traceId === traceId)).toHaveLength(7);
    // The failed attempt records the business code the classifier gave.
    expect(t.rabbitProcess.status.code).toBe(SpanStatusCode.ERROR);
    expect(t.rabbitProcess.attributes['error.type']).toBe('POISON_ORDER');
    expect(t.bullSend).toBeUndefined();
    expect(t.deadLetterSend).toBeDefined();
    const dlq = t.deadLetterProcess;
    if (!dlq) throw new Error('the dead-letter copy was not processed');
    // The copy continues the original trace (its creation context is the original send) ...
    expect(dlq.spanContext().traceId).toBe(traceId);
    expect(parentSpanId(dlq)).toBe(t.rabbitSend.spanContext().spanId);
    // ... and links to the attempt that failed, naming the failure.
    expect(dlq.links).toHaveLength(1);
    expect(dlq.links[0]?.context.spanId).toBe(t.rabbitProcess.spanContext().spanId);
    expect(dlq.links[0]?.attributes).toMatchObject({
      'hoptrace.failure.error.type': 'POISON_ORDER',
      'hoptrace.failure.retryable': false,
      'hoptrace.failure.destination': pipeline.names.fulfilmentRequests,
      'hoptrace.failure.attempts': 1,
    });
    expect(dlq.attributes['hoptrace.failure.error.type']).toBe('POISON_ORDER');
    // Log lines of both the failed attempt and the dead-letter handling carry trace id, error code and tenant.
    const poisonLines = lines.filter((l) => (l as { orderId?: string }).orderId === 'order-poison');
    const failedLine = poisonLines.find((l) => l.hop === 'rabbitmq');
    const dlqLine = poisonLines.find((l) => l.hop === 'rabbitmq-dlq');
    expect(failedLine).toMatchObject({ trace_id: traceId, span_id: t.rabbitProcess.spanContext().spanId });
    expect(failedLine?.['tenant.id']).toBe('acme');
    expect(dlqLine).toMatchObject({
      trace_id: traceId,
      span_id: dlq.spanContext().spanId,
      'error.type': 'POISON_ORDER',
      'tenant.id': 'acme',
    });
  });

  it('runs the scheduled reconciliation as a new trace per run, each linked to the scheduling context', async () => {
    const scheduling = await pipeline.scheduleReconciliation(300);
    const isRun = (s: { attributes: Record<string, unknown> }) =>
      s.attributes['messaging.system.name'] === 'bullmq' &&
      s.attributes['messaging.operation.type'] === 'process' &&
      s.attributes['messaging.destination.name'] === pipeline.names.reconciliationQueue;
    await waitForSpans(spans, (all) => all.filter(isRun).length >= 3, 20_000);
    const runs = spans().filter(isRun).slice(0, 3);
    const traces = new Set(runs.map((s) => s.spanContext().traceId));
    expect(traces.size).toBe(3);
    expect(traces.has(scheduling.traceId)).toBe(false);
    const exported = new Set(spans().map((s) => s.spanContext().spanId));
    for (const run of runs) {
      // The run's root is virtual (derived from the job id, so a retry finds the same trace): never exported.
      expect(exported.has(parentSpanId(run) as string)).toBe(false);
      expect(run.links.map((l) => l.context.traceId)).toContain(scheduling.traceId);
      expect(run.attributes['bullmq.scheduler.id']).toBe(pipeline.names.schedulerId);
    }
    // Each run's Kafka publish continues that run's own trace.
    await waitForSpans(spans, (all) =>
      runs.every((run) =>
        all.some(
          (s) =>
            s.attributes['messaging.system.name'] === 'kafka' && parentSpanId(s) === run.spanContext().spanId,
        ),
      ),
    );
    expect(pipeline.reconciliationRuns()).toBeGreaterThanOrEqual(1);
    await pipeline.unscheduleReconciliation();
  });
});
