import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  holdTransactionalSend,
  interceptMethods,
  Operation,
  operationMetric,
  PendingSends,
  setSpanAttributes,
  settleTransaction,
  startClientSpan,
  startTransactionEnd,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import { type ProducerState, type RawSend, tracedSend } from './send.ts';
import { whenSettled } from './settled.ts';

/** What hoptrace calls on a @platformatic/kafka `Transaction` (all of it the transaction's own). */
interface TransactionLike {
  send: RawSend;
  commit: RawSend;
  abort: RawSend;
  cancel: RawSend;
  addOffset: RawSend;
}

/**
 * A transaction whose `send`s are traced like the producer's and wait for its outcome, whose
 * `commit`, `abort` and `addOffset` get spans, and whose `cancel` ends the waiting sends as
 * `unknown` (the producer lets go of the transaction; the broker ends it later). Everything else,
 * and every result, is the transaction's own.
 */
export function wrapTransaction(state: ProducerState, transaction: unknown): unknown {
  if (!transaction || typeof transaction !== 'object') return transaction;
  const pending = new PendingSends();
  state.transactions.add(pending);
  // commit() or abort(), promise or callback style: a span, then the held sends end with the outcome.
  const finish = (call: RawSend, args: unknown[], how: 'commit' | 'abort') =>
    whenSettled(
      call,
      args,
      startTransactionEnd(
        state.instr,
        state.templates,
        state.metrics,
        how,
        pending,
        state.transactions,
        state.info,
      ),
    );
  return interceptMethods(transaction as TransactionLike, {
    send: (raw, args) => tracedSend(state, raw.send.bind(raw), args, pending),
    commit: (raw, args) => finish(raw.commit.bind(raw), args, 'commit'),
    abort: (raw, args) => finish(raw.abort.bind(raw), args, 'abort'),
    // The producer lets go of the transaction (the broker ends it later): its fate is unknown to us.
    cancel: (raw, args) =>
      whenSettled(raw.cancel.bind(raw), args, (failed) => {
        if (failed) return;
        settleTransaction(pending, 'unknown');
        state.transactions.delete(pending);
      }),
    addOffset: (raw, args) => tracedAddOffset(state, raw.addOffset.bind(raw), args, pending),
  });
}

/**
 * `addOffset(message)`: a `send_offsets {topic}` span (one offset: `messaging.batch.message_count` 1,
 * the message's consumer group) that, once the client accepted the offset, waits for the
 * transaction's outcome as its sends do (the offset is committed only if it commits; an abort ends
 * it ERROR `transaction_aborted`). A message whose fields cannot be read goes to the client untraced.
 */
function tracedAddOffset(
  state: ProducerState,
  call: RawSend,
  args: unknown[],
  pending: PendingSends,
): unknown {
  let topic: string | undefined;
  let group: unknown;
  try {
    const message = args[0] as
      | { topic?: unknown; metadata?: { consumer?: { groupId?: unknown } } }
      | null
      | undefined;
    topic = typeof message?.topic === 'string' ? message.topic : undefined;
    group = message?.metadata?.consumer?.groupId;
  } catch {
    return call(...args);
  }
  const { instr } = state;
  const span = startClientSpan(instr, state.templates.of('sendOffsets').get(topic));
  if (span?.isRecording()) {
    const attributes: Attributes = { [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: 1 };
    if (typeof group === 'string') attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = group;
    setSpanAttributes(span, attributes, instr.legacyAttributes);
  }
  const operation = new Operation(
    instr,
    span,
    operationMetric(
      instr.metrics !== undefined,
      state.metrics,
      'settle',
      'send_offsets',
      topic,
      0,
      undefined,
      state.info,
    ),
    // The span waits for the transaction's outcome; the duration is the call's.
    true,
  );
  return whenSettled(call, args, (failed, error) => {
    if (failed) {
      operation.fail(error);
      return;
    }
    operation.settleOpen(false);
    holdTransactionalSend(pending, operation);
  });
}
