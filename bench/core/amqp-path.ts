// The amqplib adapter's own per-message work, in process (no broker): a publish through a traced
// channel (`sendToQueue`), the delivery of what it published to the traced consumer's callback, and
// the callback's `ack`, on a stand-in for an amqplib channel that keeps what is published and hands
// it back as amqplib shapes a delivery. The baseline does the same on the stand-in itself, carrying
// the `traceparent` header a tracer would (the header floor). The broker benchmark measures the whole
// cost end to end; this isolates hoptrace's work (and the OpenTelemetry API and SDK calls it makes)
// from the broker, the client and the machine's noise, under the samplers of the broker benchmark
// (no span processor: a sampled span is built and ended, never exported).
import { EventEmitter } from 'node:events';
import { traceChannel } from '@hoptrace/amqp';
import type { TracerProvider } from '@opentelemetry/api';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { floorTraceparent } from '../brokers/floor.ts';
import type { Case } from '../lib/measure.ts';
import { pathProviders } from './providers.ts';

const QUEUE = 'orders';
const BODY = Buffer.alloc(100, 'x');

/**
 * What an amqplib channel does for this path, without a connection: `sendToQueue` keeps the message,
 * `consume` keeps the callback, `ack` does nothing; `deliver` hands the kept message to the callback
 * shaped as amqplib shapes a delivery, after the `delivery` event amqplib emits first.
 */
class StandInChannel extends EventEmitter {
  /** What amqplib keeps of its connection: the socket hoptrace reads `server.*` from. */
  readonly connection = { stream: { remoteAddress: '127.0.0.1', remotePort: 5672 } };
  private onMessage: ((message: ConsumeMessage) => unknown) | undefined;
  private pending: Options.Publish | undefined;
  private tag = 0;

  publish(_exchange: string, _routingKey: string, _content: Buffer, options?: Options.Publish): boolean {
    this.pending = options;
    return true;
  }

  sendToQueue(queue: string, content: Buffer, options?: Options.Publish): boolean {
    return this.publish('', queue, content, options);
  }

  consume(_queue: string, onMessage: (message: ConsumeMessage) => unknown): Promise<{ consumerTag: string }> {
    this.onMessage = onMessage;
    return Promise.resolve({ consumerTag: 'bench' });
  }

  ack(): void {}
  nack(): void {}
  reject(): void {}
  ackAll(): void {}
  nackAll(): void {}

  /** Delivers the message published last. */
  deliver(): void {
    const message = {
      content: BODY,
      fields: {
        deliveryTag: ++this.tag,
        redelivered: false,
        exchange: '',
        routingKey: QUEUE,
        consumerTag: 'bench',
      },
      properties: { headers: this.pending?.headers ?? {} },
    } as unknown as ConsumeMessage;
    this.emit('delivery', message);
    this.onMessage?.(message);
  }
}

/** One message through `channel` (traced or not): publish, deliver, ack. */
function path(tracerProvider: TracerProvider | undefined): () => void {
  const raw = new StandInChannel();
  const channel = (
    tracerProvider ? traceChannel(raw as unknown as Channel, { tracerProvider }) : raw
  ) as Channel;
  void channel.consume(QUEUE, (message) => {
    if (message) channel.ack(message);
  });
  let i = 0;
  // The floor carries the header a tracer would write; hoptrace writes its own.
  const options = tracerProvider ? () => ({}) : () => ({ headers: { traceparent: floorTraceparent(i++) } });
  return () => {
    channel.sendToQueue(QUEUE, BODY, options());
    raw.deliver();
  };
}

/** The cases: the header floor on the stand-in, and a traced channel under each sampler. */
export function amqpPathCases(): Case[] {
  const providers = pathProviders();
  const baseline = 'amqplib publish, deliver, ack (stand-in channel): the header floor (no hoptrace)';
  return [
    { name: baseline, fn: path(undefined) },
    {
      name: 'amqplib publish, deliver, ack through a traced channel: AlwaysOff',
      baseline,
      fn: path(providers.off),
    },
    {
      name: 'amqplib publish, deliver, ack through a traced channel: ParentBased(TraceIdRatioBased(0.1))',
      baseline,
      fn: path(providers.ratio),
    },
    {
      name: 'amqplib publish, deliver, ack through a traced channel: AlwaysOn (spans built and ended, not exported)',
      baseline,
      fn: path(providers.on),
    },
  ];
}
