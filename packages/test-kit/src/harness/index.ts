export { CONTAINER_IMAGES } from './containers.ts';
export {
  DEFAULT_KAFKA_VERSION,
  ensureKafkaJars,
  kafkaVersion,
  type LocalKafka,
  startLocalKafka,
} from './kafka-local.ts';
export {
  BROKER_ENV,
  type ResolvedBrokers,
  requestedKinds,
  resolveAllBrokers,
  resolveBroker,
} from './resolve.ts';
export {
  type BrokerEndpoints,
  type BrokerKind,
  type BrokerSource,
  BrokerUnavailableError,
  type ResolvedBroker,
} from './types.ts';
