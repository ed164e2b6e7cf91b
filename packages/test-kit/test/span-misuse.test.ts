import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeSpanMisuse } from '../src/tracing/span-misuse.ts';
import { installTestTracing, type TestTracing } from '../src/tracing/tracing.ts';

// The setup file fails any test during which the SDK complained about span misuse; this shows the
// complaints are indeed collected (each case takes them before its end, so the setup's check passes).
describe('span misuse is caught from the SDK diagnostics', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = installTestTracing();
  });
  afterAll(async () => {
    await tracing.uninstall();
  });

  it('a span ended twice', () => {
    const span = trace.getTracer('t').startSpan('twice');
    span.end();
    span.end();
    expect(takeSpanMisuse().filter((c) => c.includes('only call end() on a span once'))).toHaveLength(1);
  });

  it('writes after the end', () => {
    const span = trace.getTracer('t').startSpan('late');
    span.end();
    span.setAttribute('a', 1);
    span.addEvent('e');
    span.setStatus({ code: 2 });
    expect(takeSpanMisuse().filter((c) => c.includes('on ended Span'))).toHaveLength(3);
  });

  it('an attribute value the SDK drops', () => {
    const span = trace.getTracer('t').startSpan('odd');
    span.setAttribute('bad', {} as unknown as string);
    span.end();
    expect(takeSpanMisuse()).toEqual(['Invalid attribute value set for key: bad']);
  });

  it('correct use leaves nothing', () => {
    const span = trace.getTracer('t').startSpan('fine', { attributes: { a: 'x' } });
    span.setAttribute('b', 2);
    span.end();
    expect(takeSpanMisuse()).toEqual([]);
  });
});
