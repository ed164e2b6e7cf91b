import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brokerEndpoint, makePropagator, type TestTracing } from '@hoptrace/test-kit';
import { propagation, type SpanKind, type TextMapPropagator, trace } from '@opentelemetry/api';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll } from 'vitest';

/** What to undo after the test, last first (see `useCleanup`). */
export type Cleanup = Array<() => Promise<unknown>>;

/** Returns the list of what to undo after each test of the file, run last first, failures ignored. */
export function useCleanup(): Cleanup {
  const cleanup: Cleanup = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });
  return cleanup;
}

/**
 * Swaps in a ParentBased(AlwaysOn) tracer provider (the SDK default), exporting to `tracing`'s
 * exporter, for the tests of a describe (then `tracing`'s own provider again).
 */
export function useParentBasedSampler(tracing: { readonly current: TestTracing }): void {
  beforeAll(() => {
    trace.disable();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({
        sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
        spanProcessors: [new SimpleSpanProcessor(tracing.current.exporter)],
      }),
    );
  });
  afterAll(() => {
    trace.disable();
    trace.setGlobalTracerProvider(tracing.current.provider);
  });
}

/** Registers the propagator `make` returns for the tests of a describe (then W3C again). */
export function usePropagator(make: () => TextMapPropagator): void {
  beforeAll(() => {
    propagation.disable();
    propagation.setGlobalPropagator(make());
  });
  afterAll(() => {
    propagation.disable();
    propagation.setGlobalPropagator(makePropagator('w3c'));
  });
}

/** The trace id, span id and flags of a W3C traceparent. */
export const ids = (header: string | undefined) => {
  const [, traceId, spanId, flags] = (header ?? '').split('-');
  return { traceId, spanId, flags };
};

/** A new random trace id. */
export const newTraceId = () => randomUUID().replaceAll('-', '');

/** The headers of a sampled message from their upstream (`PEER_INCOMING`), with `tracestate` and `baggage`. */
export const incomingWith = (tracestate: string, baggage?: string) => ({
  traceparent: `00-${newTraceId()}-1111111111111111-01`,
  tracestate,
  ...(baggage === undefined ? {} : { baggage }),
});

/** A kafkajs client (untraced) for the shared test broker. */
export function kafkajsClient(clientId: string): Kafka {
  return new Kafka({ clientId, brokers: brokerEndpoint('kafka').brokers, logLevel: logLevel.NOTHING });
}

/** Creates a fresh topic named `<prefix>-<uuid>` on the shared test broker and returns its name. */
export async function newTopic(prefix: string): Promise<string> {
  const topic = `${prefix}-${randomUUID()}`;
  const admin = kafkajsClient(`${prefix}-admin`).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/** A span as the other tool's peer process exported it. */
export interface PeerSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  /** The span's trace flags (1: sampled). */
  traceFlags: number;
  traceState: string | undefined;
  /** The span's attributes as the peer's tool set them (e.g. BullMQ's `bullmq.job.id`). */
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
}

/** What the peer's handler saw for one message: the active context, its baggage and the headers. */
export interface PeerSeen {
  traceId: string | undefined;
  spanId: string | undefined;
  traceFlags: number | undefined;
  traceState: string | undefined;
  baggage: Record<string, string>;
  headers: Record<string, string | string[]>;
  /** BullMQ only: the job's id and its `attemptsMade` when the handler ran. */
  job?: { id: string; attemptsMade: number };
}

/** What one run of the peer reports: the spans it exported and what its handlers saw. */
export interface PeerRun {
  spans: PeerSpan[];
  seen: PeerSeen[];
}

/** The brokers the peer speaks to, one client library each. */
export type PeerBroker = 'kafka' | 'platformatic' | 'amqp' | 'bullmq';

const PEER = fileURLToPath(new URL('./fixtures/incumbent-peer.mjs', import.meta.url));

/**
 * Runs the peer process (traced by the other tool: the OpenTelemetry contrib instrumentations,
 * @platformatic/kafka-opentelemetry or bullmq-otel) and returns the spans it exported and what its
 * handlers saw. `cleanup` gets a function that kills a peer still running; `options` are `PEER_*`
 * settings (see the fixture). Well inside a test's timeout, so a peer that hangs fails with its output.
 */
export async function runPeer(
  cleanup: Cleanup,
  broker: PeerBroker,
  role: 'produce' | 'consume',
  destination: string,
  count = 1,
  options: Record<string, string> = {},
): Promise<PeerRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options };
  if (broker === 'kafka' || broker === 'platformatic')
    env.PEER_KAFKA_BROKERS = brokerEndpoint('kafka').brokers.join(',');
  if (broker === 'amqp') env.PEER_AMQP_URL = brokerEndpoint('rabbitmq').url;
  if (broker === 'bullmq') {
    const redis = brokerEndpoint('redis');
    env.PEER_REDIS_HOST = redis.host;
    env.PEER_REDIS_PORT = String(redis.port);
  }
  const abort = new AbortController();
  cleanup.push(async () => abort.abort());
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [PEER, broker, role, destination, String(count)],
    { env, timeout: 30_000, signal: abort.signal },
  );
  const line = (tag: string) => {
    const found = stdout.split('\n').find((l) => l.startsWith(`${tag} `));
    if (!found) throw new Error(`the peer printed no ${tag}:\n${stdout}`);
    return JSON.parse(found.slice(tag.length + 1));
  };
  return { spans: line('SPANS') as PeerSpan[], seen: line('SEEN') as PeerSeen[] };
}
