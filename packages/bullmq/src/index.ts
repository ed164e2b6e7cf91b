/**
 * @hoptrace/bullmq: explicit OpenTelemetry tracing for BullMQ queues, workers, flows and job
 * schedulers, with the creation context carried in BullMQ's own `opts.telemetry.metadata`.
 *
 * @packageDocumentation
 */

export {
  ATTR_BULLMQ_FLOW_PARENT,
  ATTR_BULLMQ_JOB_ATTEMPT,
  ATTR_BULLMQ_JOB_ATTEMPTS,
  ATTR_BULLMQ_JOB_DELAY,
  ATTR_BULLMQ_JOB_NAME,
  ATTR_BULLMQ_JOB_PRIORITY,
  ATTR_BULLMQ_SCHEDULER_ID,
  ATTR_BULLMQ_TIME_IN_QUEUE,
  ERROR_LOCK_LOST,
  ERROR_PROCESS_TIMEOUT,
  ERROR_STALLED,
  ERROR_WORKER_CLOSED,
} from './attributes.ts';
export {
  type DeadLetterOptions,
  deadLetterJobOptions,
  type FailedJobLike,
} from './dead-letter.ts';
export { type FlowProducerLike, traceFlowProducer } from './flow.ts';
export type {
  FlowTracingOptions,
  ProcessHook,
  ProcessorTracingOptions,
  QueueTracingOptions,
} from './options.ts';
export { type JobLike, type ProcessorLike, traceProcessor } from './processor.ts';
export { type QueueLike, traceQueue } from './queue.ts';
export { bullmqControlFlow } from './scope.ts';
