import {
  ATTR_ERROR_TYPE,
  createInstrumentation,
  errorTypeOf,
  extractContext,
  type Instrumentation,
  MESSAGING_SYSTEM,
  runInSpan,
  SpanHandle,
  startConsumerSpan,
} from '@hoptrace/core';
import { type Attributes, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Consumer, ConsumerRunConfig, EachBatchPayload, EachMessagePayload } from 'kafkajs';
import { addClientAttributes, addMessageAttributes, addPositionAttributes } from './attributes.ts';
import { traceBatch } from './batch.ts';
import { type ClientInfo, learnClientInfo } from './client-info.ts';
import { type ConsumerState, processMetricAttributes } from './consumer-state.ts';
import { type KafkaConsumerOptions, type KafkaSettings, resolveKafkaSettings } from './options.ts';
import { SCOPE_NAME, SCOPE_VERSION } from './version.ts';

const wrapped = new WeakSet<object>();

/**
 * Wraps a kafkajs consumer so that `run({ eachMessage })` and `run({ eachBatch })` are traced.
 *
 * - eachMessage: one `process {topic}` CONSUMER span per delivery, related to the message's creation
 *   context by the relation policy (default `parent`, plus a link); the handler runs with it active;
 *   a handler error is recorded and rethrown unchanged, so kafkajs retries as before (each retried
 *   delivery gets its own span).
 * - eachBatch: see {@link withMessageContext} and the README: a batch `process {topic}` span linking
 *   to the messages' creation contexts (capped by `maxBatchLinks`), plus one span per message.
 * - `stop()` and `disconnect()` end every span still open once kafkajs has stopped.
 *
 * The payloads your handlers receive are kafkajs's own (eachBatch: the same fields, with
 * `resolveOffset` observed, not changed). Idempotent; keeps the consumer's type.
 *
 * @param consumer - from `kafka.consumer({ groupId })`.
 * @param options - see {@link KafkaConsumerOptions}; invalid options throw a TypeError here.
 */
export function traceConsumer<C extends Consumer>(consumer: C, options: KafkaConsumerOptions = {}): C {
  if (wrapped.has(consumer)) return consumer;
  const instr = createInstrumentation(SCOPE_NAME, SCOPE_VERSION, options);
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
  if (wrapped.has(consumer)) return consumer;
  const info: ClientInfo = {
    clientId: settings.clientId,
    serverAddress: settings.serverAddress,
    serverPort: settings.serverPort,
    groupId,
  };
  learnClientInfo(
    info,
    (listener) => consumer.on('consumer.network.request', listener),
    (listener) => consumer.on('consumer.group_join', listener),
  );
  const state: ConsumerState = { instr, settings, info, open: new Set(), batches: new Set() };
  const run = (config?: ConsumerRunConfig) => consumer.run(traceRunConfig(state, config));
  const stop = () => endAllAfter(state, consumer.stop());
  const disconnect = () => endAllAfter(state, consumer.disconnect());
  const proxy = new Proxy(consumer, {
    get(target, property, receiver) {
      if (property === 'run') return run;
      if (property === 'stop') return stop;
      if (property === 'disconnect') return disconnect;
      return Reflect.get(target, property, receiver);
    },
  });
  wrapped.add(proxy);
  return proxy;
}

/** A copy of the run config with traced handlers; every other field as the caller set it. */
function traceRunConfig(
  state: ConsumerState,
  config: ConsumerRunConfig | undefined,
): ConsumerRunConfig | undefined {
  if (!config || typeof config !== 'object') return config;
  const { eachMessage, eachBatch } = config;
  const traced: ConsumerRunConfig = { ...config };
  if (typeof eachMessage === 'function') {
    traced.eachMessage = (payload) => processMessage(state, eachMessage, payload);
  }
  if (typeof eachBatch === 'function') {
    const autoResolve = config.eachBatchAutoResolve !== false;
    traced.eachBatch = (payload: EachBatchPayload) => traceBatch(state, eachBatch, payload, autoResolve);
  }
  return traced;
}

/** One eachMessage delivery: its process span, the handler inside it, the metrics. */
async function processMessage(
  state: ConsumerState,
  handler: (payload: EachMessagePayload) => Promise<void>,
  payload: EachMessagePayload,
): Promise<void> {
  const { instr, settings, info } = state;
  const startMs = performance.now();
  const { topic, partition, message } = payload;
  const attributes: Attributes = {};
  addClientAttributes(attributes, info, true);
  addPositionAttributes(attributes, partition, message.offset);
  addMessageAttributes(attributes, message, settings.captureKeys, instr.captureBodySize);
  // The message's own context decides; where run() happened to be called must not leak in.
  const creation = extractContext(message.headers, ROOT_CONTEXT);
  const { span, context } = startConsumerSpan(instr, creation, {
    system: MESSAGING_SYSTEM.kafka,
    operationType: 'process',
    operationName: 'process',
    destination: topic,
    attributes,
  });
  const handle = new SpanHandle(span);
  state.open.add(handle);
  const metricAttributes = processMetricAttributes(state, topic);
  try {
    await runInSpan(handle, () => handler(payload), { context });
  } catch (error) {
    metricAttributes[ATTR_ERROR_TYPE] = errorTypeOf(error);
    throw error;
  } finally {
    state.open.delete(handle);
    instr.metrics.recordProcess(startMs, 1, metricAttributes);
  }
}

/** Awaits kafkajs's stop/disconnect, then ends whatever hoptrace still has open; rethrows its error. */
async function endAllAfter(state: ConsumerState, done: Promise<void>): Promise<void> {
  try {
    await done;
  } finally {
    for (const handle of state.open) handle.end();
    state.open.clear();
    for (const tracker of state.batches) tracker.finish(false);
    state.batches.clear();
  }
}
