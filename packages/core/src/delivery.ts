import { type Attributes, type Context, ROOT_CONTEXT } from '@opentelemetry/api';
import { setSpanAttributes } from './attributes.ts';
import type { HeaderCarrier } from './carrier.ts';
import type { Instrumentation } from './instrumentation.ts';
import { lineageAttributes, lineageLinks, readFailureLineage, withFailureLineage } from './lineage.ts';
import { readMessageContext } from './propagation.ts';
import type { SpanTemplate } from './span-templates.ts';
import { type ConsumerSpan, startConsumerSpan } from './spans.ts';

/**
 * Starts the process span of one delivered message from its headers: its creation context under
 * the relation policy and hop budget (see `startConsumerSpan`), and, for a dead-letter or retry copy,
 * a link to the failed attempt with the `hoptrace.failure.*` attributes. `attributes` (the adapter's
 * per-message ones) are set too once the span records. The returned context carries the failure
 * lineage, for log fields. Never throws on wire data.
 *
 * @param base - the processing context (`ROOT_CONTEXT` for push consumers).
 * @param destination - `messaging.destination.name` when the template does not carry it.
 */
export function startDeliverySpan(
  instr: Instrumentation,
  template: SpanTemplate,
  headers: HeaderCarrier,
  attributes?: (out: Attributes) => void,
  base: Context = ROOT_CONTEXT,
  destination?: string,
): ConsumerSpan {
  const lineage = readFailureLineage(headers);
  const { span, context } = startConsumerSpan(
    instr,
    template,
    readMessageContext(headers),
    base,
    lineageLinks(lineage),
    destination,
  );
  if (span?.isRecording()) {
    const out: Attributes = lineage ? lineageAttributes(lineage) : {};
    attributes?.(out);
    setSpanAttributes(span, out, instr.legacyAttributes);
  }
  return { span, context: withFailureLineage(context, lineage) };
}
