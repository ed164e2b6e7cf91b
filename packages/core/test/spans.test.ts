import { ATTR_HOPTRACE_BUDGET_EXCEEDED, ATTR_HOPTRACE_HOP, extractContext } from '@hoptrace/core';
import {
  createInstrumentation,
  type InstrumentationScope,
  OperationTemplates,
  readMessageContext,
  restartedFrom,
  SpanTemplates,
  startClientSpan,
  startConsumerSpan,
} from '@hoptrace/core/adapter';
import { onlySpan, parentSpanId, useTestTracing } from '@hoptrace/test-kit';
import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

const tracing = useTestTracing();
const SCOPE: InstrumentationScope = { name: 'test', version: '0', system: 'kafka' };
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const headers = (tracestate?: string, flags = '01') => ({
  traceparent: `00-${TRACE_ID}-${SPAN_ID}-${flags}`,
  ...(tracestate ? { tracestate } : {}),
});
const processTemplate = (legacy = false) =>
  new SpanTemplates('kafka', { type: 'process', name: 'process' }, { 'server.address': 'k' }, legacy).get(
    'orders',
  );

describe('SpanTemplates', () => {
  it('names spans "{operation} {destination}" and starts them with the kind and sampler-visible attributes', () => {
    const templates = new SpanTemplates(
      'kafka',
      { type: 'send', name: 'send' },
      { 'server.address': 'k' },
      false,
    );
    const template = templates.get('orders');
    expect(templates.get('orders')).toBe(template);
    expect(template).toEqual({
      name: 'send orders',
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system.name': 'kafka',
        'messaging.operation.name': 'send',
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'orders',
        'server.address': 'k',
      },
    });
  });

  it('leaves the destination out of the name when there is none, and honours a kind override', () => {
    const templates = new SpanTemplates(
      'rabbitmq',
      { type: 'send', name: 'send', kind: SpanKind.CLIENT },
      {},
      false,
    );
    const template = templates.get(undefined, null);
    expect(template.name).toBe('send');
    expect(template.kind).toBe(SpanKind.CLIENT);
    expect(template.attributes['messaging.destination.name']).toBeUndefined();
  });

  it('adds the older names when legacy is on', () => {
    const template = new SpanTemplates('kafka', { type: 'send', name: 'send' }, {}, true).get('t');
    expect(template.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation': 'publish',
    });
  });

  it('is bounded: past capacity, templates are built per call and not kept', () => {
    const templates = new SpanTemplates('kafka', { type: 'send', name: 'send' }, {}, false, 2);
    const a = templates.get('a');
    templates.get('b');
    const c = templates.get('c');
    expect(templates.get('a')).toBe(a);
    expect(templates.get('c')).not.toBe(c);
    expect(templates.get('c')).toEqual(c);
    expect(templates.size).toBe(2);
    for (let i = 0; i < 1000; i++) templates.get(`queue-${i}`);
    expect(templates.size).toBe(2);
  });

  it('keys its cache by the destination as the span name cuts it: a name of any length keeps at most 1,024 characters', () => {
    const templates = new SpanTemplates('bullmq', { type: 'send', name: 'send' }, {}, false);
    const prefix = 'q'.repeat(1024);
    const first = templates.get(`${prefix}${'a'.repeat(100_000)}`);
    const second = templates.get(`${prefix}${'b'.repeat(100_000)}`);
    expect(first.name).toBe(`send ${prefix}`);
    expect(first.attributes['messaging.destination.name']).toBe(prefix);
    // Both cut to the same span name: one template, kept under the cut name, not two 100 KB keys.
    expect(second).toBe(first);
    expect(templates.size).toBe(1);
    expect(templates.get(prefix)).toBe(first);
  });
});

describe('OperationTemplates', () => {
  it('builds each operation family once, and rebuilds every family when the version changes', () => {
    let version = 0;
    let server = 'a';
    const templates = new OperationTemplates(
      'kafka',
      { send: { type: 'send', name: 'send' }, process: { type: 'process', name: 'process' } },
      () => ({ 'server.address': server }),
      false,
      () => version,
    );
    const send = templates.of('send');
    expect(templates.of('send')).toBe(send);
    expect(templates.of('process').get('t').attributes['server.address']).toBe('a');
    server = 'b';
    expect(templates.of('send')).toBe(send);
    version = 1;
    expect(templates.of('send')).not.toBe(send);
    expect(templates.of('process').get('t').attributes['server.address']).toBe('b');
  });
});

