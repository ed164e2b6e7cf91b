import { installTestTracing, type TestTracing } from '@hoptrace/test-kit';
import {
  type Attributes,
  type HrTime,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderWaterfallHtml } from '../../src/demo/render-html.ts';
import {
  buildSpanTree,
  flattenSpanTree,
  hopOf,
  linksMarker,
  renderTraceTree,
} from '../../src/demo/render-tree.ts';

/** 2025-10-09T08:53:20Z: spans get explicit times so that durations and order are exact. */
const T0_SECONDS = 1_760_000_000;
const at = (ms: number): HrTime => {
  const nanos = BigInt(T0_SECONDS) * 1_000_000_000n + BigInt(Math.round(ms * 1e6));
  return [Number(nanos / 1_000_000_000n), Number(nanos % 1_000_000_000n)];
};

const SCRIPT_NAME = 'reserve <script>alert(1)</script> & "stock"';
const REMOTE_PARENT = 'abcdef0123456789';

interface SpanSpec {
  parent?: Span | undefined;
  kind: SpanKind;
  startMs: number;
  endMs: number;
  attributes?: Attributes;
  links?: Link[];
  error?: string;
  ok?: boolean;
}

function record(tracer: Tracer, name: string, spec: SpanSpec): Span {
  const ctx = spec.parent ? trace.setSpan(ROOT_CONTEXT, spec.parent) : ROOT_CONTEXT;
  const span = tracer.startSpan(
    name,
    {
      kind: spec.kind,
      attributes: spec.attributes ?? {},
      links: spec.links ?? [],
      startTime: at(spec.startMs),
    },
    ctx,
  );
  if (spec.error) {
    span.setAttribute('error.type', spec.error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${spec.error}: job timed out` });
  } else if (spec.ok) {
    span.setStatus({ code: SpanStatusCode.OK });
  }
  span.end(at(spec.endMs));
  return span;
}

const kafka = (destination: string, op: string): Attributes => ({
  'messaging.system.name': 'kafka',
  'messaging.destination.name': destination,
  'messaging.operation.type': op,
});
const rabbitmq = (destination: string, op: string): Attributes => ({
  'messaging.system.name': 'rabbitmq',
  'messaging.destination.name': destination,
  'messaging.operation.type': op,
});
const bullmq = (op: string, attempt?: number): Attributes => ({
  'messaging.system.name': 'bullmq',
  'messaging.destination.name': 'fulfilment',
  'messaging.operation.type': op,
  ...(attempt === undefined ? {} : { 'messaging.bullmq.job.attempts_made': attempt }),
});

/** The order flow of one order across the three brokers, then a second, smaller trace with an orphan. */
function recordOrders(tracer: Tracer): { orderTraceId: string; otherTraceId: string } {
  const root = record(tracer, 'POST /orders', {
    kind: SpanKind.SERVER,
    startMs: 0,
    endMs: 40,
    attributes: { 'http.request.method': 'POST', 'http.route': '/orders', 'tenant.id': 'acme' },
    ok: true,
  });
  const sendKafka = record(tracer, 'send orders', {
    parent: root,
    kind: SpanKind.PRODUCER,
    startMs: 2,
    endMs: 5,
    attributes: kafka('orders', 'send'),
  });
  const processKafka = record(tracer, 'process orders', {
    parent: sendKafka,
    kind: SpanKind.CONSUMER,
    startMs: 8,
    endMs: 20.5,
    attributes: kafka('orders', 'process'),
  });
  record(tracer, SCRIPT_NAME, { parent: processKafka, kind: SpanKind.INTERNAL, startMs: 9, endMs: 11.5 });
  const sendRabbit = record(tracer, 'send orders-exchange:order.reserved', {
    parent: processKafka,
    kind: SpanKind.PRODUCER,
    startMs: 12,
    endMs: 14,
    attributes: rabbitmq('orders-exchange', 'send'),
  });
  const processRabbit = record(tracer, 'process order.reserved', {
    parent: sendRabbit,
    kind: SpanKind.CONSUMER,
    startMs: 16,
    endMs: 26,
    attributes: rabbitmq('order.reserved', 'process'),
  });
  const sendBull = record(tracer, 'send fulfilment', {
    parent: processRabbit,
    kind: SpanKind.PRODUCER,
    startMs: 18,
    endMs: 19,
    attributes: bullmq('send'),
  });
  const failed = record(tracer, 'process fulfilment', {
    parent: sendBull,
    kind: SpanKind.CONSUMER,
    startMs: 22,
    endMs: 30,
    attributes: bullmq('process', 1),
    error: 'TimeoutError',
  });
  record(tracer, 'process fulfilment', {
    parent: sendBull,
    kind: SpanKind.CONSUMER,
    startMs: 35,
    endMs: 45,
    attributes: bullmq('process', 2),
    links: [{ context: failed.spanContext() }],
    ok: true,
  });

  // A consumer whose producer was not recorded here: its parent is a remote span of another service.
  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: 'f'.repeat(32),
    spanId: REMOTE_PARENT,
    traceFlags: 1,
    isRemote: true,
  });
  const orphan = tracer.startSpan(
    'process orders',
    { kind: SpanKind.CONSUMER, attributes: kafka('orders', 'process'), startTime: at(100) },
    remote,
  );
  orphan.end(at(110));
  const sendOther = record(tracer, 'send fulfilment', {
    parent: orphan,
    kind: SpanKind.PRODUCER,
    startMs: 102,
    endMs: 103,
    attributes: bullmq('send'),
  });
  record(tracer, 'process fulfilment', {
    parent: sendOther,
    kind: SpanKind.CONSUMER,
    startMs: 104,
    endMs: 108,
    attributes: bullmq('process', 1),
    ok: true,
  });
  return { orderTraceId: root.spanContext().traceId, otherTraceId: orphan.spanContext().traceId };
}

/** A hand-made span (the SDK cannot make parent cycles or out-of-order input; these tests need both). */
function handMade(
  name: string,
  spanId: string,
  parentSpanId: string | undefined,
  startMs: number,
): ReadableSpan {
  const traceId = '1'.repeat(32);
  return {
    name,
    kind: SpanKind.INTERNAL,
    spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
    ...(parentSpanId ? { parentSpanContext: { traceId, spanId: parentSpanId, traceFlags: 1 } } : {}),
    startTime: at(startMs),
    endTime: at(startMs + 1),
    duration: [0, 1_000_000],
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    links: [],
    events: [],
    ended: true,
    resource: resourceFromAttributes({}),
    instrumentationScope: { name: 'hand-made' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

describe('the demo renderers over a real in-memory SDK', () => {
  let tracing: TestTracing;
  let spans: ReadableSpan[];
  let orderTraceId: string;
  let otherTraceId: string;

  beforeAll(() => {
    tracing = installTestTracing({ propagator: 'w3c' });
    ({ orderTraceId, otherTraceId } = recordOrders(tracing.provider.getTracer('demo-render-test')));
    // Shuffled on purpose: the output must not depend on the order spans finished in.
    spans = [...tracing.spans()].reverse();
  });
  afterAll(() => tracing.uninstall());

  it('recorded two traces and twelve spans', () => {
    expect(orderTraceId).not.toBe(otherTraceId);
    expect(spans).toHaveLength(12);
  });

  describe('renderTraceTree', () => {
    it('prints the order trace as a tree, by start time, with hop, kind, duration and status', () => {
      expect(renderTraceTree(spans, orderTraceId)).toBe(
        [
          `trace ${orderTraceId} · 9 span(s) · 45.0 ms · 1 error(s)`,
          'app       POST /orders                                          SERVER    40.0 ms  OK',
          'kafka     └─ send orders                                        PRODUCER   3.0 ms  unset',
          'kafka        └─ process orders                                  CONSUMER  12.5 ms  unset',
          'app             ├─ reserve <script>alert(1)</script> & "stock"  INTERNAL   2.5 ms  unset',
          'rabbitmq        └─ send orders-exchange:order.reserved          PRODUCER   2.0 ms  unset',
          'rabbitmq           └─ process order.reserved                    CONSUMER  10.0 ms  unset',
          'bullmq                └─ send fulfilment                        PRODUCER   1.0 ms  unset',
          'bullmq                   ├─ process fulfilment                  CONSUMER   8.0 ms  ERROR TimeoutError',
          'bullmq                   └─ process fulfilment                  CONSUMER  10.0 ms  OK  ↪ linked to process fulfilment',
        ].join('\n'),
      );
    });

    it('indents each span one level below its parent', () => {
      const lines = renderTraceTree(spans, orderTraceId).split('\n').slice(1);
      const depths = lines.map((line) => {
        const afterHop = line.slice('rabbitmq  '.length);
        const name = afterHop.search(/[^ │├└─]/);
        return name / 3;
      });
      expect(depths).toEqual([0, 1, 2, 3, 3, 4, 5, 6, 6]);
      const tree = flattenSpanTree(buildSpanTree(spans, orderTraceId));
      expect(tree.map((n) => n.depth)).toEqual(depths);
      expect(tree.map((n) => hopOf(n.span))).toEqual(lines.map((l) => l.split(' ')[0]));
    });

    it('shows a span whose parent was not recorded at top level, marked', () => {
      expect(renderTraceTree(spans, otherTraceId).split('\n')).toEqual([
        `trace ${otherTraceId} · 3 span(s) · 10.0 ms`,
        `kafka     process orders            CONSUMER  10.0 ms  unset  (parent ${REMOTE_PARENT} not recorded)`,
        'bullmq    └─ send fulfilment        PRODUCER   1.0 ms  unset',
        'bullmq       └─ process fulfilment  CONSUMER   4.0 ms  OK',
      ]);
    });

    it('colours only when asked', () => {
      expect(renderTraceTree(spans, orderTraceId)).not.toContain('\u001b[');
      const coloured = renderTraceTree(spans, orderTraceId, { color: true });
      expect(coloured).toContain('\u001b[31m\u001b[1mERROR TimeoutError\u001b[0m');
      expect(coloured).toContain('\u001b[35mkafka   \u001b[0m');
    });

    it('says so for a trace without spans', () => {
      expect(renderTraceTree(spans, '0'.repeat(32))).toBe(`trace ${'0'.repeat(32)}: no spans recorded`);
    });

    it('replaces control characters in span names', () => {
      const evil = handMade('hi\u001b[2Jthere\nnext', 'a'.repeat(16), undefined, 0);
      expect(renderTraceTree([evil], '1'.repeat(32)).split('\n')[1]).toBe(
        'app       hi�[2Jthere�next  INTERNAL  1.0 ms  unset',
      );
    });

    it('shows every span once even when hand-made data has a parent cycle', () => {
      const a = handMade('a', 'a'.repeat(16), 'b'.repeat(16), 1);
      const b = handMade('b', 'b'.repeat(16), 'a'.repeat(16), 2);
      const c = handMade('c', 'c'.repeat(16), 'b'.repeat(16), 3);
      const nodes = flattenSpanTree(buildSpanTree([c, b, a], '1'.repeat(32)));
      expect(nodes.map((n) => [n.span.name, n.depth])).toEqual([
        ['a', 0],
        ['b', 1],
        ['c', 2],
      ]);
    });
  });

  describe('linksMarker', () => {
    const failed = () => spans.find((s) => s.status.code === 2);
    it('names a failure lineage link: dead letter or retry of the failed span, with its code', () => {
      const target = failed();
      if (!target) throw new Error('the fixture has no failed span');
      const context = target.spanContext();
      const lineage = (retryable: boolean) => ({
        context,
        attributes: {
          'hoptrace.failure.error.type': 'POISON_ORDER',
          'hoptrace.failure.retryable': retryable,
        },
      });
      expect(linksMarker([lineage(false)], spans)).toBe('↪ dead letter of process fulfilment (POISON_ORDER)');
      expect(linksMarker([lineage(true)], spans)).toBe('↪ retry of process fulfilment (POISON_ORDER)');
      // A target that was not recorded is named by its id; several links are counted.
      expect(linksMarker([lineage(false)], [])).toBe(
        `↪ dead letter of span ${context.spanId} (POISON_ORDER)`,
      );
      expect(linksMarker([{ context }, { context }], spans)).toBe('↪ linked to 2 span(s)');
      expect(linksMarker([], spans)).toBeUndefined();
    });
  });

  describe('renderWaterfallHtml', () => {
    let html: string;
    beforeAll(() => {
      html = renderWaterfallHtml(spans, { title: 'Orders <demo>', highlightTraceId: otherTraceId });
    });

    const rows = (source: string) =>
      [
        ...source.matchAll(
          /<div class="row [^"]*" data-testid="span-row" data-span-name="([^"]*)" data-hop="([^"]*)" data-status="([^"]*)" data-depth="(\d+)"/g,
        ),
      ].map((m) => ({ name: m[1], hop: m[2], status: m[3], depth: Number(m[4]) }));

    it('is one document with the title escaped', () => {
      expect(html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
      expect(html).toContain('<title>Orders &lt;demo&gt;</title>');
      expect(html.trimEnd().endsWith('</html>')).toBe(true);
    });

    it('has one section per trace, the highlighted one first and expanded', () => {
      const sections = [
        ...html.matchAll(/<details class="trace[^"]*" data-testid="trace" data-trace-id="(\w+)"( open)?>/g),
      ];
      expect(sections.map((m) => [m[1], m[2] === ' open'])).toEqual([
        [otherTraceId, true],
        [orderTraceId, false],
      ]);
    });

    it('has a row per span in tree order, with hop, status and depth', () => {
      expect(rows(html)).toEqual([
        { name: 'process orders', hop: 'kafka', status: 'unset', depth: 0 },
        { name: 'send fulfilment', hop: 'bullmq', status: 'unset', depth: 1 },
        { name: 'process fulfilment', hop: 'bullmq', status: 'OK', depth: 2 },
        { name: 'POST /orders', hop: 'app', status: 'OK', depth: 0 },
        { name: 'send orders', hop: 'kafka', status: 'unset', depth: 1 },
        { name: 'process orders', hop: 'kafka', status: 'unset', depth: 2 },
        {
          name: 'reserve &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;stock&quot;',
          hop: 'app',
          status: 'unset',
          depth: 3,
        },
        { name: 'send orders-exchange:order.reserved', hop: 'rabbitmq', status: 'unset', depth: 3 },
        { name: 'process order.reserved', hop: 'rabbitmq', status: 'unset', depth: 4 },
        { name: 'send fulfilment', hop: 'bullmq', status: 'unset', depth: 5 },
        { name: 'process fulfilment', hop: 'bullmq', status: 'ERROR', depth: 6 },
        { name: 'process fulfilment', hop: 'bullmq', status: 'OK', depth: 6 },
      ]);
    });

    it('escapes every span name and never lets user data open a tag', () => {
      for (const span of spans) {
        const escaped = span.name
          .replace(/&/g, '&amp;')
          .replace(/</g, '&lt;')
          .replace(/>/g, '&gt;')
          .replace(/"/g, '&quot;');
        expect(html).toContain(`<span class="name">${escaped}</span>`);
      }
      expect(html).not.toContain('<script');
      expect(html).not.toContain('alert(1)</script>');
    });

    it('marks the failed attempt: red bar class, ERROR badge and error.type', () => {
      const errorRow = html.split('\n').find((line) => line.includes('data-status="ERROR"'));
      expect(errorRow).toBeDefined();
      expect(errorRow).toContain('class="row status-error"');
      expect(errorRow).toContain('<span class="badge error" data-testid="error-badge">ERROR</span>');
      expect(errorRow).toContain('<span class="error-type">TimeoutError</span>');
      expect(html).toContain('.status-error .bar{background:#dc2626');
      expect(html.match(/data-testid="error-badge"/g)).toHaveLength(1);
    });

    it('places bars relative to the trace start and labels durations', () => {
      const errorRow = html.split('\n').find((line) => line.includes('data-status="ERROR"')) ?? '';
      // 22 ms into a 45 ms trace, 8 ms long.
      expect(errorRow).toContain('style="left:48.889%;width:17.778%"');
      expect(errorRow).toContain('>8.0 ms <span class="error-type">TimeoutError</span></span>');
      expect(html).toContain(
        '<span class="links" data-testid="links-note">↪ linked to process fulfilment</span>',
      );
    });

    it('is self-contained: no scripts, links, imports or remote URLs', () => {
      expect(html).not.toMatch(/https?:\/\//);
      expect(html).not.toMatch(/<link|<img|<iframe|@import|url\(|\ssrc=|\shref=/i);
      expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    });

    it('highlights the earliest trace when none is named, and renders an empty page without spans', () => {
      const plain = renderWaterfallHtml(spans, { title: 't' });
      expect(plain.indexOf(`data-trace-id="${orderTraceId}" open`)).toBeGreaterThan(0);
      expect(rows(plain)[0]).toMatchObject({ name: 'POST /orders', depth: 0 });
      expect(renderWaterfallHtml([], { title: 'none' })).toContain('No spans were recorded.');
    });
  });
});
