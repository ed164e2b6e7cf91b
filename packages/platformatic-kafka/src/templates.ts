import { type Instrumentation, OperationTemplates, type SpanOperation } from '@hoptrace/core/adapter';
import { SpanKind } from '@opentelemetry/api';
import type { ClientInfo } from './client-info.ts';

/** The operations the wrappers start spans for. */
const OPERATIONS = {
  send: { type: 'send', name: 'send' },
  sendClient: { type: 'send', name: 'send', kind: SpanKind.CLIENT },
  process: { type: 'process', name: 'process' },
} as const satisfies Record<string, SpanOperation>;

/** Which operation a template is for. */
export type PlatformaticOperation = keyof typeof OPERATIONS;

/** A wrapper's span templates, rebuilt when its client info learns something. */
export function operationTemplates(
  instr: Instrumentation,
  info: ClientInfo,
): OperationTemplates<PlatformaticOperation> {
  return new OperationTemplates(
    instr.system,
    OPERATIONS,
    () => info.attributes(),
    instr.legacyAttributes,
    () => info.version,
  );
}
