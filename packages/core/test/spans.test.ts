import {
  ATTR_HOPTRACE_BUDGET_EXCEEDED,
  ATTR_HOPTRACE_HOP,
  createInstrumentation,
  errorTypeOf,
  extractContext,
  runInSpan,
  SpanHandle,
  startConsumerSpan,
  startMessagingSpan,
} from '@hoptrace/core';
import { onlySpan, parentSpanId, useTestTracing } from '@hoptrace/test-kit';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

const tracing = useTestTracing();
const tracer = () => trace.getTracer('test');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const creation = (tracestate?: string) =>
  extractContext(
    { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, ...(tracestate ? { tracestate } : {}) },
    ROOT_CONTEXT,
  );

describe('startMessagingSpan', () => {
  it('names the span "{operation} {destination}" and sets kind and start attributes', () => {
    startMessagingSpan(tracer(), {
      system: 'kafka',
      operationType: 'send',
      operationName: 'send',
      destination: 'orders',
    }).end();
    const span = onlySpan(tracing.current.spans(), 'send orders');
    expect(span.kind).toBe(SpanKind.PRODUCER);
    expect(span.attributes).toEqual({
      'messaging.system.name': 'kafka',
      'messaging.operation.name': 'send',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'orders',
    });
  });

  it.each([
    ['create', SpanKind.PRODUCER],
    ['receive', SpanKind.CLIENT],
    ['process', SpanKind.CONSUMER],
    ['settle', SpanKind.CLIENT],
  ] as const)('gives %s spans the kind the conventions say', (type, kind) => {
    startMessagingSpan(tracer(), { system: 'x', operationType: type, operationName: type }).end();
    expect(onlySpan(tracing.current.spans(), type).kind).toBe(kind);
  });

  it('leaves a high-cardinality destination out of the name but keeps the attribute', () => {
    startMessagingSpan(tracer(), {
      system: 'rabbitmq',
      operationType: 'process',
      operationName: 'process',
      destination: 'amq.gen-123',
      nameDestination: undefined,
    }).end();
    const span = onlySpan(tracing.current.spans(), 'process');
    expect(span.attributes['messaging.destination.name']).toBe('amq.gen-123');
  });

  it('also emits the older names when legacyAttributes is on', () => {
    startMessagingSpan(tracer(), {
      system: 'kafka',
      operationType: 'send',
      operationName: 'send',
      destination: 'orders',
      attributes: { 'messaging.destination.partition.id': '3', 'kafka.message.key': 'k' },
      legacyAttributes: true,
    }).end();
    const span = onlySpan(tracing.current.spans(), 'send orders');
    expect(span.attributes).toMatchObject({
      'messaging.system.name': 'kafka',
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.operation': 'publish',
      'messaging.destination.partition.id': '3',
      'messaging.kafka.destination.partition': 3,
      'kafka.message.key': 'k',
      'messaging.kafka.message.key': 'k',
    });
  });
});

