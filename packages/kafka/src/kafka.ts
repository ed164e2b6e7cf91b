import {
  assertClient,
  assertKnownOptions,
  createInstrumentation,
  existingWrapper,
  interceptMethods,
} from '@hoptrace/core/adapter';
import type { ConsumerConfig, Kafka, ProducerConfig } from 'kafkajs';
import { wrapConsumer } from './consumer.ts';
import { KAFKA_OPTION_KEYS, type KafkaOptions, resolveKafkaSettings } from './options.ts';
import { wrapProducer } from './producer.ts';
import { KAFKA_SCOPE } from './scope.ts';

/**
 * Wraps a kafkajs `Kafka` client so that every `producer()` and `consumer()` it makes comes out
 * traced (as by {@link traceProducer} and {@link traceConsumer}, with these options). Consumers get
 * their `messaging.consumer.group.name` from the `groupId` you pass to `consumer()`. Options are
 * validated here, once. Idempotent; keeps the `Kafka` type; `admin()` and the rest are untouched.
 *
 * @param kafka - a `new Kafka({...})`; anything else throws a TypeError.
 * @param options - see {@link KafkaOptions}; invalid options throw a TypeError here.
 */
export function traceKafka<K extends Kafka>(kafka: K, options: KafkaOptions = {}): K {
  assertClient('kafka', kafka, 'a kafkajs Kafka client', ['producer', 'consumer']);
  // Options are validated also when the client was wrapped before (they are then ignored).
  const instr = createInstrumentation(KAFKA_SCOPE, options);
  assertKnownOptions('traceKafka', options, KAFKA_OPTION_KEYS);
  const settings = resolveKafkaSettings(options);
  const existing = existingWrapper(kafka);
  if (existing) return existing;
  return interceptMethods(kafka, {
    producer: (raw, [config]) =>
      wrapProducer(raw.producer(config as ProducerConfig | undefined), instr, settings),
    consumer: (raw, [config]) => {
      const groupId = (config as ConsumerConfig | undefined)?.groupId;
      return wrapConsumer(
        raw.consumer(config as ConsumerConfig),
        instr,
        settings,
        typeof groupId === 'string' && groupId ? groupId : undefined,
      );
    },
  });
}
