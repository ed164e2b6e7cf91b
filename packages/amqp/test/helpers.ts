import { brokerEndpoint } from '@hoptrace/test-kit';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import amqplib from 'amqplib';

/** A raw amqplib 2.x connection to the harness broker, named so fault tests can find it. */
export function connect(connectionName?: string): Promise<amqplib.ChannelModel> {
  return amqplib.connect(
    brokerEndpoint('rabbitmq').url,
    connectionName ? { clientProperties: { connection_name: connectionName } } : {},
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