describe('runInSpan', () => {
  it('runs a sync handler with the span active and ends it once', () => {
    const span = tracer().startSpan('work');
    const seen = runInSpan(span, () => trace.getActiveSpan());
    expect(seen).toBe(span);
    const done = onlySpan(tracing.current.spans(), 'work');
    expect(done.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('records a sync throw and rethrows the same error', () => {
    const error = new TypeError('bad');
    expect(() =>
      runInSpan(tracer().startSpan('work'), () => {
        throw error;
      }),
    ).toThrow(error);
    const done = onlySpan(tracing.current.spans(), 'work');
    expect(done.status).toEqual({ code: SpanStatusCode.ERROR, message: 'bad' });
    expect(done.attributes['error.type']).toBe('TypeError');
    expect(done.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('records a rejection, rethrows the same error, and keeps the span active across awaits', async () => {
    const error = Object.assign(new Error('nope'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    const span = tracer().startSpan('work');
    let active: unknown;
    await expect(
      runInSpan(span, async () => {
        await new Promise((r) => setTimeout(r, 5));
        active = trace.getActiveSpan();
        throw error;
      }),
    ).rejects.toBe(error);
    expect(active).toBe(span);
    const done = onlySpan(tracing.current.spans(), 'work');
    expect(done.attributes['error.type']).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(done.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('with end: false records a failure but leaves the end to the caller', async () => {
    const handle = new SpanHandle(tracer().startSpan('later'));
    await expect(runInSpan(handle, () => Promise.reject(new Error('x')), { end: false })).rejects.toThrow(
      'x',
    );
    expect(tracing.current.spans()).toHaveLength(0);
    expect(handle.end()).toBe(true);
    expect(onlySpan(tracing.current.spans(), 'later').status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('SpanHandle', () => {
  it('ends exactly once whichever path comes first', () => {
    const handle = new SpanHandle(tracer().startSpan('once'));
    expect(handle.fail(new Error('first'))).toBe(true);
    expect(handle.end()).toBe(false);
    expect(handle.fail(new Error('second'))).toBe(false);
    const done = onlySpan(tracing.current.spans(), 'once');
    expect(done.status.message).toBe('first');
    expect(done.events).toHaveLength(1);
  });
});

describe('errorTypeOf', () => {
  it.each([
    [Object.assign(new Error('x'), { type: 'REQUEST_TIMED_OUT' }), 'REQUEST_TIMED_OUT'],
    [Object.assign(new Error('x'), { code: 'ECONNRESET' }), 'ECONNRESET'],
    [new RangeError('x'), 'RangeError'],
    [
      Object.assign(new (class KafkaJSNumberOfRetriesExceeded extends Error {})('x'), {
        cause: Object.assign(new Error('inner'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' }),
      }),
      'UNKNOWN_TOPIC_OR_PARTITION',
    ],
    [new (class KafkaJSNumberOfRetriesExceeded extends Error {})('x'), 'KafkaJSNumberOfRetriesExceeded'],
    [new Error('plain'), 'Error'],
    ['a string', '_OTHER'],
    [undefined, '_OTHER'],
  ])('maps %s to %s', (error, expected) => {
    expect(errorTypeOf(error)).toBe(expected);
  });
});

describe('startConsumerSpan and the relation policy', () => {
  const process = (
    relation: 'parent' | 'link' | 'root',
    ctx = creation(),
    maxHops?: number,
    parentLink?: boolean,
  ) => {
    const instr = createInstrumentation('test', '0', {
      relation,
      ...(maxHops ? { traceBudget: { maxHops } } : {}),
      ...(parentLink === undefined ? {} : { parentLink }),
    });
    const outer = tracer().startSpan('outer');
    const { span } = context.with(trace.setSpan(ROOT_CONTEXT, outer), () =>
      startConsumerSpan(instr, ctx, {
        system: 'kafka',
        operationType: 'process',
        operationName: 'process',
        destination: 'orders',
      }),
    );
    span.end();
    outer.end();
    return {
      span: onlySpan(tracing.current.spans(), 'process orders'),
      outer: onlySpan(tracing.current.spans(), 'outer'),
    };
  };

  it('parent: continues the creation trace and links to the creation context', () => {
    const { span } = process('parent');
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(parentSpanId(span)).toBe(SPAN_ID);
    expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
    expect(span.kind).toBe(SpanKind.CONSUMER);
  });

  it('parent with parentLink false: the same parent, no link', () => {
    const { span } = process('parent', creation(), undefined, false);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(parentSpanId(span)).toBe(SPAN_ID);
    expect(span.links).toEqual([]);
  });

  it('parent with parentLink false and a hop budget: counts hops, still no link', () => {
    const { span } = process('parent', creation('hoptrace=1'), 5, false);
    expect(parentSpanId(span)).toBe(SPAN_ID);
    expect(span.attributes[ATTR_HOPTRACE_HOP]).toBe(2);
    expect(span.links).toEqual([]);
  });

  it.each(['link', 'root'] as const)(
    '%s with parentLink false still links (it has no other tie)',
    (relation) => {
      const { span } = process(relation, creation(), undefined, false);
      expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
    },
  );

  it('parentLink false keeps the link when the hop budget forces a new trace', () => {
    const { span } = process('parent', creation('hoptrace=5'), 5, false);
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
  });

  it('link: parents under the active span and links to the creation context', () => {
    const { span, outer } = process('link');
    expect(span.spanContext().traceId).toBe(outer.spanContext().traceId);
    expect(parentSpanId(span)).toBe(outer.spanContext().spanId);
    expect(span.links.map((l) => l.context.traceId)).toEqual([TRACE_ID]);
  });

  it('root: starts a new trace linked to the creation context', () => {
    const { span, outer } = process('root');
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(span.spanContext().traceId).not.toBe(outer.spanContext().traceId);
    expect(parentSpanId(span)).toBeUndefined();
    expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
  });

  it('starts a new trace with no links when the message carries no context', () => {
    const { span } = process('parent', ROOT_CONTEXT);
    expect(parentSpanId(span)).toBeUndefined();
    expect(span.links).toEqual([]);
  });

  it('counts hops in tracestate and passes the count downstream', () => {
    const { span } = process('parent', creation('hoptrace=2,other=v'), 5);
    expect(span.attributes[ATTR_HOPTRACE_HOP]).toBe(3);
    expect(span.spanContext().traceState?.get('hoptrace')).toBe('3');
    expect(span.spanContext().traceState?.get('other')).toBe('v');
    expect(span.spanContext().traceId).toBe(TRACE_ID);
  });

  it('starts a new linked trace once the hop budget is spent', () => {
    const { span } = process('parent', creation('hoptrace=5'), 5);
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(parentSpanId(span)).toBeUndefined();
    expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
    expect(span.attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED]).toBe(true);
    expect(span.spanContext().traceState?.get('hoptrace')).toBeUndefined();
  });

  it('does not touch tracestate when no budget is set and no counter came in', () => {
    const { span } = process('parent', creation('vendor=x'));
    expect(span.spanContext().traceState?.serialize()).toBe('vendor=x');
    expect(span.attributes[ATTR_HOPTRACE_HOP]).toBeUndefined();
  });

  it('copies only allow-listed baggage, dropping oversized values', () => {
    const instr = createInstrumentation('test', '0', { baggageAttributes: ['tenant.id', 'big'] });
    const bag = propagation.createBaggage({
      'tenant.id': { value: 'acme' },
      secret: { value: 'do-not-copy' },
      big: { value: 'x'.repeat(300) },
    });
    const { span } = startConsumerSpan(instr, propagation.setBaggage(creation(), bag), {
      system: 'kafka',
      operationType: 'process',
      operationName: 'process',
      destination: 'orders',
    });
    span.end();
    const done = onlySpan(tracing.current.spans(), 'process orders');
    expect(done.attributes['tenant.id']).toBe('acme');
    expect(done.attributes.secret).toBeUndefined();
    expect(done.attributes.big).toBeUndefined();
  });

  it('makes the message baggage current for the handler under every policy', () => {
    for (const relation of ['parent', 'link', 'root'] as const) {
      const instr = createInstrumentation('test', '0', { relation });
      const bag = propagation.createBaggage({ 'tenant.id': { value: 'acme' } });
      const { span, context } = startConsumerSpan(instr, propagation.setBaggage(creation(), bag), {
        system: 'kafka',
        operationType: 'process',
        operationName: 'process',
      });
      span.end();
      expect(propagation.getBaggage(context)?.getEntry('tenant.id')?.value).toBe('acme');
      expect(trace.getSpan(context)).toBe(span);
    }
  });
});
