import type { ConsumerTracingOptions, TracingOptions } from '@hoptrace/core';
import {
  assertOptionalBoolean,
  assertOptionalInteger,
  assertOptionalOneOf,
  assertOptionalString,
  CONSUMER_TRACING_OPTION_KEYS,
  describeValue,
  isHostName,
  type OptionKeys,
  TRACING_OPTION_KEYS,
} from '@hoptrace/core/adapter';

/** What every Kafka wrapper takes on top of core's {@link TracingOptions}. */
export interface KafkaClientOptions {
  /**
   * Record `kafka.message.key` (cut to 256 characters). Keys often hold personal data or ids, so
   * they are left out unless you opt in. Buffer keys are recorded only when they are valid UTF-8;
   * `null` keys never. Default `false`.
   * @example { captureKeys: true }
   */
  captureKeys?: boolean | undefined;
  /**
   * `messaging.client.id`. Default: the client id kafkajs reports in its first network request
   * event (the `clientId` of your `new Kafka({...})`), so usually you do not set it.
   * @example { clientId: 'billing-api' }
   */
  clientId?: string | undefined;
  /**
   * `server.address` and `server.port` as `host:port` (the first broker of your client config).
   * Default: the broker kafkajs sent its first request to (a seed broker).
   * @example { broker: 'kafka-1.internal:9092' }
   */
  broker?: string | undefined;
}

/** Options of {@link traceProducer}. */
export interface KafkaProducerOptions extends TracingOptions, KafkaClientOptions {
  /**
   * For calls that send more than one message, also start a `create` span per message and inject
   * its context into that message (the `send` span then links to each). Default `false`: one `send`
   * span per call, whose context every message of the call carries.
   * @example { createSpans: true }
   */
  createSpans?: boolean | undefined;
}

/** How `eachBatch` is traced; see {@link KafkaConsumerOptions.batchSpans}. */
export type BatchSpans = 'message' | 'batch';

/** Options of {@link traceConsumer}. */
export interface KafkaConsumerOptions extends ConsumerTracingOptions, KafkaClientOptions {
  /**
   * `messaging.consumer.group.name`. Default: the group id kafkajs reports when the consumer joins
   * its group (the `consumer.group_join` event), which happens before the first message.
   * @example { groupId: 'billing' }
   */
  groupId?: string | undefined;
  /**
   * The most links a batch `process` span gets (one per message's creation context, first come).
   * The number actually added is recorded as `hoptrace.batch.link_count`. Default `128`.
   * @example { maxBatchLinks: 1000 }
   */
  maxBatchLinks?: number | undefined;
  /**
   * How `eachBatch` is traced. `'message'` (default): a batch span plus one `process` span per
   * message, each ending when its offset is resolved. `'batch'`: one `process` span per batch with
   * a link per message (capped by `maxBatchLinks`), and a per-message span only where the handler
   * asks for one with `withMessageContext` (the cheapest way to trace hot batch consumers).
   * @example { batchSpans: 'batch' }
   */
  batchSpans?: BatchSpans | undefined;
}

/** Options of {@link traceKafka}: everything producers and consumers take. */
export interface KafkaOptions extends KafkaProducerOptions, Omit<KafkaConsumerOptions, 'groupId'> {}

const CLIENT_OPTION_KEYS = {
  captureKeys: true,
  clientId: true,
  broker: true,
} as const satisfies OptionKeys<KafkaClientOptions>;

/** The option names {@link traceProducer} takes (others throw at wrap time). */
export const PRODUCER_OPTION_KEYS = {
  ...TRACING_OPTION_KEYS,
  ...CLIENT_OPTION_KEYS,
  createSpans: true,
} as const satisfies OptionKeys<KafkaProducerOptions>;

/** The option names {@link traceConsumer} takes (others throw at wrap time). */
export const CONSUMER_OPTION_KEYS = {
  ...CONSUMER_TRACING_OPTION_KEYS,
  ...CLIENT_OPTION_KEYS,
  groupId: true,
  maxBatchLinks: true,
  batchSpans: true,
} as const satisfies OptionKeys<KafkaConsumerOptions>;

/** The option names {@link traceKafka} takes (others throw at wrap time). */
export const KAFKA_OPTION_KEYS = {
  ...PRODUCER_OPTION_KEYS,
  ...CONSUMER_TRACING_OPTION_KEYS,
  maxBatchLinks: true,
  batchSpans: true,
} as const satisfies OptionKeys<KafkaOptions>;

/** Default for {@link KafkaConsumerOptions.maxBatchLinks}. */
export const DEFAULT_MAX_BATCH_LINKS = 128;

/** Settings resolved once at wrap time. */
export interface KafkaSettings {
  readonly captureKeys: boolean;
  readonly createSpans: boolean;
  readonly maxBatchLinks: number;
  readonly batchSpans: BatchSpans;
  readonly clientId: string | undefined;
  readonly groupId: string | undefined;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
}

/**
 * Validates the Kafka-specific options and resolves their defaults. Throws a TypeError naming the
 * option and the value received.
 */
export function resolveKafkaSettings(options: KafkaConsumerOptions & KafkaProducerOptions): KafkaSettings {
  assertOptionalBoolean('captureKeys', options.captureKeys);
  assertOptionalBoolean('createSpans', options.createSpans);
  assertOptionalInteger('maxBatchLinks', options.maxBatchLinks, 0);
  assertOptionalOneOf('batchSpans', options.batchSpans, ['message', 'batch']);
  assertOptionalString('clientId', options.clientId);
  assertOptionalString('groupId', options.groupId);
  assertOptionalString('broker', options.broker);
  const server = options.broker === undefined ? undefined : parseBroker(options.broker);
  if (options.broker !== undefined && server === undefined) {
    throw new TypeError(`Expected \`broker\` to be "host:port", got ${describeValue(options.broker)}`);
  }
  return {
    captureKeys: options.captureKeys ?? false,
    createSpans: options.createSpans ?? false,
    maxBatchLinks: options.maxBatchLinks ?? DEFAULT_MAX_BATCH_LINKS,
    batchSpans: options.batchSpans ?? 'message',
    clientId: options.clientId,
    groupId: options.groupId,
    serverAddress: server?.address,
    serverPort: server?.port,
  };
}

/**
 * Splits `host:port` (IPv6 in brackets allowed); undefined when it does not parse, or when the host
 * is not one (a scheme or credentials: see `isHostName`).
 */
export function parseBroker(broker: string): { address: string; port: number } | undefined {
  const colon = broker.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let address = broker.slice(0, colon);
  const digits = broker.slice(colon + 1);
  // Plain digits only: Number() would also read '0x10', '1e3' or ' 80' as a port.
  const port = /^\d{1,5}$/.test(digits) ? Number(digits) : 0;
  if (port <= 0 || port > 65535) return undefined;
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  // A URL (`kafka://user:secret@host:9092`) would put its scheme and credentials in server.address.
  return isHostName(address) ? { address, port } : undefined;
}
