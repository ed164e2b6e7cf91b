import { randomBytes } from 'node:crypto';
import { deadLetterOptions } from '@hoptrace/amqp';
import { deadLetterJobOptions } from '@hoptrace/bullmq';
import { readFailureLineage } from '@hoptrace/core';
import { deadLetterMessage as kafkajsDeadLetter } from '@hoptrace/kafka';
import { deadLetterMessage as platformaticDeadLetter } from '@hoptrace/platformatic-kafka';
import {
  installTestTracing,
  makePropagator,
  parentSpanId,
  type TestPropagator,
  type TestTracing,
} from '@hoptrace/test-kit';
import { type Context, propagation, ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import type { Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  amqpStage,
  bullmqStage,
  type Hop,
  kafkajsStage,
  platformaticStage,
  type Received,
  runChain,
  type Stage,
  stringHeaders,
} from './stages.ts';

// Propagators whose baggage headers are named per entry (`uberctx-<key>`, `ot-baggage-<key>`), which
// their `fields()` does not list: extract enumerates the carrier's keys through the getter.
const KINDS: TestPropagator[] = ['jaeger', 'ot', 'w3c+jaeger', 'w3c+ot'];
const BAGGAGE = { 'tenant.id': 'acme', odd: 'a b,c;d=%25 é', other: 'x' };

let tracing: TestTracing;
let stages: Record<'kafkajs' | 'platformatic' | 'amqp' | 'bullmq', Stage>;
beforeAll(async () => {
  // ParentBased, the SDK's default: a hop samples as its message's context says.
  tracing = installTestTracing({ parentBased: true });
  stages = {
    kafkajs: await kafkajsStage({}, ['tenant.id', 'odd']),
    platformatic: await platformaticStage({}, ['tenant.id', 'odd']),
    amqp: await amqpStage({}, ['tenant.id', 'odd']),
    bullmq: await bullmqStage({}, ['tenant.id', 'odd']),
  };
}, 120_000);
afterAll(async () => {
  for (const s of Object.values(stages)) await s.close();
  await tracing.assertNoOpenSpans(5000);
  await tracing.uninstall();
});
afterEach(async () => {
  // The last hop's send settles after its message is consumed: its spans end before the next test.
  await new Promise((r) => setTimeout(r, 300));
  tracing.reset();
  usePropagator('w3c');
});

function usePropagator(kind: TestPropagator): void {
  propagation.disable();
  propagation.setGlobalPropagator(makePropagator(kind));
}

const forwardOrder = () => [stages.kafkajs, stages.platformatic, stages.amqp, stages.bullmq];
const backwardOrder = () => [stages.bullmq, stages.amqp, stages.platformatic, stages.kafkajs];
const ORDERS = [
  ['forward', forwardOrder],
  ['backward', backwardOrder],
] as const;

/**
 * A remote parent with {@link BAGGAGE}; its trace id's upper half is zero, as the OT format carries
 * 64 bits of it (a 128-bit id comes back as another trace, by that format's design).
 */
function remoteParent(flags: TraceFlags): Context {
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: `${'0'.repeat(16)}${randomBytes(8).toString('hex')}`,
    spanId: randomBytes(8).toString('hex'),
    traceFlags: flags,
    isRemote: true,
  });
  return propagation.setBaggage(
    parent,
    propagation.createBaggage(Object.fromEntries(Object.entries(BAGGAGE).map(([k, v]) => [k, { value: v }]))),
  );
}

/** Runs a message through `order` from a `root` span (sampled) and returns the hops and the root. */
async function chainFromRoot(
  order: Stage[],
  forward: Parameters<typeof runChain>[2],
  name: string,
  headers?: Record<string, string>,
) {
  const parent = remoteParent(TraceFlags.SAMPLED);
  const root = trace.getTracer('xb').startSpan('root', {}, parent);
  const ctx = trace.setSpan(parent, root);
  const body = `${name}-${Math.random()}`;
  const hops = await runChain(order, { body, ...(headers ? { headers } : {}) }, forward, ctx).finally(() =>
    root.end(),
  );
  return { hops, root, traceId: root.spanContext().traceId };
}

/** Every hop saw the trace, its flags and the allow-listed baggage, and no header twice. */
function expectCarried(hops: Hop[], order: Stage[], traceId: string, flags: '00' | '01'): void {
  expect(hops.map((h) => [h.stage, h.received.log.trace_id, h.received.log.trace_flags])).toEqual(
    order.map((s) => [s.name, traceId, flags]),
  );
  for (const hop of hops) {
    expect(hop.received.log['tenant.id'], hop.stage).toBe('acme');
    expect(hop.received.log.odd, hop.stage).toBe(BAGGAGE.odd);
    expectNoDuplicates(hop.stage, hop.received.headers);
  }
}

/** No header given twice: neither a repeated one (an array) nor one under two spellings. */
function expectNoDuplicates(stage: string, headers: Record<string, unknown>): void {
  const names = Object.keys(headers);
  expect(
    names.filter((n) => Array.isArray(headers[n])),
    stage,
  ).toEqual([]);
  expect(new Set(names.map((n) => n.toLowerCase())).size, stage).toBe(names.length);
}

