import type { ConsumerTracingOptions, TracingOptions } from '@hoptrace/core';
import { assertOptionalFunction } from '@hoptrace/core';
import type { Span } from '@opentelemetry/api';

/**
 * Options for {@link traceQueue}. Shared fields come from `@hoptrace/core`'s `TracingOptions`
 * (`tracerProvider`, `meterProvider`, `legacyAttributes`, `captureBodySize`).
 */
export interface QueueTracingOptions extends TracingOptions {}

/** Options for {@link traceFlowProducer}; the same fields as {@link QueueTracingOptions}. */
export interface FlowTracingOptions extends TracingOptions {}

/**
 * Options for {@link traceProcessor}. Besides core's consumer options (`relation` default
 * `'parent'`, `traceBudget`, `baggageAttributes`, providers, `legacyAttributes`):
 */
export interface ProcessorTracingOptions extends ConsumerTracingOptions {
  /**
   * The queue name for span names and `messaging.destination.name` when the job does not say
   * (BullMQ's `Job` and the sandbox's job both carry `queueName`, so this is rarely needed).
   * Default: `job.queueName`.
   * @example { queueName: 'emails' }
   */
  queueName?: string;
  /**
   * Called with the process span and the job before the processor runs, e.g. to add attributes.
   * Guarded: a throwing hook is reported to `diag` and ignored. Default: none.
   * @example { onProcess: (span, job) => span.setAttribute('tenant', job.data.tenant) }
   */
  onProcess?: ProcessHook;
}

/** A guarded hook run before each attempt, see {@link ProcessorTracingOptions.onProcess}. */
export type ProcessHook = (span: Span, job: unknown) => void;

/** Validates the BullMQ-specific option fields; core validates the shared ones. */
export function assertProcessorOptions(options: ProcessorTracingOptions): void {
  if (options.queueName !== undefined && typeof options.queueName !== 'string') {
    throw new TypeError(`Expected \`queueName\` to be a string, got ${String(options.queueName)}`);
  }
  assertOptionalFunction('onProcess', options.onProcess);
}
