import {
  assertClient,
  assertKnownOptions,
  existingWrapper,
  FirstDeliveries,
  interceptMethods,
} from '@hoptrace/core/adapter';
import { clientState, validateOptions } from './client-state.ts';
import type { ConsumerState } from './consumer-state.ts';
import { endAll } from './message-spans.ts';
import { CONSUMER_OPTION_KEYS, type PlatformaticConsumerOptions } from './options.ts';
import { whenSettled } from './settled.ts';
import { dropStream, traceStream } from './stream.ts';

type Callback = (error: unknown, value?: unknown) => unknown;
type Method = (...args: unknown[]) => unknown;

/** Any @platformatic/kafka `Consumer` (whatever its key, value and header types). */
export interface TraceableConsumer {
  consume: unknown;
  close: unknown;
}

/**
 * Wraps a @platformatic/kafka `Consumer` so that the streams `consume()` returns are traced: one
 * `process {topic}` CONSUMER span per message (see `batchSpans`), related to the message's creation
 * context by the relation policy (default `parent`), with the hop budget, allow-listed baggage and
 * failure lineage of a dead-letter or retry copy. When a span ends is the README's "When a message
 * is done"; `withMessageContext(message, fn)` runs code inside it. `close()` ends every span still
 * open once the consumer has closed.
 *
 * The streams keep their type, and hand out the client's own message objects. Idempotent; keeps
 * the consumer's type.
 *
 * @param consumer - a `new Consumer({ groupId, ... })`; anything else (`null`, a producer, another
 *   library's consumer) throws a TypeError.
 * @param options - see {@link PlatformaticConsumerOptions}; invalid options throw a TypeError here.
 */
export function traceConsumer<C extends TraceableConsumer>(
  consumer: C,
  options: PlatformaticConsumerOptions = {},
): C {
  // commit() too: an amqplib Channel has consume() and close() (and was wrapped, tracing nothing).
  assertClient('consumer', consumer, 'a @platformatic/kafka Consumer', ['consume', 'close', 'commit']);
  assertKnownOptions('traceConsumer', options, CONSUMER_OPTION_KEYS);
  const existing = existingWrapper(consumer);
  if (existing) {
    validateOptions(options);
    return existing;
  }
  const state: ConsumerState = {
    ...clientState(consumer, options, true),
    streams: new Map(),
    sweep: undefined,
    firstDeliveries: new FirstDeliveries(),
  };
  // Ends what every stream holds. A stream the library left open (its close() skips leaving the
  // group, and so closing the streams, when the consumer is not an active member) stays swept until
  // it closes itself (its `close` event drops it, see traceStream).
  const closeAll = () => {
    for (const [open, over] of state.streams) {
      endAll(open);
      if (over()) dropStream(state, open);
    }
  };
  const traced = (stream: unknown) =>
    stream && typeof stream === 'object' ? traceStream(state, stream) : stream;
  return interceptMethods(
    consumer,
    {
      consume: (raw, args) => {
        const consume = (raw.consume as Method).bind(raw);
        const callback = args[1];
        if (typeof callback === 'function') {
          return consume(args[0], (error: unknown, stream: unknown) =>
            (callback as Callback)(error, error ? stream : traced(stream)),
          );
        }
        return (consume(...args) as Promise<unknown>).then(traced);
      },
      // Spans end once the consumer has closed. A close that fails (e.g. leaving the group) leaves the
      // consumer open and consuming: its streams stay tracked and swept (`maxProcessingMs`).
      close: (raw, args) =>
        whenSettled((raw.close as Method).bind(raw), args, (failed) => {
          if (!failed) closeAll();
        }),
    },
    // Listeners added to the traced client get it as `this`, as they get the client itself without
    // hoptrace (a listener calling `this.off(...)`, `this.send(...)`, `this.close()`).
    { listeners: {} },
  );
}
