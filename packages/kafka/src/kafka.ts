import { createInstrumentation } from '@hoptrace/core';
import type { Consumer, ConsumerConfig, Kafka, Producer, ProducerConfig } from 'kafkajs';
import { wrapConsumer } from './consumer.ts';
import { type KafkaOptions, resolveKafkaSettings } from './options.ts';
import { wrapProducer } from './producer.ts';
import { SCOPE_NAME, SCOPE_VERSION } from './version.ts';

const wrapped = new WeakSet<object>();

/**
 * Wraps a kafkajs `Kafka` client so that every `producer()` and `consumer()` it makes comes out
 * traced (as by {@link traceProducer} and {@link traceConsumer}, with these options). Consumers get
 * their `messaging.consumer.group.name` from the `groupId` you pass to `consumer()`. Options are
 * validated here, once. Idempotent; keeps the `Kafka` type; `admin()` and the rest are untouched.
 *
 * @param kafka - a `new Kafka({...})`.
 * @param options - see {@link KafkaOptions}; invalid options throw a TypeError here.
 */
export function traceKafka<K extends Kafka>(kafka: K, options: KafkaOptions = {}): K {
  if (wrapped.has(kafka)) return kafka;
  const instr = createInstrumentation(SCOPE_NAME, SCOPE_VERSION, options);
  const settings = resolveKafkaSettings(options);
  const producer = (config?: ProducerConfig): Producer =>
    wrapProducer(kafka.producer(config), instr, settings);
  const consumer = (config: ConsumerConfig): Consumer =>
    wrapConsumer(
      kafka.consumer(config),
      instr,
      settings,
      typeof config?.groupId === 'string' && config.groupId ? config.groupId : undefined,
    );
  const proxy = new Proxy(kafka, {
    get(target, property, receiver) {
      if (property === 'producer') return producer;
      if (property === 'consumer') return consumer;
      return Reflect.get(target, property, receiver);
    },
  });
  wrapped.add(proxy);
  return proxy;
}
