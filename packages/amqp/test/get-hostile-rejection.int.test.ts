import { traceChannel } from '@hoptrace/amqp';
import { onlySpan, sleep, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { useConnection } from './helpers.ts';

const tracing = useTestTracing();
const amqp = useConnection();

describe('a get whose rejection value throws when read (a layer wrapping amqplib)', () => {
  it('reaches the caller as it is, the span ends ERROR, and nothing becomes an unhandled rejection', async () => {
    const raw = await amqp.connection.createChannel();
    // Another layer between the application and amqplib hands back its own failure: an Error whose
    // message getter throws.
    const hostile = new Error('wrapped');
    Object.defineProperty(hostile, 'message', {
      get() {
        throw new Error('do not read me');
      },
    });
    (raw as unknown as { get: () => Promise<never> }).get = () => Promise.reject(hostile);
    const channel = traceChannel(raw);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(channel.get('q-hostile')).rejects.toBe(hostile);
      await sleep(50);
      expect(unhandled).toEqual([]);
      expect(onlySpan(tracing.current.spans(), 'receive q-hostile').status.code).toBe(SpanStatusCode.ERROR);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
