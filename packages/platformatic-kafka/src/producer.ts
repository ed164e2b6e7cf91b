import {
  assertClient,
  assertKnownOptions,
  existingWrapper,
  interceptMethods,
  settleAllTransactions,
} from '@hoptrace/core/adapter';
import { clientState, validateOptions } from './client-state.ts';
import { producerHeaderEncodings } from './headers.ts';
import { type PlatformaticProducerOptions, PRODUCER_OPTION_KEYS } from './options.ts';
import { traceProducerStream } from './producer-stream.ts';
import { type ProducerState, type RawSend, tracedSend } from './send.ts';
import { whenSettled } from './settled.ts';
import { wrapTransaction } from './transaction.ts';

/** Any @platformatic/kafka `Producer` (whatever its key, value and header types). */
export interface TraceableProducer {
  send: unknown;
  beginTransaction: unknown;
}

/**
 * Wraps a @platformatic/kafka `Producer` so that every `send` (one message or many, promise or
 * callback style, also on a transaction from `beginTransaction`) gets one `send {topic}` span whose
 * context every message of the call carries in standard propagation headers.
 *
 * - A message that already carries a valid context (its own `traceparent`) keeps it; the send span
 *   links to it (and is a CLIENT span when every message does).
 * - Partition and offset from the broker's reply go on the span of a one-message send; a failure
 *   sets `error.type` from the client's error code or your `classifyError`, and the same error
 *   reaches you.
 * - Headers are written the way the producer's header serializers want them (strings for
 *   `stringSerializers`, Buffers for the default pass-through ones), in a copy: your options,
 *   messages and header maps are never modified.
 * - Producer streams (`asStream()`): every message written gets its own `send` span, open until the
 *   stream's batch carrying it is acknowledged (see the package README).
 * - Transactions: sends on a transaction keep their spans open until it commits or aborts and then
 *   say which (`hoptrace.kafka.transaction.outcome`; an aborted send ends ERROR with
 *   `transaction_aborted`); `commit`, `abort` and `addOffset` get spans of their own; a cancelled
 *   transaction, a failed commit or abort, or a producer closed first ends them as `unknown`.
 *
 * Idempotent (a traced producer is returned unchanged); keeps the producer's type.
 *
 * @param producer - a `new Producer({...})`; anything else (`null`, a consumer, another library's
 *   producer) throws a TypeError.
 * @param options - see {@link PlatformaticProducerOptions}; invalid options throw a TypeError here.
 */
export function traceProducer<P extends TraceableProducer>(
  producer: P,
  options: PlatformaticProducerOptions = {},
): P {
  assertClient('producer', producer, 'a @platformatic/kafka Producer', ['send', 'close']);
  assertKnownOptions('traceProducer', options, PRODUCER_OPTION_KEYS);
  const existing = existingWrapper(producer);
  if (existing) {
    validateOptions(options);
    return existing;
  }
  const state: ProducerState = {
    ...clientState(producer, options, false),
    encodings: producerHeaderEncodings(producer),
    transactions: new Set(),
    closingStreams: new Set(),
  };
  return interceptMethods(
    producer,
    {
      send: (raw, args) => tracedSend(state, (raw.send as RawSend).bind(raw), args),
      beginTransaction: (raw, args) => {
        const begin = (raw.beginTransaction as RawSend).bind(raw);
        const callback = args[1];
        if (typeof callback === 'function') {
          return begin(args[0], (error: unknown, transaction: unknown) =>
            callback(error, error ? transaction : wrapTransaction(state, transaction)),
          );
        }
        return (begin(...args) as Promise<unknown>).then((transaction) =>
          wrapTransaction(state, transaction),
        );
      },
      // A producer stream sends through the unwrapped producer: its writes are traced one by one.
      asStream: (raw, args) =>
        traceProducerStream(state, (raw as unknown as { asStream: RawSend }).asStream.apply(raw, args)),
      // Sends still waiting for a transaction's outcome end as `unknown` once the producer closed (a
      // close that fails, e.g. refused while streams still produce, leaves the producer and them open).
      close: (raw, args) =>
        whenSettled((raw as unknown as { close: RawSend }).close.bind(raw), args, (failed) => {
          if (!failed) {
            settleAllTransactions(state.transactions);
            // Nothing a destroyed stream had in flight is acknowledged after the producer closed.
            for (const stream of [...state.closingStreams]) stream.drop();
          }
        }),
    },
    // Listeners added to the traced client get it as `this`, as they get the client itself without
    // hoptrace (a listener calling `this.off(...)`, `this.send(...)`, `this.close()`).
    { listeners: {} },
  );
}
