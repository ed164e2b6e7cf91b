import { brokerEndpoint, until } from '@hoptrace/test-kit';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import amqplib, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import callbackApi from 'amqplib/callback_api';
import { afterEach, beforeEach } from 'vitest';

/** A raw amqplib 2.x connection to the harness broker, named so fault tests can find it. */
export function connect(connectionName?: string): Promise<amqplib.ChannelModel> {
  return amqplib.connect(
    brokerEndpoint('rabbitmq').url,
    connectionName ? { clientProperties: { connection_name: connectionName } } : {},
  );
}

/**
 * A callback-API connection to the harness broker (`lib`: amqplib 2.x's `callback_api` by default;
 * 0.10's has the same shape), as a promise.
 */
export function callbackConnect(
  lib: typeof callbackApi = callbackApi,
  url: string = brokerEndpoint('rabbitmq').url,
): Promise<callbackApi.Connection> {
  return new Promise((resolve, reject) => lib.connect(url, (err, c) => (err ? reject(err) : resolve(c))));
}

/** A channel of a callback-API connection (traced or not), as a promise. */
export function callbackChannel(connection: callbackApi.Connection): Promise<callbackApi.Channel> {
  return new Promise((resolve, reject) =>
    connection.createChannel((err, channel) => (err ? reject(err) : resolve(channel))),
  );
}

/** The span's attribute, for terse assertions. */
export function attr(span: ReadableSpan, key: string): unknown {
  return span.attributes[key];
}

/** The W3C traceparent a span's context serializes to. */
export function traceparentOf(span: ReadableSpan): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags}`;
}

/** The port of the harness broker (never assume 5672: CI's container lane maps random ports). */
export function brokerPort(): number {
  const url = new URL(brokerEndpoint('rabbitmq').url);
  return url.port === '' ? 5672 : Number(url.port);
}

/** One data point of a collected metric. */
export interface Point {
  attributes: Record<string, unknown>;
  value: unknown;
}

/** A MeterProvider that keeps what it records, read with `collect()` (metric name -> data points). */
export function testMeters(): {
  meterProvider: MeterProvider;
  collect: () => Promise<Map<string, { unit: string; points: Point[] }>>;
} {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    meterProvider,
    collect: async () => {
      exporter.reset();
      await reader.forceFlush();
      const out = new Map<string, { unit: string; points: Point[] }>();
      for (const rm of exporter.getMetrics()) {
        for (const sm of rm.scopeMetrics) {
          for (const m of sm.metrics) {
            out.set(m.descriptor.name, {
              unit: m.descriptor.unit,
              points: m.dataPoints.map((d) => ({ attributes: d.attributes, value: d.value })),
            });
          }
        }
      }
      return out;
    },
  };
}

/** A fresh raw connection to the harness broker for each test of the file, closed after it. */
export function useConnection(): { readonly connection: ChannelModel } {
  let current: ChannelModel | undefined;
  beforeEach(async () => {
    current = await connect();
  });
  afterEach(async () => {
    await current?.close().catch(() => undefined);
    current = undefined;
  });
  return {
    get connection(): ChannelModel {
      if (!current) throw new Error('useConnection: the connection exists inside tests only');
      return current;
    },
  };
}

/**
 * Consumes `queue` on `channel` without settling anything, keeping the deliveries in arrival order;
 * `arrived(n)` waits until `n` have come (failing the test if they do not).
 */
export async function collectDeliveries(
  channel: Channel,
  queue: string,
): Promise<{ got: ConsumeMessage[]; arrived: (n: number) => Promise<void> }> {
  const got: ConsumeMessage[] = [];
  await channel.consume(queue, (m) => {
    if (m) got.push(m);
  });
  return { got, arrived: (n) => until(() => got.length >= n, `${n} deliveries`) };
}

/**
 * The process spans of `queue` among `spans`: its first deliveries (`redelivered` false) or its
 * redeliveries (`hoptrace.rabbitmq.redelivered=true`), in the order they ended.
 */
export function deliverySpans(
  spans: readonly ReadableSpan[],
  queue: string,
  redelivered: boolean,
): ReadableSpan[] {
  return spans.filter(
    (s) =>
      s.name === `process ${queue}` &&
      (s.attributes['hoptrace.rabbitmq.redelivered'] === true) === redelivered,
  );
}

/** `hoptrace.rabbitmq.settlement` of each of {@link deliverySpans}. */
export function settlementsOf(
  spans: readonly ReadableSpan[],
  queue: string,
  redelivered: boolean,
): unknown[] {
  return deliverySpans(spans, queue, redelivered).map((s) => s.attributes['hoptrace.rabbitmq.settlement']);
}
