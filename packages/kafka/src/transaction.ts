import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  interceptMethods,
  Operation,
  PendingSends,
  runTransactionalSend,
  setSpanAttributes,
  startClientSpan,
  startTransactionEnd,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import type { Offsets, ProducerBatch, ProducerRecord, Transaction } from 'kafkajs';
import { type ProducerState, producerMetric } from './producer-state.ts';
import { tracedSend, tracedSendBatch } from './send.ts';

/** Wraps a kafkajs transaction: sends are traced and stay open until `commit`/`abort`, which get spans too. */
export function wrapTransaction(transaction: Transaction, state: ProducerState): Transaction {
  const pending = new PendingSends();
  state.transactions.add(pending);
  const finish = (raw: Transaction, how: 'commit' | 'abort'): Promise<void> => {
    const settled = startTransactionEnd(
      state.instr,
      state.templates,
      state.metrics,
      how,
      pending,
      state.transactions,
      state.info,
    );
    let done: Promise<void>;
    try {
      done = how === 'commit' ? raw.commit() : raw.abort();
    } catch (error) {
      settled(true, error);
      throw error;
    }
    return done.then(
      (value) => {
        settled(false);
        return value;
      },
      (error: unknown) => {
        settled(true, error);
        throw error;
      },
    );
  };
  return interceptMethods(transaction, {
    send: (raw, [record]) => tracedSend(state, raw, record as ProducerRecord, pending),
    sendBatch: (raw, [batch]) => tracedSendBatch(state, raw, batch as ProducerBatch, pending),
    sendOffsets: (raw, [offsets]) =>
      tracedSendOffsets(state, raw, offsets as Offsets & { consumerGroupId: string }, pending),
    commit: (raw) => finish(raw, 'commit'),
    abort: (raw) => finish(raw, 'abort'),
  });
}

/**
 * `sendOffsets`: a `send_offsets` span that, once kafkajs handed the offsets to the transaction,
 * waits for the transaction's outcome as its sends do (the offsets are committed only if it commits;
 * an abort ends it ERROR `transaction_aborted`). A call that fails ends with its error.
 */
function tracedSendOffsets(
  state: ProducerState,
  raw: Transaction,
  offsets: Offsets & { consumerGroupId: string },
  pending: PendingSends,
): Promise<void> {
  let topics: Offsets['topics'];
  let partitions = 0;
  let group: unknown;
  let destination: string | undefined;
  try {
    // Everything read from the caller's object is read before the span starts.
    topics = Array.isArray(offsets?.topics) ? offsets.topics : [];
    for (const topic of topics) partitions += Array.isArray(topic?.partitions) ? topic.partitions.length : 0;
    group = offsets?.consumerGroupId;
    destination = topics.length === 1 ? topics[0]?.topic : undefined;
  } catch {
    // Getters that throw: untraced, and kafkajs reads (and rejects) the same object itself.
    return raw.sendOffsets(offsets);
  }
  const span = startClientSpan(state.instr, state.templates.of('sendOffsets').get(destination));
  if (span?.isRecording()) {
    const attributes: Attributes = { [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: partitions };
    if (typeof group === 'string') attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = group;
    setSpanAttributes(span, attributes, state.instr.legacyAttributes);
    state.info.completeWhenLearned(span);
  }
  const operation = new Operation(
    state.instr,
    span,
    producerMetric(state, 'send_offsets', destination, 0, 'settle'),
    // The span waits for the transaction's outcome; the duration is the call's.
    true,
  );
  return runTransactionalSend(pending, operation, () => raw.sendOffsets(offsets));
}
