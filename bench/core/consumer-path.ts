// The kafkajs adapter's own per-message work on the consumer side, in process (no broker): the
// `eachMessage` wrapper hoptrace hands kafkajs, called with kafkajs-shaped payloads (Buffer headers),
// beside the application's handler called directly. The broker benchmark measures the whole cost
// end to end; this isolates the wrapper from the broker, the client and the machine's noise, under
// the samplers of the broker benchmark (no span processor: a sampled span is built and ended, never
// exported).
import { traceConsumer } from '@hoptrace/kafka';
import type { TracerProvider } from '@opentelemetry/api';
import type { Consumer, EachMessageHandler, EachMessagePayload } from 'kafkajs';
import type { Case } from '../lib/measure.ts';
import { pathProviders } from './providers.ts';

/** Distinct messages cycled through, so no trace id is parsed twice in a row. */
const POOL = 1024;

function payloads(flags: '00' | '01'): EachMessagePayload[] {
  return Array.from({ length: POOL }, (_, i) => {
    const traceId = (i + 1).toString(16).padStart(32, 'a');
    return {
      topic: 'orders',
      partition: 0,
      message: {
        key: null,
        value: Buffer.alloc(100, 'x'),
        offset: String(i),
        timestamp: '1764806400000',
        attributes: 0,
        size: 0,
        headers: { traceparent: Buffer.from(`00-${traceId}-00f067aa0ba902b7-${flags}`) },
      },
      heartbeat: async () => undefined,
      pause: () => () => undefined,
    } as EachMessagePayload;
  });
}

/** The wrapper hoptrace gives kafkajs for `handler`, taken from a stand-in consumer's `run`. */
function wrapperOf(tracerProvider: TracerProvider, handler: EachMessageHandler): EachMessageHandler {
  let wrapped: EachMessageHandler | undefined;
  const noop = async () => undefined;
  const consumer = {
    connect: noop,
    disconnect: noop,
    subscribe: noop,
    stop: noop,
    commitOffsets: noop,
    describeGroup: noop,
    run: async (config: { eachMessage?: EachMessageHandler }) => {
      wrapped = config.eachMessage;
    },
    seek: () => undefined,
    pause: () => undefined,
    resume: () => undefined,
    paused: () => [],
    on: () => () => undefined,
    events: {},
    logger: () => undefined,
  } as unknown as Consumer;
  void traceConsumer(consumer, { tracerProvider, groupId: 'bench' }).run({ eachMessage: handler });
  if (!wrapped) throw new Error('traceConsumer did not hand an eachMessage wrapper to run()');
  return wrapped;
}

/** The cases: a baseline (the handler alone) and the wrapper under each sampler. */
export function consumerPathCases(): Case[] {
  const providers = pathProviders();
  // What an application's handler does here: nothing (synchronously), so only the wrapper is measured.
  const handler = (() => undefined) as unknown as EachMessageHandler;
  const unsampled = payloads('00');
  const sampled = payloads('01');
  let i = 0;
  const baseline = 'kafkajs eachMessage: the handler alone (no hoptrace)';
  const run = (fn: EachMessageHandler, from: EachMessagePayload[]) => () =>
    fn(from[i++ % POOL] as EachMessagePayload);
  return [
    { name: baseline, fn: run(handler, unsampled) },
    {
      name: 'kafkajs eachMessage wrapper: unsampled message (flags 00), ParentBased(TraceIdRatioBased(0.1))',
      baseline,
      fn: run(wrapperOf(providers.ratio, handler), unsampled),
    },
    {
      name: 'kafkajs eachMessage wrapper: unsampled message (flags 00), AlwaysOff',
      baseline,
      fn: run(wrapperOf(providers.off, handler), unsampled),
    },
    {
      name: 'kafkajs eachMessage wrapper: sampled message, AlwaysOn (span built and ended, not exported)',
      baseline,
      fn: run(wrapperOf(providers.on, handler), sampled),
    },
  ];
}
