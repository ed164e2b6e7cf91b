import { MESSAGING_SPAN_OPERATIONS, type SpanOperation } from '@hoptrace/core/adapter';

/** The operations a Kafka wrapper starts spans for (span name = operation name, then the topic). */
export const KAFKA_OPERATIONS = {
  ...MESSAGING_SPAN_OPERATIONS,
  sendOffsets: { type: 'settle', name: 'send_offsets' },
  commit: { type: 'settle', name: 'commit_transaction' },
  abort: { type: 'settle', name: 'abort_transaction' },
} as const satisfies Record<string, SpanOperation>;

/** Which operation a template is for. */
export type KafkaOperation = keyof typeof KAFKA_OPERATIONS;
