import {
  type FirstDeliveries,
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
  /**
   * The greatest offset whose time in queue was recorded, per topic and partition (filled only with
   * metrics on): a message at or below it is one kafkajs delivers again (see {@link recordTimeInQueue}).
   */
  readonly firstDeliveries: FirstDeliveries;
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
    info,
  );
}

/**
 * Records how long a message waited in Kafka (from its timestamp), when metrics are on, the
 * timestamp is plausible (core's `timeInQueueSeconds`) and the message is past every offset of its
 * partition this consumer recorded before: kafkajs delivers a message again after its handler threw
 * (or after a seek back), and a redelivery is not the start of its processing (RabbitMQ's and
 * BullMQ's adapters record a first delivery only too).
 */
export function recordTimeInQueue(
  state: ConsumerState,
  topic: string,
  partition: number,
  offset: unknown,
  timestamp: unknown,
): void {
  const metrics = state.instr.metrics;
  if (!metrics || typeof timestamp !== 'string' || !state.firstDeliveries.isFirst(topic, partition, offset))
    return;
  const waited = timeInQueueSeconds(Number(timestamp));
  if (waited !== undefined)
    metrics.timeInQueue.record(
      waited,
      state.metrics.get('process', topic, state.info.groupId, 'process', state.info),
    );
}
