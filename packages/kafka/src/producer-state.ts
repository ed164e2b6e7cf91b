import {
  type Instrumentation,
  type MetricAttributeCache,
  type Operation,
  type OperationMetric,
  type OperationTemplates,
  operationMetric,
} from '@hoptrace/core/adapter';
import { ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME, ERROR_TRANSACTION_ABORTED } from './attributes.ts';
import type { KafkaOperation } from './operations.ts';
import type { KafkaSettings } from './options.ts';

/** Most sends of one transaction whose spans wait for its commit or abort; older ones end as `unknown`. */
export const MAX_PENDING_TRANSACTION_SENDS = 1024;

/** Everything a traced producer (and its transactions) shares. */
export interface ProducerState {
  readonly instr: Instrumentation;
  readonly settings: KafkaSettings;
  readonly templates: OperationTemplates<KafkaOperation>;
  readonly metrics: MetricAttributeCache;
  /** Sends of open transactions, ended as `unknown` when the producer disconnects first. */
  readonly transactions: Set<PendingSends>;
}

/** What became of a transaction, as its sends' spans say it. */
export type TransactionOutcome = 'committed' | 'aborted' | 'unknown';

/**
 * The sends of one open transaction, held until it commits or aborts (or the producer disconnects).
 * Once its fate is known (`outcome`), a send that settles later (still in flight at commit or abort)
 * ends with that outcome at once instead of waiting for a settle that already happened.
 */
export class PendingSends extends Set<Operation> {
  outcome: TransactionOutcome | undefined = undefined;
}

/** Records the transaction's fate and ends every send it holds with it. */
export function settleTransaction(pending: PendingSends, outcome: TransactionOutcome): void {
  pending.outcome ??= outcome;
  endPending(pending, outcome);
}

/** Ends the given sends with a transaction outcome (aborted sends end ERROR: not delivered). */
export function endPending(pending: Set<Operation>, outcome: TransactionOutcome): void {
  for (const operation of pending) {
    operation.setAttribute(ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME, outcome);
    if (outcome === 'aborted')
      operation.noteFailureType(ERROR_TRANSACTION_ABORTED, 'transaction aborted: message not delivered');
    operation.end();
  }
  pending.clear();
}

/** The metric of one producer operation, or undefined without metrics. */
export function producerMetric(
  state: ProducerState,
  operationName: string,
  destination: string | undefined,
  count: number,
  operation: OperationMetric['operation'] = 'send',
): OperationMetric | undefined {
  return operationMetric(
    state.instr.metrics !== undefined,
    state.metrics,
    operation,
    operationName,
    destination,
    count,
  );
}
