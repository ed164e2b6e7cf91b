import { captureSnapshot, logFields, restoreSnapshot, type TraceBudget } from '@hoptrace/core';
import { installTestTracing, type TestTracing } from '@hoptrace/test-kit';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { amqpStage, bullmqStage, kafkajsStage, platformaticStage, runChain, type Stage } from './stages.ts';

/** A custom propagator with mixed-case field names (`nonString`: also writes a number). */
function customPropagator(nonString = false): TextMapPropagator {
  return {
    inject(ctx, carrier, setter) {
      const sc = trace.getSpanContext(ctx);
      if (!sc || !trace.isSpanContextValid(sc)) return;
      setter.set(carrier, 'X-Trace-Id', sc.traceId);
      setter.set(carrier, 'X-Span-Id', sc.spanId);
      setter.set(carrier, 'X-Sampled', (nonString ? sc.traceFlags & 1 : String(sc.traceFlags & 1)) as string);
    },
    extract(ctx, carrier, getter) {
      const traceId = getter.get(carrier, 'X-Trace-Id');
      const spanId = getter.get(carrier, 'X-Span-Id');
      const sampled = getter.get(carrier, 'X-Sampled');
      if (typeof traceId !== 'string' || typeof spanId !== 'string') return ctx;
      return trace.setSpanContext(ctx, {
        traceId,
        spanId,
        traceFlags: sampled === '0' ? TraceFlags.NONE : TraceFlags.SAMPLED,
        isRemote: true,
      });
    },
    fields: () => ['X-Trace-Id', 'X-Span-Id', 'X-Sampled'],
  };
}

const PROPAGATORS: Record<string, () => TextMapPropagator> = {
  b3single: () =>
    new CompositePropagator({
      propagators: [
        new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }),
        new W3CBaggagePropagator(),
      ],
    }),
  b3multi: () =>
    new CompositePropagator({
      propagators: [
        new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
        new W3CBaggagePropagator(),
      ],
    }),
  'w3c+b3': () =>
    new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), new B3Propagator()],
    }),
  custom: () => new CompositePropagator({ propagators: [customPropagator(), new W3CBaggagePropagator()] }),
  'custom-nonstring': () =>
    new CompositePropagator({ propagators: [customPropagator(true), new W3CBaggagePropagator()] }),
};

let tracing: TestTracing;
function usePropagator(make: () => TextMapPropagator) {
  propagation.disable();
  propagation.setGlobalPropagator(make());
}

let stages: Record<string, Stage>;
async function makeStages(options: { traceBudget?: TraceBudget } = {}, baggage: string[] = []) {
  return {
    kafkajs: await kafkajsStage(options, baggage),
    platformatic: await platformaticStage(options, baggage),
    amqp: await amqpStage(options, baggage),
    bullmq: await bullmqStage(options, baggage),
  };
}

beforeAll(async () => {
  tracing = installTestTracing();
  stages = await makeStages({}, ['tenant.id', 'odd']);
}, 120_000);
afterAll(async () => {
  for (const s of Object.values(stages)) await s.close();
  await tracing.assertNoOpenSpans(5000);
  await tracing.uninstall();
});
afterEach(() => {
  tracing.reset();
  return usePropagator(PROPAGATORS['w3c+b3'] as () => TextMapPropagator);
});

const forwardOrder = () => [stages.kafkajs, stages.platformatic, stages.amqp, stages.bullmq] as Stage[];
const backwardOrder = () => [stages.bullmq, stages.amqp, stages.platformatic, stages.kafkajs] as Stage[];