describe('startConsumerSpan and the relation policy', () => {
  const process = (
    relation: 'parent' | 'link' | 'root',
    carried: Record<string, string> | undefined = headers(),
    maxHops?: number,
    parentLink?: boolean,
  ) => {
    const instr = createInstrumentation(SCOPE, {
      relation,
      ...(maxHops ? { traceBudget: { maxHops } } : {}),
      ...(parentLink === undefined ? {} : { parentLink }),
    });
    // A consumer created (and its messages delivered) inside some application span: that span
    // must never become the parent of a message's span.
    const startup = trace.getTracer('test').startSpan('app.startup');
    const { span } = context.with(trace.setSpan(ROOT_CONTEXT, startup), () =>
      startConsumerSpan(instr, processTemplate(), readMessageContext(carried)),
    );
    span?.end();
    startup.end();
    return {
      span: onlySpan(tracing.current.spans(), 'process orders'),
      startup: onlySpan(tracing.current.spans(), 'app.startup'),
    };
  };

  it('parent: continues the creation trace, with no link repeating the parent by default', () => {
    const { span } = process('parent');
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(parentSpanId(span)).toBe(SPAN_ID);
    expect(span.links).toEqual([]);
    expect(span.kind).toBe(SpanKind.CONSUMER);
    expect(span.attributes['server.address']).toBe('k');
  });

  it('parent with parentLink true: the same parent, plus a link to it', () => {
    const { span } = process('parent', headers(), undefined, true);
    expect(parentSpanId(span)).toBe(SPAN_ID);
    expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
  });

  it.each(['link', 'root'] as const)(
    '%s: a new trace (never the span active where the consumer was made), linked to the creation context',
    (relation) => {
      const { span, startup } = process(relation);
      expect(span.spanContext().traceId).not.toBe(TRACE_ID);
      expect(span.spanContext().traceId).not.toBe(startup.spanContext().traceId);
      expect(parentSpanId(span)).toBeUndefined();
      expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
    },
  );

  it('link: the processing context hoptrace passes (a batch span) is the parent', () => {
    const instr = createInstrumentation(SCOPE, { relation: 'link' });
    const batch = trace.getTracer('test').startSpan('batch', { root: true });
    const { span } = startConsumerSpan(
      instr,
      processTemplate(),
      readMessageContext(headers()),
      trace.setSpan(ROOT_CONTEXT, batch),
    );
    span?.end();
    batch.end();
    const done = onlySpan(tracing.current.spans(), 'process orders');
    expect(parentSpanId(done)).toBe(batch.spanContext().spanId);
    expect(done.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
  });

  it('starts a new trace with no links when the message carries no context', () => {
    const { span } = process('parent', {});
    expect(parentSpanId(span)).toBeUndefined();
    expect(span.links).toEqual([]);
  });

  it('counts hops in tracestate when a budget is set and passes the count downstream', () => {
    const { span } = process('parent', headers('hoptrace=2,other=v'), 5);
    expect(span.attributes[ATTR_HOPTRACE_HOP]).toBe(3);
    expect(span.spanContext().traceState?.get('hoptrace')).toBe('3');
    expect(span.spanContext().traceState?.get('other')).toBe('v');
    expect(span.spanContext().traceId).toBe(TRACE_ID);
  });

  it('starts a new linked trace once the hop budget is spent', () => {
    const { span } = process('parent', headers('hoptrace=5'), 5);
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(parentSpanId(span)).toBeUndefined();
    expect(span.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
    expect(span.attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED]).toBe(true);
    expect(span.spanContext().traceState?.get('hoptrace')).toBeUndefined();
  });

  it('reads the hop counter strictly: only digits (at most 15) count; any other value is unreadable, counted as absent and overwritten', () => {
    // A counter hoptrace did not write (a peer's, or a corrupted one) must neither spend the budget
    // nor shift it: it is what an absent counter is, and this hop writes 1 over it. Before, the
    // counter was parsed leniently: 1e308 counted as 1, 2.9 as 2, 3abc as 3, 0x4 as 0.
    for (const junk of ['1e308', '2.9', '3abc', '0x4', '-1', 'NaN', '+3', '1_0', '9'.repeat(16), '', ' ']) {
      tracing.current.reset();
      const { span } = process('parent', headers(`hoptrace=${junk},other=v`), 5);
      expect(span.spanContext().traceId, junk).toBe(TRACE_ID);
      expect(span.attributes[ATTR_HOPTRACE_HOP], junk).toBe(1);
      expect(span.spanContext().traceState?.get('hoptrace'), junk).toBe('1');
      expect(span.spanContext().traceState?.get('other'), junk).toBe('v');
    }
    // Digits count, leading zeros too; fifteen of them spend any budget.
    tracing.current.reset();
    expect(process('parent', headers('hoptrace=003'), 5).span.attributes[ATTR_HOPTRACE_HOP]).toBe(4);
    tracing.current.reset();
    const spent = process('parent', headers(`hoptrace=${'9'.repeat(15)}`), 5).span;
    expect(spent.attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED]).toBe(true);
    expect(spent.spanContext().traceId).not.toBe(TRACE_ID);
  });

  it('marks the handler context of a restart, so a relay of the old headers sends the new trace', () => {
    const instr = createInstrumentation(SCOPE, { relation: 'parent', traceBudget: { maxHops: 5 } });
    const restart = startConsumerSpan(instr, processTemplate(), readMessageContext(headers('hoptrace=5')));
    const within = startConsumerSpan(instr, processTemplate(), readMessageContext(headers('hoptrace=1')));
    restart.span?.end();
    within.span?.end();
    expect(restartedFrom(restart.context)).toBe(TRACE_ID);
    expect(restartedFrom(within.context)).toBeUndefined();
  });

  it('counts nothing and writes no tracestate member without a budget, even when a counter came in', () => {
    const { span } = process('parent', headers('hoptrace=4,vendor=x'));
    expect(span.spanContext().traceState?.serialize()).toBe('hoptrace=4,vendor=x');
    expect(span.attributes[ATTR_HOPTRACE_HOP]).toBeUndefined();
  });

  it('copies only allow-listed baggage, dropping oversized values', () => {
    const instr = createInstrumentation(SCOPE, { baggageAttributes: ['tenant.id', 'big'] });
    const bag = propagation.createBaggage({
      'tenant.id': { value: 'acme' },
      secret: { value: 'do-not-copy' },
      big: { value: 'x'.repeat(300) },
    });
    const message = readMessageContext(headers());
    const { span } = startConsumerSpan(instr, processTemplate(), {
      context: propagation.setBaggage(message.context, bag),
      spanContext: message.spanContext,
    });
    span?.end();
    const done = onlySpan(tracing.current.spans(), 'process orders');
    expect(done.attributes['tenant.id']).toBe('acme');
    expect(done.attributes.secret).toBeUndefined();
    expect(done.attributes.big).toBeUndefined();
  });

  it('makes the message baggage current for the handler under every policy', () => {
    for (const relation of ['parent', 'link', 'root'] as const) {
      const instr = createInstrumentation(SCOPE, { relation });
      const carried = { ...headers(), baggage: 'tenant.id=acme' };
      const { span, context: handlerContext } = startConsumerSpan(
        instr,
        processTemplate(),
        readMessageContext(carried),
      );
      span?.end();
      expect(propagation.getBaggage(handlerContext)?.getEntry('tenant.id')?.value).toBe('acme');
      expect(trace.getSpan(handlerContext)).toBe(span);
    }
  });

  it('adds extra links (e.g. to a failed attempt) after the creation link', () => {
    const instr = createInstrumentation(SCOPE, { relation: 'root' });
    const failed = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 };
    const { span } = startConsumerSpan(
      instr,
      processTemplate(),
      readMessageContext(headers()),
      ROOT_CONTEXT,
      [{ context: failed, attributes: { why: 'retry' } }],
    );
    span?.end();
    const done = onlySpan(tracing.current.spans(), 'process orders');
    expect(done.links.map((l) => [l.context.spanId, l.attributes])).toEqual([
      [SPAN_ID, undefined],
      ['b'.repeat(16), { why: 'retry' }],
    ]);
  });
});

describe('startClientSpan', () => {
  it('starts under the active context by default', () => {
    const instr = createInstrumentation(SCOPE);
    const outer = trace.getTracer('test').startSpan('outer');
    const template = new SpanTemplates('kafka', { type: 'send', name: 'send' }, {}, false).get('orders');
    const span = context.with(trace.setSpan(ROOT_CONTEXT, outer), () => startClientSpan(instr, template));
    span?.end();
    outer.end();
    expect(parentSpanId(onlySpan(tracing.current.spans(), 'send orders'))).toBe(outer.spanContext().spanId);
  });

  it('extracts through the W3C propagator only once per message (parse once)', () => {
    const parsed = readMessageContext(headers('vendor=x'));
    expect(parsed.spanContext?.traceId).toBe(TRACE_ID);
    expect(parsed.spanContext?.traceState?.get('vendor')).toBe('x');
    expect(readMessageContext(undefined).spanContext).toBeUndefined();
    expect(readMessageContext({ traceparent: 'garbage' }).spanContext).toBeUndefined();
    expect(trace.getSpanContext(extractContext(headers(), ROOT_CONTEXT))?.spanId).toBe(SPAN_ID);
  });
});
