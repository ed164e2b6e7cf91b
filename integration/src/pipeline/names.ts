import { randomUUID } from 'node:crypto';

/** Broker object names for one pipeline instance; a run id keeps concurrent runs apart. */
export interface PipelineNames {
  ordersTopic: string;
  reconciliationTopic: string;
  stockGroup: string;
  reconciliationGroup: string;
  exchange: string;
  deadLetterExchange: string;
  fulfilmentRequests: string;
  deadLetters: string;
  fulfilmentQueue: string;
  reconciliationQueue: string;
  schedulerId: string;
}

/** Names for a run: low-cardinality prefixes plus a short run id. */
export function pipelineNames(runId: string = randomUUID().slice(0, 8)): PipelineNames {
  return {
    ordersTopic: `orders-placed-${runId}`,
    reconciliationTopic: `reconciliation-${runId}`,
    stockGroup: `stock-${runId}`,
    reconciliationGroup: `reconciliation-audit-${runId}`,
    exchange: `orders-${runId}`,
    deadLetterExchange: `orders-dlx-${runId}`,
    fulfilmentRequests: `fulfilment-requests-${runId}`,
    deadLetters: `fulfilment-dead-${runId}`,
    fulfilmentQueue: `fulfilment-${runId}`,
    reconciliationQueue: `reconcile-${runId}`,
    schedulerId: `reconcile-every-${runId}`,
  };
}
