/** The three kinds of broker the suite needs. */
export type BrokerKind = 'kafka' | 'rabbitmq' | 'redis';

/** How a broker was found, in the order the harness tries them. */
export type BrokerSource = 'env' | 'loopback' | 'testcontainers' | 'provisioned';

/** Connection settings for every broker, JSON-safe so vitest can hand them to test workers. */
export interface BrokerEndpoints {
  /** Kafka bootstrap servers, `host:port`. */
  kafka: { brokers: string[] };
  /** An AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672`. */
  rabbitmq: { url: string };
  /** Redis host and port (BullMQ takes these as its `connection`). */
  redis: { host: string; port: number };
}

/** One resolved broker: where it is, what it is and how it was found. */
export interface ResolvedBroker<K extends BrokerKind = BrokerKind> {
  kind: K;
  endpoint: BrokerEndpoints[K];
  /** The broker's version as reported by the broker itself, or how it was inferred. */
  version: string;
  source: BrokerSource;
  /** A human-readable account of how it was found. */
  detail: string;
  /** Stops what the harness started; a no-op for a broker it found running. */
  stop(): Promise<void>;
}

/** Raised when no broker of a kind can be had; the message lists every attempt and the fix. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}
