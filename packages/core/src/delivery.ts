import { type Attributes, type Context, ROOT_CONTEXT } from '@opentelemetry/api';
import type { HeaderCarrier } from './carrier.ts';
import type { Instrumentation } from './instrumentation.ts';
import { lineageAttributes, lineageLinks, readFailureLineage, withFailureLineage } from './lineage.ts';
import { readMessageContext } from './propagation.ts';
import type { SpanTemplate } from './span-templates.ts';
import { type ConsumerSpan, startConsumerSpan } from './spans.ts';

/** A delivery's process span, its handler context, and the attributes still to set on it. */
export interface DeliverySpan extends ConsumerSpan {
  /**
   * When the span records: a fresh object holding the failure lineage's `hoptrace.failure.*`
   * attributes, for the adapter to add its per-message ones to and set with `setSpanAttributes`
   * (one call, no closure per message). `undefined` when the span does not record: build nothing.
   */
  readonly attributes: Attributes | undefined;
}

/**
 * Starts the process span of one delivered message from its headers: its creation context under
 * the relation policy and hop budget (see `startConsumerSpan`), and, for a dead-letter or retry copy,
 * a link to the failed attempt. The returned context carries the failure lineage, for log fields.
 * Never throws on wire data.
 *
 * @param base - the processing context (`ROOT_CONTEXT` for push consumers).
 * @param destination - `messaging.destination.name` when the template does not carry it.
 */
export function startDeliverySpan(
  instr: Instrumentation,
  template: SpanTemplate,
  headers: HeaderCarrier,
  base: Context = ROOT_CONTEXT,
  destination?: string,
): DeliverySpan {
  const lineage = readFailureLineage(headers);
  const { span, context } = startConsumerSpan(
    instr,
    template,
    readMessageContext(headers),
    base,
    lineageLinks(lineage),
    destination,
  );
  const attributes = span?.isRecording() ? (lineage ? lineageAttributes(lineage) : {}) : undefined;
  return { span, context: withFailureLineage(context, lineage), attributes };
}
