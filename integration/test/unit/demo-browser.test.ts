import { existsSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderWaterfallHtml } from '../../src/demo/render-html.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../.artifacts/demo/', import.meta.url));
const HTML_PATH = join(ARTIFACTS, 'waterfall.html');
const PNG_PATH = join(ARTIFACTS, 'waterfall.png');
const SCRIPT_NAME = 'reserve <script>alert(1)</script> stock';

const T0_SECONDS = 1_760_000_000;
const at = (ms: number): HrTime => {
  const nanos = BigInt(T0_SECONDS) * 1_000_000_000n + BigInt(Math.round(ms * 1e6));
  return [Number(nanos / 1_000_000_000n), Number(nanos % 1_000_000_000n)];
};

function record(
  tracer: Tracer,
  name: string,
  spec: {
    parent?: Span;
    kind: SpanKind;
    startMs: number;
    endMs: number;
    system?: 'kafka' | 'rabbitmq' | 'bullmq';
    links?: Link[];
    error?: string;
    attributes?: Attributes;
  },
): Span {
  const ctx = spec.parent ? trace.setSpan(ROOT_CONTEXT, spec.parent) : ROOT_CONTEXT;
  const attributes: Attributes = {
    ...(spec.system ? { 'messaging.system.name': spec.system } : {}),
    ...spec.attributes,
  };
  const span = tracer.startSpan(
    name,
    { kind: spec.kind, attributes, links: spec.links ?? [], startTime: at(spec.startMs) },
    ctx,
  );
  if (spec.error) {
    span.setAttribute('error.type', spec.error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'stock service timed out' });
  }
  span.end(at(spec.endMs));
  return span;
}

/**
 * One order through the pipeline, starting at `t` ms. `fail` makes the first BullMQ attempt fail and a
 * retry (linked to it) succeed. `scale` stretches the broker hops so the orders differ.
 */
function recordOrder(tracer: Tracer, t: number, order: number, fail: boolean, scale = 1): string {
  const s = (ms: number) => t + ms * scale;
  const end = fail ? 58 : 34;
  const root = record(tracer, 'POST /orders', {
    kind: SpanKind.SERVER,
    startMs: s(0),
    endMs: s(6),
    attributes: { 'http.request.method': 'POST', 'http.route': '/orders', 'order.id': order },
  });
  const send = record(tracer, 'send orders', {
    parent: root,
    kind: SpanKind.PRODUCER,
    startMs: s(1),
    endMs: s(4),
    system: 'kafka',
  });
  const consume = record(tracer, 'process orders', {
    parent: send,
    kind: SpanKind.CONSUMER,
    startMs: s(7),
    endMs: s(17),
    system: 'kafka',
  });
  record(tracer, SCRIPT_NAME, { parent: consume, kind: SpanKind.INTERNAL, startMs: s(8), endMs: s(12) });
  const publish = record(tracer, 'send orders-exchange:order.reserved', {
    parent: consume,
    kind: SpanKind.PRODUCER,
    startMs: s(12.5),
    endMs: s(15),
    system: 'rabbitmq',
  });
  const deliver = record(tracer, 'process order.reserved', {
    parent: publish,
    kind: SpanKind.CONSUMER,
    startMs: s(18),
    endMs: s(26),
    system: 'rabbitmq',
  });
  const enqueue = record(tracer, 'send fulfilment', {
    parent: deliver,
    kind: SpanKind.PRODUCER,
    startMs: s(20),
    endMs: s(23),
    system: 'bullmq',
  });
  if (fail) {
    const failed = record(tracer, 'process fulfilment', {
      parent: enqueue,
      kind: SpanKind.CONSUMER,
      startMs: s(25),
      endMs: s(36),
      system: 'bullmq',
      error: 'TimeoutError',
    });
    record(tracer, 'process fulfilment', {
      parent: enqueue,
      kind: SpanKind.CONSUMER,
      startMs: s(44),
      endMs: s(end),
      system: 'bullmq',
      links: [{ context: failed.spanContext() }],
    });
  } else {
    record(tracer, 'process fulfilment', {
      parent: enqueue,
      kind: SpanKind.CONSUMER,
      startMs: s(25),
      endMs: s(end),
      system: 'bullmq',
    });
  }
  return root.spanContext().traceId;
}

/** The computed background colour of an element as [r, g, b]. */
async function rgbOf(page: Page, selector: string): Promise<number[]> {
  const color = await page.locator(selector).evaluate(
    (el) =>
      // The root tsconfig has no DOM lib; this callback runs in the page, where getComputedStyle exists.
      (
        globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }
      ).getComputedStyle(el).backgroundColor,
  );
  const match = /^rgba?\((\d+), (\d+), (\d+)/.exec(color);
  if (!match) throw new Error(`unexpected colour ${color} for ${selector}`);
  return match.slice(1, 4).map(Number);
}

