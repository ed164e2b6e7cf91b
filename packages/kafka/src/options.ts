import {
  assertOptionalBoolean,
  assertOptionalInteger,
  type ConsumerTracingOptions,
  type TracingOptions,
} from '@hoptrace/core';

/** What every Kafka wrapper takes on top of core's {@link TracingOptions}. */
export interface KafkaClientOptions {
  /**
   * Record `kafka.message.key`. Keys may hold personal data; set `false` to leave them out. Buffer
   * keys are recorded only when they are valid UTF-8 text; `null` keys never. Default `true`.
   * @example { captureKeys: false }
   */
  captureKeys?: boolean;
  /**
   * `messaging.client.id`. Default: the client id kafkajs reports in its first network request
   * event (the `clientId` of your `new Kafka({...})`), so usually you do not set it.
   * @example { clientId: 'billing-api' }
   */
  clientId?: string;
  /**
   * `server.address` and `server.port` as `host:port` (the first broker of your client config).
   * Default: the broker kafkajs sent its first request to (a seed broker).
   * @example { broker: 'kafka-1.internal:9092' }
   */
  broker?: string;
}

/** Options of {@link traceProducer}. */
export interface KafkaProducerOptions extends TracingOptions, KafkaClientOptions {
  /**
   * For calls that send more than one message, start a `create` span per message and inject its
   * context into that message (the `send` span links to each). With `false`, the `send` span's own
   * context is injected into every message instead (fewer spans). Default `true`.
   * @example { createSpans: false }
   */
  createSpans?: boolean;
}

/** Options of {@link traceConsumer}. */
export interface KafkaConsumerOptions extends ConsumerTracingOptions, KafkaClientOptions {
  /**
   * `messaging.consumer.group.name`. Default: the group id kafkajs reports when the consumer joins
   * its group (the `consumer.group_join` event), which happens before the first message.
   * @example { groupId: 'billing' }
   */
  groupId?: string;
  /**
   * The most links a batch `process` span gets (one per message's creation context, first come).
   * The number actually added is recorded as `hoptrace.batch.link_count`. Default `128`.
   * @example { maxBatchLinks: 1000 }
   */
  maxBatchLinks?: number;
}

/** Options of {@link traceKafka}: everything producers and consumers take. */
export interface KafkaOptions extends KafkaProducerOptions, Omit<KafkaConsumerOptions, 'groupId'> {}

/** Default for {@link KafkaConsumerOptions.maxBatchLinks}. */
export const DEFAULT_MAX_BATCH_LINKS = 128;

/** Settings resolved once at wrap time. */
export interface KafkaSettings {
  captureKeys: boolean;
  createSpans: boolean;
  maxBatchLinks: number;
  clientId: string | undefined;
  groupId: string | undefined;
  serverAddress: string | undefined;
  serverPort: number | undefined;
}

/**
 * Validates the Kafka-specific options and resolves their defaults. Throws a TypeError naming the
 * option and the value received.
 */
export function resolveKafkaSettings(options: KafkaConsumerOptions & KafkaProducerOptions): KafkaSettings {
  assertOptionalBoolean('captureKeys', options.captureKeys);
  assertOptionalBoolean('createSpans', options.createSpans);
  assertOptionalInteger('maxBatchLinks', options.maxBatchLinks, 0);
  assertOptionalString('clientId', options.clientId);
  assertOptionalString('groupId', options.groupId);
  assertOptionalString('broker', options.broker);
  const server = options.broker === undefined ? undefined : parseBroker(options.broker);
  if (options.broker !== undefined && server === undefined) {
    throw new TypeError(`Expected \`broker\` to be "host:port", got ${JSON.stringify(options.broker)}`);
  }
  return {
    captureKeys: options.captureKeys ?? true,
    createSpans: options.createSpans ?? true,
    maxBatchLinks: options.maxBatchLinks ?? DEFAULT_MAX_BATCH_LINKS,
    clientId: options.clientId,
    groupId: options.groupId,
    serverAddress: server?.address,
    serverPort: server?.port,
  };
}

/** Splits `host:port` (IPv6 in brackets allowed); undefined when it does not parse. */
export function parseBroker(broker: string): { address: string; port: number } | undefined {
  const colon = broker.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let address = broker.slice(0, colon);
  const port = Number(broker.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  return address.length > 0 ? { address, port } : undefined;
}

function assertOptionalString(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
    throw new TypeError(`Expected \`${name}\` to be a non-empty string, got ${describe(value)}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' && value !== null ? Object.prototype.toString.call(value) : String(value);
}
