import type { Instrumentation } from './instrumentation.ts';
import { type MetricAttributeCache, type MetricServer, operationMetric } from './metric-attributes.ts';
import { Operation } from './operation.ts';
import { MESSAGING_SPAN_OPERATIONS, type OperationTemplates, type SpanOperation } from './span-templates.ts';
import { startClientSpan } from './spans.ts';
import { isThenable } from './wrap.ts';

/** The operations a Kafka wrapper (any client) starts spans for: the conventions' plus transactions. */
export const KAFKA_OPERATIONS = {
  ...MESSAGING_SPAN_OPERATIONS,
  sendOffsets: { type: 'settle', name: 'send_offsets' },
  commit: { type: 'settle', name: 'commit_transaction' },
  abort: { type: 'settle', name: 'abort_transaction' },
} as const satisfies Record<string, SpanOperation>;

/** Which operation a Kafka span template is for. */
export type KafkaOperation = keyof typeof KAFKA_OPERATIONS;

/**
 * On a send span inside a transaction: `committed` or `aborted` once the transaction ends (an
 * aborted message is never delivered to read-committed consumers), `unknown` when the producer
 * disconnected first, the commit or abort failed, or the transaction was cancelled.
 */
export const ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME = 'hoptrace.kafka.transaction.outcome';
/** `error.type` of a send span whose transaction was aborted. */
export const ERROR_TRANSACTION_ABORTED = 'transaction_aborted';
/** Most sends of one transaction whose spans wait for its commit or abort; older ones end as `unknown`. */
export const MAX_PENDING_TRANSACTION_SENDS = 1024;

/** What became of a transaction, as its sends' spans say it. */
export type TransactionOutcome = 'committed' | 'aborted' | 'unknown';

/**
 * The sends of one open transaction, held until it commits or aborts (or the producer disconnects).
 * Once its fate is known (`outcome`), a send that settles later (still in flight at commit or abort)
 * ends with that outcome at once instead of waiting for a settle that already happened.
 */
export class PendingSends extends Set<Operation> {
  /** The transaction's fate, once known. */
  outcome: TransactionOutcome | undefined = undefined;
}

/** Records the transaction's fate and ends every send it holds with it. */
export function settleTransaction(pending: PendingSends, outcome: TransactionOutcome): void {
  pending.outcome ??= outcome;
  for (const operation of pending) endWithOutcome(operation, outcome);
  pending.clear();
}

/**
 * A transactional send the broker accepted: its span waits for the transaction's outcome (or gets it
 * at once when the transaction already ended while the send was in flight). At most
 * {@link MAX_PENDING_TRANSACTION_SENDS} wait per transaction; the oldest then ends as `unknown`.
 * A send that failed is not held: end it with its error.
 */
export function holdTransactionalSend(pending: PendingSends, operation: Operation): void {
  if (pending.outcome !== undefined) {
    endWithOutcome(operation, pending.outcome);
    return;
  }
  if (pending.size >= MAX_PENDING_TRANSACTION_SENDS) {
    const oldest = pending.values().next().value as Operation;
    pending.delete(oldest);
    endWithOutcome(oldest, 'unknown');
  }
  pending.add(operation);
}

/**
 * Runs a promise-style transactional send: `call`'s outcome is recorded (`onValue` sees its value),
 * a failed send ends with its error, an accepted one waits for the transaction's outcome (see
 * {@link holdTransactionalSend}). The caller gets what `call` gives, or throws, unchanged. Build the
 * operation with `metricAtOutcome`, so the send's duration is the send's, not the transaction's.
 */
export function runTransactionalSend<T>(
  pending: PendingSends,
  operation: Operation,
  call: () => T,
  onValue?: (value: Awaited<T>) => void,
): T {
  let sent: T;
  try {
    sent = operation.run(call, onValue, false);
  } catch (error) {
    // Thrown synchronously: recorded by run(), ended here (it never joins the transaction).
    operation.end();
    throw error;
  }
  if (!isThenable(sent)) {
    holdTransactionalSend(pending, operation);
    return sent;
  }
  return (sent as PromiseLike<Awaited<T>>).then(
    (value) => {
      holdTransactionalSend(pending, operation);
      return value;
    },
    (error: unknown) => {
      operation.end();
      throw error;
    },
  ) as T;
}

/**
 * Starts the `commit_transaction` or `abort_transaction` span of a transaction whose sends `pending`
 * holds (one of `open`, the producer's open transactions), and returns what to call once the commit
 * or abort settled: it ends the span (with the error when `failed`) and the held sends with the
 * outcome, `unknown` when the call failed (the transaction's fate is then unknown to us), and
 * forgets the transaction. Call it exactly once. `server` gives the metric `server.*` (see `MetricServer`).
 */
export function startTransactionEnd(
  instr: Instrumentation,
  templates: OperationTemplates<KafkaOperation>,
  metrics: MetricAttributeCache,
  how: 'commit' | 'abort',
  pending: PendingSends,
  open: Set<PendingSends>,
  server?: MetricServer,
): (failed: boolean, error?: unknown) => void {
  const span = startClientSpan(instr, templates.of(how).get(undefined));
  const operation = new Operation(
    instr,
    span,
    operationMetric(
      instr.metrics !== undefined,
      metrics,
      'settle',
      how === 'commit' ? 'commit_transaction' : 'abort_transaction',
      undefined,
      0,
      undefined,
      server,
    ),
  );
  return (failed, error) => {
    if (failed) operation.fail(error);
    else operation.end();
    settleTransaction(pending, failed ? 'unknown' : how === 'commit' ? 'committed' : 'aborted');
    open.delete(pending);
  };
}

/** The producer closed or disconnected: every send still waiting for an outcome ends as `unknown`. */
export function settleAllTransactions(open: Set<PendingSends>): void {
  for (const pending of open) settleTransaction(pending, 'unknown');
  open.clear();
}

/** Ends a send with its transaction's outcome (an aborted send ends ERROR: not delivered). */
function endWithOutcome(operation: Operation, outcome: TransactionOutcome): void {
  operation.setAttribute(ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME, outcome);
  if (outcome === 'aborted')
    operation.noteFailureType(ERROR_TRANSACTION_ABORTED, 'transaction aborted: message not delivered');
  operation.end();
}
