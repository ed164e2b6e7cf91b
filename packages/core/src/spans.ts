import {
  type Attributes,
  type Context,
  context as contextApi,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanOptions,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { capValue, MAX_DESTINATION_LENGTH, setSpanAttributes } from './attributes.ts';
import { withBudgetRestart } from './hops.ts';
import type { Instrumentation } from './instrumentation.ts';
import { ATTR_HOPTRACE_BUDGET_EXCEEDED, ATTR_HOPTRACE_HOP } from './names.ts';
import type { MessageContext } from './propagation.ts';
import { consumerStart } from './relation.ts';
import { unsampledParent } from './sampling.ts';
import { ATTR_MESSAGING_DESTINATION_NAME } from './semconv.ts';
import type { SpanTemplate } from './span-templates.ts';

/** Per-span options beyond the template. */
export interface StartOptions {
  /** Links set at start. */
  links?: Link[] | undefined;
  /** Start a new trace (the parent's span is ignored; its baggage is kept). */
  root?: boolean | undefined;
  /** `messaging.destination.name` for this span when the template does not carry it. */
  destination?: string | undefined;
  /** Overrides the template's kind. */
  kind?: SpanOptions['kind'];
}

/** Starts a span from a template under `parent`. The caller ends it (usually through an `Operation`). */
export function startSpanFromTemplate(
  instr: Instrumentation,
  template: SpanTemplate,
  parent: Context,
  options?: StartOptions,
): Span {
  const spanOptions: SpanOptions = { kind: options?.kind ?? template.kind, attributes: template.attributes };
  if (options) {
    if (options.destination !== undefined) {
      spanOptions.attributes = {
        ...template.attributes,
        [ATTR_MESSAGING_DESTINATION_NAME]: capValue(options.destination, MAX_DESTINATION_LENGTH),
      };
    }
    if (options.links !== undefined && options.links.length > 0) spanOptions.links = options.links;
    if (options.root) spanOptions.root = true;
  }
  return instr.tracer.startSpan(template.name, spanOptions, parent);
}

/**
 * Starts a span for an operation the application calls (send, create, schedule, a pull receive, a
 * commit) under `parent` (default: the active context), or returns `undefined` when `parent` is a
 * valid unsampled context and the wrapper's unsampled policy skips such spans; a producer then
 * injects `parent` itself, so the trace id still travels.
 */
export function startClientSpan(
  instr: Instrumentation,
  template: SpanTemplate,
  parent: Context = contextApi.active(),
  options?: StartOptions,
): Span | undefined {
  const unsampled = unsampledParent(parent) !== undefined;
  if (unsampled && instr.unsampled.skip()) return undefined;
  const span = startSpanFromTemplate(instr, template, parent, options);
  if (unsampled) instr.unsampled.learn(span.isRecording());
  return span;
}

/** A consumer-side span (or none, on the unsampled fast path) and the context its handler runs in. */
export interface ConsumerSpan {
  /** The span; `undefined` when the message's parent is unsampled and the policy skips it. */
  readonly span: Span | undefined;
  /** The context to run the handler in: the span's, or the message's own on the fast path. */
  readonly context: Context;
}

/**
 * Starts a receive or process span for one message under the wrapper's relation policy and hop
 * budget, with allow-listed baggage and hop attributes once it records.
 *
 * @param message - the message's parsed creation context (`readMessageContext`).
 * @param base - the processing context: `ROOT_CONTEXT` for push consumers (a context that was active
 * where the consumer was created must never leak in), the batch span's context inside a traced
 * batch, the caller's context for a pull receive.
 * @param extraLinks - links beyond the creation context (e.g. to a failed attempt, flow children).
 */
export function startConsumerSpan(
  instr: Instrumentation,
  template: SpanTemplate,
  message: MessageContext,
  base: Context = ROOT_CONTEXT,
  extraLinks?: Link[],
  destination?: string,
): ConsumerSpan {
  const start = consumerStart(message, instr.relation, instr.traceBudget, base, instr.parentLink);
  // Under the message's own context, its span context was validated when it was read.
  const unsampled = start.root
    ? false
    : start.parent === message.context
      ? message.spanContext !== undefined && (message.spanContext.traceFlags & TraceFlags.SAMPLED) === 0
      : unsampledParent(start.parent) !== undefined;
  if (unsampled && instr.unsampled.skip()) return { span: undefined, context: start.parent };
  const links = extraLinks ? (start.links ? [...start.links, ...extraLinks] : extraLinks) : start.links;
  const span = startSpanFromTemplate(instr, template, start.parent, { links, root: start.root, destination });
  const recording = span.isRecording();
  if (unsampled) instr.unsampled.learn(recording);
  if (recording) {
    let attributes: Attributes | undefined = instr.baggage?.(message.context);
    if (start.hop !== undefined) {
      attributes ??= {};
      attributes[ATTR_HOPTRACE_HOP] = start.hop;
      if (start.budgetExceeded) attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED] = true;
    }
    if (attributes) setSpanAttributes(span, attributes);
  }
  const context = trace.setSpan(start.parent, span);
  const exceeded = start.budgetExceeded ? message.spanContext : undefined;
  return { span, context: exceeded ? withBudgetRestart(context, exceeded.traceId) : context };
}
