import {
  assertClient,
  assertKnownOptions,
  clientTemplates,
  createInstrumentation,
  existingWrapper,
  type Instrumentation,
  interceptMethods,
  KAFKA_OPERATIONS,
  settleAllTransactions,
} from '@hoptrace/core/adapter';
import type { Producer, ProducerBatch, ProducerRecord } from 'kafkajs';
import { ClientInfo } from './client-info.ts';
import {
  type KafkaProducerOptions,
  type KafkaSettings,
  PRODUCER_OPTION_KEYS,
  resolveKafkaSettings,
} from './options.ts';
import type { ProducerState } from './producer-state.ts';
import { KAFKA_SCOPE } from './scope.ts';
import { tracedSend, tracedSendBatch } from './send.ts';
import { wrapTransaction } from './transaction.ts';

/**
 * Wraps a kafkajs producer so that `send`, `sendBatch`, transactions (`send`, `sendBatch`,
 * `sendOffsets`, `commit`, `abort`) are traced and every message carries its creation context in
 * its headers.
 *
 * - One `send {topic}` span per call (`send` alone when a `sendBatch` spans several topics), whose
 *   context every message of the call carries. With `createSpans: true`, calls of several messages
 *   also get a `create {topic}` span per message (each message then carries its own, and the send
 *   span becomes a CLIENT span linking to them).
 * - A message that already carries a context (e.g. its own `traceparent`) keeps it; the send span
 *   links to it (and is a CLIENT span when every message does).
 * - Partition and offset from the broker's reply go on the span about one message; a failure sets
 *   `error.type` from the kafkajs error (e.g. `UNKNOWN_TOPIC_OR_PARTITION`) or your classifier.
 * - Inside a transaction, send spans stay open until `commit` or `abort` and then say which
 *   (`hoptrace.kafka.transaction.outcome`; an aborted send ends with `error.type`
 *   `transaction_aborted`), so a trace never claims delivery of an aborted message.
 *
 * Never mutates the caller's records, messages or header maps (copy on write). Idempotent: a traced
 * producer (or one wrapped before) is returned unchanged. The result has the producer's own type.
 *
 * @param producer - from `kafka.producer()`; anything else (`null`, the `Kafka` client, a consumer)
 *   throws a TypeError.
 * @param options - see {@link KafkaProducerOptions}; invalid options throw a TypeError here.
 */
export function traceProducer<P extends Producer>(producer: P, options: KafkaProducerOptions = {}): P {
  assertClient('producer', producer, 'a kafkajs Producer', PRODUCER_METHODS);
  // Options are validated also when the producer was wrapped before (wrapProducer then returns
  // that wrapper, and they are ignored).
  const instr = createInstrumentation(KAFKA_SCOPE, options);
  assertKnownOptions('traceProducer', options, PRODUCER_OPTION_KEYS);
  return wrapProducer(producer, instr, resolveKafkaSettings(options));
}

/** What every kafkajs producer has (a consumer or the `Kafka` client has none of them). */
const PRODUCER_METHODS = ['send', 'sendBatch'] as const;

/** Wraps with already resolved options (shared by {@link traceProducer} and `traceKafka`). */
export function wrapProducer<P extends Producer>(
  producer: P,
  instr: Instrumentation,
  settings: KafkaSettings,
): P {
  const existing = existingWrapper(producer);
  if (existing) return existing;
  const info = new ClientInfo(settings, undefined, instr.legacyAttributes);
  info.learn((listener) => producer.on('producer.network.request', listener));
  const state: ProducerState = {
    instr,
    settings,
    info,
    templates: clientTemplates(instr, KAFKA_OPERATIONS, info),
    metrics: instr.metricAttributes,
    transactions: new Set(),
  };
  return interceptMethods(producer, {
    send: (raw, [record]) => tracedSend(state, raw, record as ProducerRecord, undefined),
    sendBatch: (raw, [batch]) => tracedSendBatch(state, raw, batch as ProducerBatch, undefined),
    transaction: (raw) => raw.transaction().then((transaction) => wrapTransaction(transaction, state)),
    disconnect: (raw) => raw.disconnect().finally(() => settleAllTransactions(state.transactions)),
  });
}
