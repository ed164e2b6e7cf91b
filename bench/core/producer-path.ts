// The kafkajs adapter's own per-call work on the producer side, in process (no broker): a
// `send({ topic, messages: [one message] })` through a traced producer whose stand-in `send` answers
// at once as kafkajs answers, beside the same call on the stand-in carrying the `traceparent` header
// a tracer would write (the header floor). Under the samplers of the broker benchmark, with no
// active span (a root send, as the benchmark's producer makes); spans are built and ended, never
// exported.
import { traceProducer } from '@hoptrace/kafka';
import type { TracerProvider } from '@opentelemetry/api';
import type { Producer, ProducerRecord, RecordMetadata } from 'kafkajs';
import { floorTraceparent } from '../brokers/floor.ts';
import type { Case } from '../lib/measure.ts';
import { pathProviders } from './providers.ts';

const TOPIC = 'orders';
const VALUE = Buffer.alloc(100, 'x');
const REPLY: RecordMetadata[] = [{ topicName: TOPIC, partition: 0, errorCode: 0, baseOffset: '0' }];

/** What a connected kafkajs producer offers this path, without a broker. */
function standIn(): Producer {
  const noop = async () => undefined;
  return {
    connect: noop,
    disconnect: noop,
    send: async (_record: ProducerRecord) => REPLY,
    sendBatch: async () => REPLY,
    transaction: async () => {
      throw new Error('not in this benchmark');
    },
    on: () => () => undefined,
    events: {},
    logger: () => undefined,
    isIdempotent: () => false,
  } as unknown as Producer;
}

/** One send of one message through `producer` (traced or not). */
function path(tracerProvider: TracerProvider | undefined): () => Promise<unknown> {
  const raw = standIn();
  const producer = tracerProvider ? traceProducer(raw, { tracerProvider }) : raw;
  let i = 0;
  // The floor carries the header a tracer would write; hoptrace writes its own.
  if (tracerProvider) return () => producer.send({ topic: TOPIC, messages: [{ value: VALUE }] });
  return () =>
    producer.send({
      topic: TOPIC,
      messages: [{ value: VALUE, headers: { traceparent: floorTraceparent(i++) } }],
    });
}

/** The cases: the header floor on the stand-in, and a traced producer under each sampler. */
export function producerPathCases(): Case[] {
  const providers = pathProviders();
  const baseline = 'kafkajs send of one message (stand-in producer): the header floor (no hoptrace)';
  return [
    { name: baseline, fn: path(undefined) },
    {
      name: 'kafkajs send of one message through a traced producer: AlwaysOff',
      baseline,
      fn: path(providers.off),
    },
    {
      name: 'kafkajs send of one message through a traced producer: ParentBased(TraceIdRatioBased(0.1))',
      baseline,
      fn: path(providers.ratio),
    },
    {
      name: 'kafkajs send of one message through a traced producer: AlwaysOn (span built and ended, not exported)',
      baseline,
      fn: path(providers.on),
    },
  ];
}
