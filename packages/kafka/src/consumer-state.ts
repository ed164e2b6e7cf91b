import {
  type Instrumentation,
  type KafkaOperation,
  type MetricAttributeCache,
  type Operation,
  type OperationMetric,
  type OperationTemplates,
  operationMetric,
  timeInQueueSeconds,
} from '@hoptrace/core/adapter';
import type { ClientInfo } from './client-info.ts';
import type { KafkaSettings } from './options.ts';

/** A batch in flight, as the consumer sees it: something to finish when the consumer stops. */
export interface OpenBatch {
  /** Ends every span of the batch still open; `resolved` says the rest counts as processed. */
  finish(resolved: boolean): void;
}

/** Everything a traced consumer shares across its handlers. */
export interface ConsumerState {
  readonly instr: Instrumentation;
  readonly settings: KafkaSettings;
  readonly info: ClientInfo;
  readonly templates: OperationTemplates<KafkaOperation>;
  readonly metrics: MetricAttributeCache;
  /** eachMessage operations whose handler has not settled yet (ended on stop/disconnect). */
  readonly open: Set<Operation>;
  /** eachBatch batches in flight (finished on stop/disconnect). */
  readonly batches: Set<OpenBatch>;
}

/** The process metric of one topic (with the consumer group once known), or undefined without metrics. */
export function processMetric(
  state: ConsumerState,
  topic: string,
  count: number,
): OperationMetric | undefined {
  const { instr, metrics, info } = state;
  return operationMetric(
    instr.metrics !== undefined,
    metrics,
    'process',
    'process',
    topic,
    count,
    info.groupId,
  );
}

/**
 * Records how long a message waited in Kafka (from its timestamp), when metrics are on and the
 * timestamp is plausible (core's `timeInQueueSeconds`).
 */
export function recordTimeInQueue(state: ConsumerState, topic: string, timestamp: unknown): void {
  const metrics = state.instr.metrics;
  if (!metrics || typeof timestamp !== 'string') return;
  const waited = timeInQueueSeconds(Number(timestamp));
  if (waited !== undefined)
    metrics.timeInQueue.record(waited, state.metrics.get('process', topic, state.info.groupId));
}
