import {
  deadLetterMessage,
  type PlatformaticConsumerOptions,
  type PlatformaticProducerOptions,
  traceConsumer,
  traceProducer,
  withMessageContext,
} from '@hoptrace/platformatic-kafka';
import type { AllUndefined, MaybeSet } from '@hoptrace/test-kit';
import type { TracerProvider } from '@opentelemetry/api';
import {
  Consumer,
  type Message,
  type MessagesStream,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import { describe, expectTypeOf, it } from 'vitest';

// Compile-time checks: `pnpm run typecheck` fails if a wrapper loses the client's type (with its
// key, value and header types), or if an option marked `@ts-expect-error` below becomes accepted.
// Nothing here connects anywhere.
const bootstrapBrokers = ['127.0.0.1:1'];
const producer = new Producer({ clientId: 'p', bootstrapBrokers, serializers: stringSerializers });
const consumer = new Consumer({
  clientId: 'c',
  groupId: 'g',
  bootstrapBrokers,
  deserializers: stringDeserializers,
});
const buffers = new Producer({ clientId: 'b', bootstrapBrokers });

const maybeTracerProvider = undefined as TracerProvider | undefined;

describe('@hoptrace/platformatic-kafka types', () => {
  it('every wrapper returns the exact client type it was given', () => {
    expectTypeOf(traceProducer(producer)).toEqualTypeOf<Producer<string, string, string, string>>();
    expectTypeOf(traceProducer(buffers)).toEqualTypeOf<Producer<Buffer, Buffer, Buffer, Buffer>>();
    expectTypeOf(traceConsumer(consumer)).toEqualTypeOf<Consumer<string, string, string, string>>();
    expectTypeOf(traceConsumer(consumer).consume).returns.resolves.toEqualTypeOf<
      MessagesStream<string, string, string, string>
    >();
  });

  it('keeps message types through the helpers', () => {
    expectTypeOf(
      withMessageContext({} as Message<string, string, string, string>, () => 1),
    ).toEqualTypeOf<number>();
    const copy = deadLetterMessage({} as Message<string, string, string, string>, new Error('x'), {
      attempts: 2,
    });
    expectTypeOf(copy.headers).toEqualTypeOf<Map<string, string>>();
    expectTypeOf(copy.key).toEqualTypeOf<string | undefined>();
  });

  it('rejects invalid options at compile time', () => {
    const invalid = [
      // @ts-expect-error captureKeys is a boolean
      () => traceProducer(producer, { captureKeys: 'yes' }),
      // @ts-expect-error relation is 'parent' | 'link' | 'root'
      () => traceConsumer(consumer, { relation: 'sibling' }),
      // @ts-expect-error batchSpans is 'message' | 'batch'
      () => traceConsumer(consumer, { batchSpans: 'all' }),
      // @ts-expect-error traceBudget needs maxHops
      () => traceConsumer(consumer, { traceBudget: {} }),
      // @ts-expect-error maxProcessingMs is a number
      () => traceConsumer(consumer, { maxProcessingMs: '5s' }),
      // @ts-expect-error groupId is a consumer option, not a producer one
      () => traceProducer(producer, { groupId: 'g' }),
      // @ts-expect-error no unknown options
      () => traceConsumer(consumer, { captureKey: true }),
      // @ts-expect-error a consumer is not a producer
      () => traceProducer(consumer),
    ];
    expectTypeOf(invalid).toBeArray();
    expectTypeOf<PlatformaticConsumerOptions['classifyError']>().toBeNullable();
  });

  it('every option of every wrapper takes an explicit undefined (exactOptionalPropertyTypes)', () => {
    const producerOptions = {} as AllUndefined<PlatformaticProducerOptions>;
    const consumerOptions = {} as AllUndefined<PlatformaticConsumerOptions>;
    expectTypeOf(traceProducer(producer, producerOptions)).toEqualTypeOf<
      Producer<string, string, string, string>
    >();
    expectTypeOf(traceConsumer(consumer, consumerOptions)).toEqualTypeOf<
      Consumer<string, string, string, string>
    >();
    expectTypeOf(traceProducer(buffers, { tracerProvider: maybeTracerProvider })).toEqualTypeOf<
      Producer<Buffer, Buffer, Buffer, Buffer>
    >();
    expectTypeOf<MaybeSet<PlatformaticProducerOptions>>().toExtend<PlatformaticProducerOptions>();
    expectTypeOf<MaybeSet<PlatformaticConsumerOptions>>().toExtend<PlatformaticConsumerOptions>();
  });
});