describe.each(Object.keys(PROPAGATORS))('with the %s propagator registered', (kind) => {
  it.each([
    ['forward', forwardOrder],
    ['backward', backwardOrder],
  ] as const)('one message keeps one trace %s, caller headers untouched', async (_dir, order) => {
    usePropagator(PROPAGATORS[kind] as () => TextMapPropagator);
    const root = trace.getTracer('xb').startSpan('root');
    const ctx = propagation.setBaggage(
      trace.setSpan(ROOT_CONTEXT, root),
      propagation.createBaggage({
        'tenant.id': { value: 'acme' },
        odd: { value: 'a b,c;d=%25 é' },
        other: { value: 'x' },
      }),
    );
    const callerHeaders = { 'x-app': 'kept' };
    const frozen = Object.freeze({ ...callerHeaders });
    const body = `${kind}-${_dir}-${Math.random()}`;
    // BullMQ: metadata the caller stores is theirs (no context added), so no caller headers there
    const first = order()[0]?.name === 'bullmq' ? { body } : { body, headers: frozen };
    const hops = await runChain(order(), first, false, ctx).finally(() => root.end());
    expect(frozen).toEqual(callerHeaders);
    const traceId = root.spanContext().traceId;
    expect(hops.map((h) => [h.stage, h.received.log.trace_id])).toEqual(
      order().map((s) => [s.name, traceId]),
    );
    for (const hop of hops) {
      expect(hop.received.log['tenant.id'], hop.stage).toBe('acme');
      expect(hop.received.log.odd, hop.stage).toBe('a b,c;d=%25 é');
      expect(hop.received.log.other, hop.stage).toBeUndefined();
    }
    // every span of the run is in the root's trace
    await new Promise((r) => setTimeout(r, 300));
    const spans = tracing.spans().filter((s) => s.name !== 'root');
    const foreign = spans.filter(
      (s) =>
        s.spanContext().traceId !== traceId &&
        String(s.attributes['messaging.destination.name'] ?? '').startsWith('xb-'),
    );
    expect(foreign.map((s) => s.name)).toEqual([]);
  });
});

describe.each(['w3c', 'w3c+b3', 'b3+w3c'])(
  'a hop budget of 2 across a relay that forwards consumed headers (%s)',
  (kind) => {
    let budgeted: Record<string, Stage>;
    beforeAll(async () => {
      budgeted = await makeStages({ traceBudget: { maxHops: 2 } });
    }, 120_000);
    afterAll(async () => {
      for (const s of Object.values(budgeted)) await s.close();
    });

    it('restarts the trace at the third hop and keeps the new one after', async () => {
      const w3c = () => [new W3CTraceContextPropagator(), new W3CBaggagePropagator()];
      usePropagator(
        {
          w3c: () => new CompositePropagator({ propagators: w3c() }),
          'w3c+b3': () => new CompositePropagator({ propagators: [...w3c(), new B3Propagator()] }),
          'b3+w3c': () => new CompositePropagator({ propagators: [new B3Propagator(), ...w3c()] }),
        }[kind] as () => TextMapPropagator,
      );
      const root = trace.getTracer('xb').startSpan('root');
      const order = [budgeted.kafkajs, budgeted.amqp, budgeted.bullmq, budgeted.platformatic] as Stage[];
      const hops = await runChain(
        order,
        { body: `budget-${kind}-${Math.random()}` },
        true,
        trace.setSpan(ROOT_CONTEXT, root),
      ).finally(() => root.end());
      const t0 = root.spanContext().traceId;
      const ids = hops.map((h) => h.received.log.trace_id);

      expect(ids.slice(0, 2)).toEqual([t0, t0]);
      expect(ids[2]).not.toBe(t0);
      expect(ids[3]).toBe(ids[2]);
    });
  },
);

describe('context snapshots as JSON in a message body', () => {
  it.each([
    ['sampled, with baggage', TraceFlags.SAMPLED, true],
    ['unsampled, with baggage', TraceFlags.NONE, true],
    ['unsampled, no baggage', TraceFlags.NONE, false],
  ] as const)('%s: restored in each adapter handler as sent', async (_name, flags, withBaggage) => {
    usePropagator(PROPAGATORS['w3c+b3'] as () => TextMapPropagator);
    let ctx = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: flags,
    });
    if (withBaggage) {
      ctx = propagation.setBaggage(
        ctx,
        propagation.createBaggage({ 'tenant.id': { value: 'acme' }, odd: { value: '%41 é,;=' } }),
      );
    }
    const snapshot = captureSnapshot(ctx);
    for (const stage of [stages.bullmq, stages.kafkajs, stages.platformatic, stages.amqp] as Stage[]) {
      const body = JSON.stringify({ n: Math.random(), snapshot });
      const [hop] = await runChain([stage], { body }, false, ROOT_CONTEXT);
      const restored = restoreSnapshot(JSON.parse(hop?.received.body ?? '{}').snapshot, ROOT_CONTEXT);
      expect(captureSnapshot(restored), stage.name).toEqual(snapshot);
      // log fields under the restored context name the snapshot's trace
      expect(
        context.with(restored, () => logFields()),
        stage.name,
      ).toMatchObject({
        trace_id: '0af7651916cd43dd8448eb211c80319c',
        trace_flags: flags === TraceFlags.SAMPLED ? '01' : '00',
      });
    }
  });
});
