import { brokerEndpoint } from '@hoptrace/integration/harness';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import amqplib from 'amqplib';

/** A promise with its resolve/reject exposed. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

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

/** Waits until `check` returns true (polling), or throws after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The W3C traceparent a span's context serializes to. */
export function traceparentOf(span: ReadableSpan): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags}`;
}
