import type { Attributes } from '@opentelemetry/api';
import type { Instrumentation } from './instrumentation.ts';
import { OperationTemplates, type SpanOperation } from './span-templates.ts';

/** What a wrapper knows about its client, for {@link clientTemplates}. */
export interface ClientAttributes {
  /** The static attributes every span starts with (client id, server address and port, group). */
  attributes(): Attributes;
  /** Changes whenever {@link ClientAttributes.attributes} would return something new. */
  readonly version: number;
}

/**
 * A wrapper's {@link OperationTemplates} over what it knows about its client: families are built
 * with `client.attributes()` and rebuilt when `client.version` changes.
 *
 * @param operations - each operation key's type, name and kind (e.g. `MESSAGING_SPAN_OPERATIONS`).
 */
export function clientTemplates<K extends string>(
  instr: Instrumentation,
  operations: Readonly<Record<K, SpanOperation>>,
  client: ClientAttributes,
): OperationTemplates<K> {
  return new OperationTemplates(
    instr.system,
    operations,
    () => client.attributes(),
    instr.legacyAttributes,
    () => client.version,
  );
}