/** The spans of the run on the stages' destinations: all in `traceId`, each parent one of them or the root. */
async function expectOneTrace(traceId: string, rootSpanId: string, processes: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const spans = tracing
    .spans()
    .filter((s) => String(s.attributes['messaging.destination.name'] ?? '').startsWith('xb-'));
  expect(spans.filter((s) => s.spanContext().traceId !== traceId).map((s) => s.name)).toEqual([]);
  const ids = new Set([rootSpanId, ...spans.map((s) => s.spanContext().spanId)]);
  expect(spans.filter((s) => !ids.has(parentSpanId(s) ?? '')).map((s) => s.name)).toEqual([]);
  // each process span is the child of a producer span of the run (the one that sent its message)
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const processSpans = spans.filter((s) => s.kind === SpanKind.CONSUMER && s.name.startsWith('process '));
  expect(processSpans).toHaveLength(processes);
  for (const span of processSpans)
    expect(byId.get(parentSpanId(span) ?? '')?.kind, span.name).toBe(SpanKind.PRODUCER);
}

describe.each(KINDS)('with the %s propagator registered', (kind) => {
  beforeAll(() => usePropagator(kind));

  it.each(ORDERS)(
    'a relay sending fresh messages keeps one trace %s, baggage and all',
    async (dir, order) => {
      usePropagator(kind);
      const { hops, root, traceId } = await chainFromRoot(order(), false, `${kind}-fresh-${dir}`);
      expectCarried(hops, order(), traceId, '01');
      await expectOneTrace(traceId, root.spanContext().spanId, 4);
    },
  );

  it.each(ORDERS)(
    'a relay forwarding the consumed headers keeps one trace %s, no header doubled',
    async (dir, order) => {
      usePropagator(kind);
      const { hops, traceId } = await chainFromRoot(order(), true, `${kind}-forward-${dir}`);
      expectCarried(hops, order(), traceId, '01');
    },
  );

  it.each(ORDERS)(
    'dead-letter copies carry the creation context and link to the failed attempt %s',
    async (dir, order) => {
      usePropagator(kind);
      const { hops, traceId } = await chainFromRoot(order(), deadLetterCopy, `${kind}-dlq-${dir}`);
      expectCarried(hops, order(), traceId, '01');
      for (let i = 1; i < hops.length; i++) {
        const { stage, received } = hops[i] as Hop;
        const lineage = readFailureLineage(received.headers);
        expect(lineage?.failed?.traceId, stage).toBe(traceId);
        // the failed attempt is the previous hop's process span, where the copy was made
        expect(lineage?.failed?.spanId, stage).toBe(hops[i - 1]?.received.log.span_id);
        const failedFields = Object.keys(received.headers).filter((n) => n.startsWith('hoptrace-failed-'));
        expect(failedFields.length, stage).toBeGreaterThan(0);
        expect(
          failedFields.filter((n) => /baggage|uberctx/.test(n)),
          stage,
        ).toEqual([]);
      }
    },
  );
});

describe.each(KINDS)('with the %s propagator and an unsampled parent', (kind) => {
  it.each(ORDERS)(
    'every hop runs in the trace, unsampled, with the baggage, recording nothing %s',
    async (dir, order) => {
      usePropagator(kind);
      const parent = remoteParent(TraceFlags.NONE);
      const traceId = trace.getSpanContext(parent)?.traceId as string;
      const hops = await runChain(
        order(),
        { body: `${kind}-unsampled-${dir}-${Math.random()}` },
        false,
        parent,
      );
      expectCarried(hops, order(), traceId, '00');
      await new Promise((r) => setTimeout(r, 300));
      expect(tracing.spans().map((s) => s.name)).toEqual([]);
    },
  );
});

describe.each(['jaeger', 'ot'] as const)(
  'with the %s propagator and 2,000 entry headers on one message',
  (kind) => {
    // Before hoptrace listed at most 64 header names to the propagator, it added every entry, copying
    // the baggage so far at each (10,000 held the event loop for seconds per read, on the send and
    // the receive side); and @platformatic/kafka's consumer read only the first 64 headers, so the
    // trace fields written after the caller's own were not seen.
    const prefix = kind === 'ot' ? 'ot-baggage-' : 'uberctx-';
    it.each(['kafkajs', 'platformatic', 'amqp'] as const)(
      '%s: the message arrives in its trace, its headers as sent',
      async (name) => {
        usePropagator(kind);
        const headers: Record<string, string> = {};
        for (let i = 0; i < 2000; i++) headers[`${prefix}h${i}`] = `v${i}`;
        const { hops, root, traceId } = await chainFromRoot(
          [stages[name]],
          false,
          `${kind}-many-${name}`,
          headers,
        );
        expect(hops.map((h) => [h.stage, h.received.log.trace_id])).toEqual([[name, traceId]]);
        const received = Object.keys(hops[0]?.received.headers ?? {}).filter((n) => n.startsWith(prefix));
        expect(received.length).toBeGreaterThanOrEqual(2000);
        await expectOneTrace(traceId, root.spanContext().spanId, 1);
      },
      60_000,
    );
  },
);

/** The headers of the dead-letter copy of what a stage received, made by that adapter's helper. */
function deadLetterCopy(received: Received, stage: Stage): Record<string, string> {
  const error = new Error(`failed at ${stage.name}`);
  switch (stage.name) {
    case 'kafkajs':
      return stringHeaders(kafkajsDeadLetter(received.raw as never, error).headers ?? {});
    case 'platformatic': {
      const copy = platformaticDeadLetter(received.raw as never, error);
      const out: Record<string, unknown> = {};
      for (const [k, v] of copy.headers) out[String(k)] = v;
      return stringHeaders(out);
    }
    case 'amqp':
      return stringHeaders(deadLetterOptions(received.raw as never, error).headers);
    case 'bullmq': {
      const opts = deadLetterJobOptions(received.raw as Job, error) as { telemetry?: { metadata?: string } };
      return stringHeaders(JSON.parse(opts.telemetry?.metadata ?? '{}'));
    }
    default:
      throw new Error(`no dead-letter helper for ${stage.name}`);
  }
}
