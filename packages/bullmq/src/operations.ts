import { MESSAGING_SPAN_OPERATIONS, type SpanOperation } from '@hoptrace/core/adapter';
import { SpanKind } from '@opentelemetry/api';

/**
 * The span operations of the BullMQ wrappers (the first word of each span name), for core's
 * `OperationTemplates`. `sendClient` is the send of a call whose jobs carry their own contexts
 * (create spans, or the caller's own context): a CLIENT span, as the conventions ask;
 * `scheduleClient` is likewise the schedule of a template carrying the caller's own context.
 */
export const BULLMQ_OPERATIONS = {
  ...MESSAGING_SPAN_OPERATIONS,
  schedule: { type: 'create', name: 'schedule' },
  scheduleClient: { type: 'create', name: 'schedule', kind: SpanKind.CLIENT },
} as const satisfies Record<string, SpanOperation>;

/** Which BullMQ operation a span template is for. */
export type BullmqOperation = keyof typeof BULLMQ_OPERATIONS;
