import {
  asAwaited,
  assertClient,
  assertKnownOptions,
  clientTemplates,
  copyWith,
  createInstrumentation,
  existingWrapper,
  FirstDeliveries,
  type Instrumentation,
  interceptMethods,
  KAFKA_OPERATIONS,
  Operation,
  startDeliverySpan,
} from '@hoptrace/core/adapter';
import { context as contextApi } from '@opentelemetry/api';
import type { Consumer, ConsumerRunConfig, EachBatchPayload, EachMessagePayload } from 'kafkajs';
import { setMessageAttributes } from './attributes.ts';
import { traceBatch } from './batch.ts';
import { ClientInfo } from './client-info.ts';
import { type ConsumerState, processMetric, recordTimeInQueue } from './consumer-state.ts';
import {
  CONSUMER_OPTION_KEYS,
  type KafkaConsumerOptions,
  type KafkaSettings,
  resolveKafkaSettings,
} from './options.ts';
import { KAFKA_SCOPE } from './scope.ts';

/**
 * Wraps a kafkajs consumer so that `run({ eachMessage })` and `run({ eachBatch })` are traced.
 *
 * - eachMessage: one `process {topic}` CONSUMER span per delivery, related to the message's creation
 *   context by the relation policy (default `parent`); the handler runs with it active; whatever the
 *   handler throws is recorded and rethrown unchanged, so kafkajs retries as before (each retried
 *   delivery gets its own span). A message whose parent is unsampled gets no span (see `unsampled`)
 *   and its handler runs in the message's own context.
 * - eachBatch: see `batchSpans` and {@link withMessageContext}.
 * - A dead-letter or retry copy made with `deadLetterMessage` links to the failed attempt and names
 *   the failure (`hoptrace.failure.*`).
 * - `stop()` and `disconnect()` end every span still open once kafkajs has stopped.
 *
 * The payloads your handlers receive are kafkajs's own (eachBatch: the same fields, with
 * `resolveOffset` observed, not changed). Idempotent; keeps the consumer's type.
 *
 * @param consumer - from `kafka.consumer({ groupId })`; anything else (`null`, the `Kafka` client, a
 *   producer) throws a TypeError.
 * @param options - see {@link KafkaConsumerOptions}; invalid options throw a TypeError here.
 */
export function traceConsumer<C extends Consumer>(consumer: C, options: KafkaConsumerOptions = {}): C {
  // subscribe() too: a BullMQ Worker has a run() (and was wrapped, tracing nothing).
  assertClient('consumer', consumer, 'a kafkajs Consumer', ['run', 'subscribe']);
  // Options are validated also when the consumer was wrapped before (wrapConsumer then returns
  // that wrapper, and they are ignored).
  const instr = createInstrumentation(KAFKA_SCOPE, options);
  assertKnownOptions('traceConsumer', options, CONSUMER_OPTION_KEYS);
  const settings = resolveKafkaSettings(options);
  return wrapConsumer(consumer, instr, settings, settings.groupId);
}

/** Wraps with already resolved options (shared by {@link traceConsumer} and `traceKafka`). */
export function wrapConsumer<C extends Consumer>(
  consumer: C,
  instr: Instrumentation,
  settings: KafkaSettings,
  groupId: string | undefined,
): C {
  const existing = existingWrapper(consumer);
  if (existing) return existing;
  const info = new ClientInfo(settings, groupId, instr.legacyAttributes);
  info.learn(
    (listener) => consumer.on('consumer.network.request', listener),
    (listener) => consumer.on('consumer.group_join', listener),
  );
  const state: ConsumerState = {
    instr,
    settings,
    info,
    templates: clientTemplates(instr, KAFKA_OPERATIONS, info),
    metrics: instr.metricAttributes,
    open: new Set(),
    batches: new Set(),
    firstDeliveries: new FirstDeliveries(),
  };
  return interceptMethods(consumer, {
    run: (raw, [config]) => raw.run(traceRunConfig(state, config as ConsumerRunConfig | undefined)),
    stop: (raw) => endAllAfter(state, raw.stop()),
    disconnect: (raw) => endAllAfter(state, raw.disconnect()),
  });
}

/**
 * What kafkajs reads (destructures) from a run config: a copy keeps them even when they are getters
 * or inherited (a class instance), so kafkajs sees the same settings as without hoptrace.
 */
const RUN_FIELDS = [
  'autoCommit',
  'autoCommitInterval',
  'autoCommitThreshold',
  'eachBatchAutoResolve',
  'partitionsConsumedConcurrently',
  'eachBatch',
  'eachMessage',
] as const;

/** A copy of the run config with traced handlers; every other field as the caller set it. */
function traceRunConfig(
  state: ConsumerState,
  config: ConsumerRunConfig | undefined,
): ConsumerRunConfig | undefined {
  if (!config || typeof config !== 'object') return config;
  let traced: ConsumerRunConfig;
  try {
    traced = copyWith(config, RUN_FIELDS, {});
  } catch {
    return config; // a getter that throws: kafkajs reads the caller's config itself (and throws the same)
  }
  const { eachMessage, eachBatch } = traced;
  if (typeof eachMessage === 'function') {
    traced.eachMessage = (payload) => processMessage(state, eachMessage, payload);
  }
  if (typeof eachBatch === 'function') {
    // kafkajs defaults an absent setting to true and otherwise tests it for truthiness.
    const setting: unknown = traced.eachBatchAutoResolve;
    const autoResolve = setting === undefined || Boolean(setting);
    traced.eachBatch = (payload: EachBatchPayload) => traceBatch(state, eachBatch, payload, autoResolve);
  }
  return traced;
}

/** One eachMessage delivery: its process span (or none when unsampled), the handler inside it, the metrics. */
function processMessage(
  state: ConsumerState,
  handler: (payload: EachMessagePayload) => Promise<void>,
  payload: EachMessagePayload,
): Promise<void> {
  const { instr, settings } = state;
  const { topic, partition, message } = payload;
  // The message's own context decides; where run() happened to be called must not leak in.
  const {
    span,
    context: handlerContext,
    attributes,
  } = startDeliverySpan(instr, state.templates.of('process').get(topic), message?.headers);
  if (span && attributes) {
    setMessageAttributes(span, instr, settings.captureKeys, message, partition, message?.offset, attributes);
  }
  recordTimeInQueue(state, topic, partition, message?.offset, message?.timestamp);
  // Nothing to settle (unsampled fast path, or a span that does not record, and no metrics): no
  // operation and no extra promise. A non-recording span is ended at once (a no-op for the SDK's).
  if (!instr.metrics && !attributes) {
    span?.end();
    return contextApi.with(handlerContext, handler, undefined, payload);
  }
  const operation = new Operation(instr, span, processMetric(state, topic, 1));
  state.open.add(operation);
  let done: Promise<void> | undefined;
  try {
    done = contextApi.with(handlerContext, () =>
      operation.run(() => asAwaited(handler(payload)) as Promise<void>),
    );
  } catch (error) {
    // A handler that throws synchronously: its span ended in run(); forget it here too.
    state.open.delete(operation);
    throw error;
  }
  return Promise.resolve(done).finally(() => state.open.delete(operation));
}

/** Awaits kafkajs's stop/disconnect, then ends whatever hoptrace still has open; rethrows its error. */
function endAllAfter(state: ConsumerState, done: Promise<void>): Promise<void> {
  return done.finally(() => {
    for (const operation of state.open) operation.end();
    state.open.clear();
    for (const batch of state.batches) batch.finish(false);
    state.batches.clear();
  });
}
