import {
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_SYSTEM_NAME,
  type Instrumentation,
  MESSAGING_SYSTEM,
  type SpanHandle,
} from '@hoptrace/core';
import type { Attributes } from '@opentelemetry/api';
import type { BatchTracker } from './batch.ts';
import type { ClientInfo } from './client-info.ts';
import type { KafkaSettings } from './options.ts';

/** Everything a traced consumer shares across its handlers. */
export interface ConsumerState {
  readonly instr: Instrumentation;
  readonly settings: KafkaSettings;
  readonly info: ClientInfo;
  /** eachMessage spans whose handler has not settled yet (ended on stop/disconnect). */
  readonly open: Set<SpanHandle>;
  /** eachBatch batches in flight (finished on stop/disconnect). */
  readonly batches: Set<BatchTracker>;
}

/** Attributes of the process metrics: system, operation, destination, consumer group. */
export function processMetricAttributes(state: ConsumerState, topic: string): Attributes {
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM_NAME]: MESSAGING_SYSTEM.kafka,
    [ATTR_MESSAGING_OPERATION_NAME]: 'process',
    [ATTR_MESSAGING_DESTINATION_NAME]: topic,
  };
  if (state.info.groupId !== undefined) attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = state.info.groupId;
  return attributes;
}
