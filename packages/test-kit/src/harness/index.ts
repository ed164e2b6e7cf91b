export { HARNESS_LABEL, OWNER_LABEL } from './container-owner.ts';
export {
  CONTAINER_IMAGES,
  containerImage,
  containerRuntimeUnavailable,
  DEFAULT_CONTAINER_IMAGES,
  IMAGE_ENV,
  isLocalKafkaImage,
} from './containers.ts';
export {
  ensureJava,
  ensureMavenJar,
  JAVA_PACKAGE,
  MAVEN_CENTRAL,
  type MavenJar,
  MIN_JAVA_VERSION,
  mavenJarUrl,
} from './java.ts';
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
  BROKER_ROUTE_ENV,
  type BrokerRoute,
  brokerRoute,
  type ResolutionStep,
  resolutionSteps,
} from './route.ts';
export {
  type BrokerEndpoints,
  type BrokerKind,
  type BrokerSource,
  BrokerUnavailableError,
  type ResolvedBroker,
} from './types.ts';
