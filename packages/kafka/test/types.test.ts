import {
  deadLetterMessage,
  type KafkaConsumerOptions,
  type KafkaOptions,
  type KafkaProducerOptions,
  traceConsumer,
  traceKafka,
  traceProducer,
} from '@hoptrace/kafka';
import type { AllUndefined, MaybeSet } from '@hoptrace/test-kit';
import type { TracerProvider } from '@opentelemetry/api';
import { type Consumer, type EachMessagePayload, Kafka, type Message, type Producer } from 'kafkajs';
import { describe, expectTypeOf, it } from 'vitest';

// Compile-time checks: `pnpm run typecheck` fails if a wrapper loses the client's type, or if an
// option marked `@ts-expect-error` below becomes accepted. Nothing here connects anywhere.
const kafka = new Kafka({ brokers: ['127.0.0.1:1'] });

interface AuditedProducer extends Producer {
  audit(): string;
}

const maybeTracerProvider = undefined as TracerProvider | undefined;

describe('@hoptrace/kafka types', () => {
  it('every wrapper returns the exact client type it was given', () => {
    expectTypeOf(traceKafka(kafka)).toEqualTypeOf<Kafka>();
    expectTypeOf(traceProducer(kafka.producer())).toEqualTypeOf<Producer>();
    expectTypeOf(traceConsumer(kafka.consumer({ groupId: 'g' }))).toEqualTypeOf<Consumer>();
    expectTypeOf(traceProducer<AuditedProducer>).returns.toEqualTypeOf<AuditedProducer>();
    expectTypeOf(traceKafka(kafka).producer()).toEqualTypeOf<Producer>();
  });

  it('deadLetterMessage takes an eachMessage payload and returns a kafkajs Message', () => {
    expectTypeOf(deadLetterMessage)
      .parameter(0)
      .toMatchTypeOf<Pick<EachMessagePayload, 'topic' | 'partition' | 'message'>>();
    expectTypeOf(deadLetterMessage).returns.toEqualTypeOf<Message>();
    expectTypeOf<EachMessagePayload>().toMatchTypeOf<Parameters<typeof deadLetterMessage>[0]>();
    const invalid = [
      // @ts-expect-error attempts is a number
      (p: EachMessagePayload) => deadLetterMessage(p, new Error('x'), { attempts: '2' }),
      // @ts-expect-error the failed message is required
      () => deadLetterMessage({ topic: 't', partition: 0 }, new Error('x')),
    ];
    expectTypeOf(invalid).toBeArray();
  });

  it('rejects invalid options at compile time', () => {
    const invalid = [
      // @ts-expect-error captureKeys is a boolean
      () => traceKafka(kafka, { captureKeys: 'yes' }),
      // @ts-expect-error relation is 'parent' | 'link' | 'root'
      () => traceConsumer(kafka.consumer({ groupId: 'g' }), { relation: 'sibling' }),
      // @ts-expect-error batchSpans is 'message' | 'batch'
      () => traceConsumer(kafka.consumer({ groupId: 'g' }), { batchSpans: 'all' }),
      // @ts-expect-error traceBudget needs maxHops
      () => traceKafka(kafka, { traceBudget: {} }),
      // @ts-expect-error unsampled is 'auto' | 'skip' | 'span'
      () => traceProducer(kafka.producer(), { unsampled: true }),
      // @ts-expect-error groupId is a consumer option, not a producer one
      () => traceProducer(kafka.producer(), { groupId: 'g' }),
      // @ts-expect-error no unknown options
      () => traceKafka(kafka, { captureKey: true }),
    ];
    expectTypeOf(invalid).toBeArray();
    expectTypeOf<KafkaConsumerOptions['classifyError']>().toBeNullable();
  });

  it('every option of every wrapper takes an explicit undefined (exactOptionalPropertyTypes)', () => {
    const producerOptions = {} as AllUndefined<KafkaProducerOptions>;
    const consumerOptions = {} as AllUndefined<KafkaConsumerOptions>;
    const kafkaOptions = {} as AllUndefined<KafkaOptions>;
    expectTypeOf(traceProducer(kafka.producer(), producerOptions)).toEqualTypeOf<Producer>();
    expectTypeOf(traceConsumer(kafka.consumer({ groupId: 'g' }), consumerOptions)).toEqualTypeOf<Consumer>();
    expectTypeOf(traceKafka(kafka, kafkaOptions)).toEqualTypeOf<Kafka>();
    expectTypeOf(
      traceProducer(kafka.producer(), { tracerProvider: maybeTracerProvider }),
    ).toEqualTypeOf<Producer>();
    expectTypeOf<MaybeSet<KafkaProducerOptions>>().toExtend<KafkaProducerOptions>();
    expectTypeOf<MaybeSet<KafkaConsumerOptions>>().toExtend<KafkaConsumerOptions>();
    expectTypeOf<MaybeSet<KafkaOptions>>().toExtend<KafkaOptions>();
  });
});
