import {
  type Instrumentation,
  MESSAGING_SPAN_OPERATIONS,
  OperationTemplates,
  type SpanOperation,
} from '@hoptrace/core/adapter';
import type { ClientInfo } from './client-info.ts';

/** The operations a Kafka wrapper starts spans for (span name = operation name, then the topic). */
export const KAFKA_OPERATIONS = {
  ...MESSAGING_SPAN_OPERATIONS,
  sendOffsets: { type: 'settle', name: 'send_offsets' },
  commit: { type: 'settle', name: 'commit_transaction' },
  abort: { type: 'settle', name: 'abort_transaction' },
} as const satisfies Record<string, SpanOperation>;

/** Which operation a template is for. */
export type KafkaOperation = keyof typeof KAFKA_OPERATIONS;

/**
 * The span templates of one Kafka wrapper, per operation and topic (core's bounded
 * `OperationTemplates`), rebuilt when `info` learns something new (client id, broker, group).
 */
export function kafkaTemplates(
  instr: Instrumentation,
  info: ClientInfo,
  withGroup: boolean,
): OperationTemplates<KafkaOperation> {
  return new OperationTemplates(
    instr.system,
    KAFKA_OPERATIONS,
    () => info.attributes(withGroup),
    instr.legacyAttributes,
    () => info.version,
  );
}
