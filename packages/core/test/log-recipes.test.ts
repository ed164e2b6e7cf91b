import { Writable } from 'node:stream';
import { createLogFields, extractContext, logFields } from '@hoptrace/core';
import { useTestTracing } from '@hoptrace/test-kit';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import winston from 'winston';

const tracing = useTestTracing();

/** A winston logger writing JSON lines into `lines`, with the README's recipe as its format. */
function winstonLogger(fields: () => object) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  // The recipe from packages/core/README.md.
  const traceFormat = winston.format((info) => Object.assign(info, fields()));
  const logger = winston.createLogger({
    format: winston.format.combine(traceFormat(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}

describe('the winston recipe (real winston)', () => {
  it('puts the active span ids on every line written inside the span, and nothing outside', async () => {
    const { logger, lines } = winstonLogger(() => logFields());
    const span = trace.getTracer('t').startSpan('work');
    context.with(trace.setSpan(context.active(), span), () => logger.info('inside'));
    span.end();
    logger.info('outside');
    await new Promise((r) => setImmediate(r));
    const done = tracing.current.spans()[0];
    expect(lines.map((l) => [l.message, l.trace_id, l.span_id, l.trace_flags])).toEqual([
      ['inside', done?.spanContext().traceId, done?.spanContext().spanId, '01'],
      ['outside', undefined, undefined, undefined],
    ]);
  });

  it('with createLogFields, carries business codes from allow-listed baggage', async () => {
    const { logger, lines } = winstonLogger(createLogFields({ baggage: ['tenant.id'] }));
    const parent = extractContext(
      { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, baggage: 'tenant.id=acme,other=x' },
      ROOT_CONTEXT,
    );
    context.with(parent, () => logger.warn('tenant line'));
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatchObject({ message: 'tenant line', trace_id: '1'.repeat(32), 'tenant.id': 'acme' });
    expect(lines[0]?.other).toBeUndefined();
  });
});
