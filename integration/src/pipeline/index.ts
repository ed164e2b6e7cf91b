export { KAFKA_CLIENTS, type KafkaClientKind } from './kafka-clients.ts';
export { type LogLine, memoryLogger } from './log-sink.ts';
export { type PipelineNames, pipelineNames } from './names.ts';
export {
  type Order,
  type OrderOutcome,
  type Pipeline,
  type PipelineOptions,
  startPipeline,
} from './pipeline.ts';
