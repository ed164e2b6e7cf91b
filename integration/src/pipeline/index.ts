export { KAFKA_CLIENTS, type KafkaClientKind } from './kafka-clients.ts';
export { type LogLine, memoryLogger } from './log-sink.ts';
export { type PipelineNames, pipelineNames } from './names.ts';
export {
  classifyOrderError,
  type Order,
  type OrderOutcome,
  type Pipeline,
  type PipelineOptions,
  PoisonOrderError,
  startPipeline,
} from './pipeline.ts';
