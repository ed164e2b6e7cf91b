import {
  ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME,
  createInstrumentation,
  holdTransactionalSend,
  MAX_PENDING_TRANSACTION_SENDS,
  Operation,
  PendingSends,
  settleTransaction,
} from '@hoptrace/core/adapter';
import { useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

const tracing = useTestTracing();
const instr = createInstrumentation({ name: 'test', version: '0', system: 'kafka' }, {});

function send(name: string): Operation {
  return new Operation(instr, trace.getTracer('test').startSpan(name));
}
const outcomes = () =>
  Object.fromEntries(
    tracing.current.spans().map((s) => [s.name, s.attributes[ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME]]),
  );

describe('transactional sends', () => {
  it('wait for the outcome; a committed send ends UNSET, an aborted one ERROR with transaction_aborted', () => {
    const committed = new PendingSends();
    holdTransactionalSend(committed, send('c1'));
    holdTransactionalSend(committed, send('c2'));
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual(['c1', 'c2']);
    settleTransaction(committed, 'committed');
    const aborted = new PendingSends();
    holdTransactionalSend(aborted, send('a1'));
    settleTransaction(aborted, 'aborted');
    expect(tracing.current.openSpans()).toEqual([]);
    expect(outcomes()).toEqual({ c1: 'committed', c2: 'committed', a1: 'aborted' });
    const [a1] = tracing.current.spans().filter((s) => s.name === 'a1');
    expect(a1?.status.code).toBe(SpanStatusCode.ERROR);
    expect(a1?.attributes['error.type']).toBe('transaction_aborted');
    for (const s of tracing.current.spans().filter((s) => s.name !== 'a1'))
      expect(s.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a send that settles after the outcome is known ends with it at once; the first outcome stays', () => {
    const pending = new PendingSends();
    settleTransaction(pending, 'aborted');
    settleTransaction(pending, 'unknown'); // e.g. the producer closes later
    holdTransactionalSend(pending, send('late'));
    expect(tracing.current.openSpans()).toEqual([]);
    expect(outcomes()).toEqual({ late: 'aborted' });
  });

  it(`holds at most ${MAX_PENDING_TRANSACTION_SENDS} sends per transaction: the oldest ends as unknown`, () => {
    const pending = new PendingSends();
    for (let i = 0; i <= MAX_PENDING_TRANSACTION_SENDS; i++) holdTransactionalSend(pending, send(`s${i}`));
    expect(pending.size).toBe(MAX_PENDING_TRANSACTION_SENDS);
    expect(tracing.current.spans().map((s) => s.name)).toEqual(['s0']);
    expect(outcomes()).toEqual({ s0: 'unknown' });
    settleTransaction(pending, 'committed');
    expect(pending.size).toBe(0);
    expect(tracing.current.openSpans()).toEqual([]);
    expect(tracing.current.spans()).toHaveLength(MAX_PENDING_TRANSACTION_SENDS + 1);
  });
});