describe('the HTML waterfall in a real headless Chromium', () => {
  let tracing: TestTracing;
  let highlighted: string;
  let browser: Browser | undefined;
  let browserContext: BrowserContext | undefined;
  let page: Page;
  const requests: string[] = [];
  const OPEN = 'details[open] [data-testid="span-row"]';

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: this test drives Debian's Chromium. Install it with: apt-get install -y chromium`,
      );
    }
    tracing = installTestTracing({ propagator: 'w3c' });
    const tracer = tracing.provider.getTracer('demo-browser-test');
    const orderIds: string[] = [];
    for (let i = 0; i < 8; i++) {
      orderIds.push(recordOrder(tracer, i * 120, 1001 + i, i === 2 || i === 5, 1 + (i % 3) * 0.2));
    }
    highlighted = orderIds[2] ?? '';
    const html = renderWaterfallHtml(tracing.spans(), {
      title: 'hoptrace demo · 8 orders across Kafka, RabbitMQ and BullMQ',
      highlightTraceId: highlighted,
    });
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(HTML_PATH, html);

    // launch() starts Chromium with a fresh temporary profile of its own and removes it on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    browserContext = await browser.newContext({
      viewport: { width: 1280, height: 720 },
      deviceScaleFactor: 2,
    });
    page = await browserContext.newPage();
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(pathToFileURL(HTML_PATH).href, { waitUntil: 'load' });
  }, 60_000);

  afterAll(async () => {
    await browserContext?.close();
    await browser?.close();
    await tracing?.uninstall();
  });

  it('loads nothing but the file itself', () => {
    expect(requests).toEqual([pathToFileURL(HTML_PATH).href]);
  });

  it('shows the highlighted order first and expanded, the other seven collapsed', async () => {
    const traces = page.locator('[data-testid="trace"]');
    expect(await traces.count()).toBe(8);
    expect(await traces.first().getAttribute('data-trace-id')).toBe(highlighted);
    expect(await page.locator('details[open][data-testid="trace"]').count()).toBe(1);
    expect(await page.locator(OPEN).count()).toBe(9);
    // Rows of collapsed traces are in the page but not shown.
    expect(await page.locator('[data-testid="span-row"]').count()).toBe(6 * 8 + 2 * 9);
    expect(await page.locator('details:not([open]) [data-testid="span-row"]').first().isVisible()).toBe(
      false,
    );
  });

  it('shows a visible row for every hop, with the span names as text', async () => {
    for (const hop of ['app', 'kafka', 'rabbitmq', 'bullmq']) {
      expect(await page.locator(`${OPEN}[data-hop="${hop}"]`).first().isVisible(), hop).toBe(true);
    }
    expect(await page.locator(`${OPEN} .name`).allInnerTexts()).toEqual([
      'POST /orders',
      'send orders',
      'process orders',
      SCRIPT_NAME,
      'send orders-exchange:order.reserved',
      'process order.reserved',
      'send fulfilment',
      'process fulfilment',
      'process fulfilment',
    ]);
    expect(await page.locator(`${OPEN}[data-hop="rabbitmq"] .name`).allInnerTexts()).toEqual([
      'send orders-exchange:order.reserved',
      'process order.reserved',
    ]);
    expect(await page.locator('[data-testid="legend"]').innerText()).toMatch(
      /application\s+Kafka\s+RabbitMQ\s+BullMQ\s+error/,
    );
  });

  it('marks the failed attempt as an error: ERROR badge, error.type and a red bar', async () => {
    const errorRow = page.locator(`${OPEN}[data-status="ERROR"]`);
    expect(await errorRow.count()).toBe(1);
    expect(await errorRow.isVisible()).toBe(true);
    expect(await errorRow.getAttribute('data-span-name')).toBe('process fulfilment');
    expect(await errorRow.locator('[data-testid="error-badge"]').innerText()).toBe('ERROR');
    expect(await errorRow.innerText()).toContain('TimeoutError');
    const [r = 0, g = 0, b = 0] = await rgbOf(page, `${OPEN}[data-status="ERROR"] [data-testid="span-bar"]`);
    expect(r).toBeGreaterThan(180);
    expect(g).toBeLessThan(90);
    expect(b).toBeLessThan(90);
    // The retry that succeeded keeps BullMQ's teal, and shows its link to the failed attempt.
    const retry = `${OPEN}[data-status="unset"][data-span-name="process fulfilment"]`;
    expect(await rgbOf(page, `${retry} [data-testid="span-bar"]`)).toEqual([15, 157, 138]);
    expect(await page.locator(`${retry} [data-testid="links-note"]`).innerText()).toBe(
      '↪ linked to process fulfilment',
    );
  });

  it('places the bars by time: the failed attempt starts 25 of the 58 ms in', async () => {
    const row = page.locator(`${OPEN}[data-status="ERROR"]`);
    const track = await row.locator('.track').boundingBox();
    const bar = await row.locator('[data-testid="span-bar"]').boundingBox();
    if (!track || !bar) throw new Error('the error row has no layout');
    expect((bar.x - track.x) / track.width).toBeCloseTo(25 / 58, 2);
    expect(bar.width / track.width).toBeCloseTo(11 / 58, 2);
  });

  it('keeps a screenshot of the page', async () => {
    await page.screenshot({ path: PNG_PATH, fullPage: true });
    expect((await stat(PNG_PATH)).size).toBeGreaterThan(20_000);
  });
});
