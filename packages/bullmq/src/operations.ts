import type { SpanOperation } from '@hoptrace/core/adapter';
import { SpanKind } from '@opentelemetry/api';

/**
 * The span operations of the BullMQ wrappers (the first word of each span name), for core's
 * `OperationTemplates`. `sendClient` is the send of a call whose jobs carry their own contexts
 * (create spans, or the caller's own context): a CLIENT span, as the conventions ask.
 */
export const BULLMQ_OPERATIONS = {
  send: { type: 'send', name: 'send' },
  sendClient: { type: 'send', name: 'send', kind: SpanKind.CLIENT },
  create: { type: 'create', name: 'create' },
  schedule: { type: 'create', name: 'schedule' },
  process: { type: 'process', name: 'process' },
} as const satisfies Record<string, SpanOperation>;

/** Which BullMQ operation a span template is for. */
export type BullmqOperation = keyof typeof BULLMQ_OPERATIONS;
