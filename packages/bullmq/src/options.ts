import type { ConsumerTracingOptions, TracingOptions } from '@hoptrace/core';
import {
  assertKnownOptions,
  assertOptionalBoolean,
  assertOptionalFunction,
  assertOptionalInteger,
  assertOptionalString,
  CONSUMER_TRACING_OPTION_KEYS,
  MAX_TIMEOUT_MS,
  type OptionKeys,
  TRACING_OPTION_KEYS,
} from '@hoptrace/core/adapter';
import type { Span } from '@opentelemetry/api';

/**
 * Options for {@link traceQueue}. Shared fields come from `@hoptrace/core`'s `TracingOptions`
 * (`tracerProvider`, `meterProvider`, `legacyAttributes`, `unsampled`, `classifyError`).
 */
export interface QueueTracingOptions extends TracingOptions {
  /**
   * For `addBulk`, also start a `create {queue}` span per job, whose context that job carries (the
   * `send` span then links to each). Default `false`: one `send` span whose context every job carries.
   * @example { createSpans: true }
   */
  createSpans?: boolean | undefined;
}

/** Options for {@link traceFlowProducer}. */
export interface FlowTracingOptions extends TracingOptions {
  /**
   * Also start a `create {queue}` span per node of the tree, whose context that node carries; each
   * parent node then lists its children's contexts so its processing links to them. Default
   * `false`: one `send` span whose context every node carries.
   * @example { createSpans: true }
   */
  createSpans?: boolean | undefined;
}

/**
 * Options for {@link traceProcessor}. Besides core's consumer options (`relation` default
 * `'parent'`, `traceBudget`, `baggageAttributes`, providers, `legacyAttributes`, `classifyError`):
 */
export interface ProcessorTracingOptions extends ConsumerTracingOptions {
  /**
   * The queue name for span names and `messaging.destination.name` when the job does not say
   * (BullMQ's `Job` and the sandbox's job both carry `queueName`, so this is rarely needed).
   * Default: `job.queueName`.
   * @example { queueName: 'emails' }
   */
  queueName?: string | undefined;
  /**
   * Called with the process span and the job before the processor runs, e.g. to add attributes.
   * Guarded: a throwing hook is reported to `diag` and ignored. Not called for a job whose parent
   * is unsampled and gets no span. Default: none.
   * @example { onProcess: (span, job) => span.setAttribute('tenant', job.data.tenant) }
   */
  onProcess?: ProcessHook | undefined;
  /**
   * End an attempt's span (status ERROR, `error.type` = `process_timeout`) if its processor has not
   * returned after this many milliseconds. The processor keeps running and its outcome still reaches
   * BullMQ unchanged; only the span stops waiting for it. At most 2147483647 (about 24.8 days, the
   * longest Node.js timers wait). Default: none (the span ends when the processor returns, or when
   * the worker gives up on the attempt: lock lost, stalled, closed).
   * @example { processTimeoutMs: 300_000 }
   */
  processTimeoutMs?: number | undefined;
  /**
   * The `maxStartedAttempts` of the worker running this processor (BullMQ 6), for a sandboxed
   * processor: its child process or thread cannot read the worker's options, so without this a failed
   * attempt of a job started that many times (which BullMQ will not retry) is not marked final. A
   * processor a worker calls in-process reads the worker's own option, which wins. Set it to the
   * worker's value; leave it out on BullMQ 5.x (no such option). Default: none.
   * @example { maxStartedAttempts: 3 }
   */
  maxStartedAttempts?: number | undefined;
}

/** A guarded hook run before each attempt, see {@link ProcessorTracingOptions.onProcess}. */
export type ProcessHook = (span: Span, job: unknown) => void;

/** The option names {@link traceQueue} and {@link traceFlowProducer} take (others throw at wrap time). */
export const PRODUCER_OPTION_KEYS = {
  ...TRACING_OPTION_KEYS,
  createSpans: true,
} as const satisfies OptionKeys<QueueTracingOptions> & OptionKeys<FlowTracingOptions>;

/** The option names {@link traceProcessor} takes (others throw at wrap time). */
export const PROCESSOR_OPTION_KEYS = {
  ...CONSUMER_TRACING_OPTION_KEYS,
  queueName: true,
  onProcess: true,
  processTimeoutMs: true,
  maxStartedAttempts: true,
} as const satisfies OptionKeys<ProcessorTracingOptions>;

/**
 * Validates the BullMQ-specific producer option fields and refuses unknown ones; core validates the
 * shared ones.
 */
export function assertProducerOptions(
  options: QueueTracingOptions | FlowTracingOptions,
  api: 'traceQueue' | 'traceFlowProducer',
): void {
  assertKnownOptions(api, options, PRODUCER_OPTION_KEYS);
  assertOptionalBoolean('createSpans', options.createSpans);
}

/**
 * Validates the BullMQ-specific processor option fields and refuses unknown ones; core validates the
 * shared ones.
 */
export function assertProcessorOptions(options: ProcessorTracingOptions): void {
  assertKnownOptions('traceProcessor', options, PROCESSOR_OPTION_KEYS);
  assertOptionalString('queueName', options.queueName);
  assertOptionalFunction('onProcess', options.onProcess);
  assertOptionalInteger('processTimeoutMs', options.processTimeoutMs, 1, MAX_TIMEOUT_MS);
  // BullMQ takes 0 as no limit, as it does for the worker option.
  assertOptionalInteger('maxStartedAttempts', options.maxStartedAttempts, 0, Number.MAX_SAFE_INTEGER);
}
