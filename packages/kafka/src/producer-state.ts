import {
  type Instrumentation,
  type KafkaOperation,
  type MetricAttributeCache,
  type OperationMetric,
  type OperationTemplates,
  operationMetric,
  type PendingSends,
} from '@hoptrace/core/adapter';
import type { ClientInfo } from './client-info.ts';
import type { KafkaSettings } from './options.ts';

/** Everything a traced producer (and its transactions) shares. */
export interface ProducerState {
  readonly instr: Instrumentation;
  readonly settings: KafkaSettings;
  /** What is known about the producer (client id, server), and the spans waiting to learn it. */
  readonly info: ClientInfo;
  readonly templates: OperationTemplates<KafkaOperation>;
  readonly metrics: MetricAttributeCache;
  /** Sends of open transactions, ended as `unknown` when the producer disconnects first. */
  readonly transactions: Set<PendingSends>;
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
    undefined,
    state.info,
  );
}
