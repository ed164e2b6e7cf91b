import { MESSAGING_SPAN_OPERATIONS, type SpanOperation } from '@hoptrace/core/adapter';

/**
 * The span operations of the BullMQ wrappers (the first word of each span name), for core's
 * `OperationTemplates`. `sendClient` is the send of a call whose jobs carry their own contexts
 * (create spans, or the caller's own context): a CLIENT span, as the conventions ask.
 */
export const BULLMQ_OPERATIONS = {
  ...MESSAGING_SPAN_OPERATIONS,
  schedule: { type: 'create', name: 'schedule' },
} as const satisfies Record<string, SpanOperation>;

/** Which BullMQ operation a span template is for. */
export type BullmqOperation = keyof typeof BULLMQ_OPERATIONS;
