import type { ConsumerTracingOptions, TracingOptions } from '@hoptrace/core';
import * as check from '@hoptrace/core/adapter';

/** What every @platformatic/kafka wrapper takes on top of core's {@link TracingOptions}. */
export interface PlatformaticClientOptions {
  /**
   * Record `kafka.message.key` (cut to 256 characters). Keys often hold personal data or ids, so
   * they are left out unless you opt in. Buffer keys are recorded only when they are valid UTF-8.
   * Default `false`.
   * @example { captureKeys: true }
   */
  captureKeys?: boolean | undefined;
  /**
   * `messaging.client.id`. Default: the client's own `clientId`.
   * @example { clientId: 'billing-api' }
   */
  clientId?: string | undefined;
  /**
   * `server.address` and `server.port` as `host:port`. Default: the first broker the client
   * connects to (its `client:broker:connect` event).
   * @example { broker: 'kafka-1.internal:9092' }
   */
  broker?: string | undefined;
}

/** Options of {@link traceProducer}. */
export interface PlatformaticProducerOptions extends TracingOptions, PlatformaticClientOptions {
  /**
   * For sends of more than one message, also start a `create {topic}` span per message and inject
   * its context into that message (the `send` span then is a CLIENT span linking to each). Default
   * `false`: one `send` span per call, whose context every message of the call carries.
   * @example { createSpans: true }
   */
  createSpans?: boolean | undefined;
}

/** How a traced consumer stream makes process spans; see {@link PlatformaticConsumerOptions.batchSpans}. */
export type BatchSpans = 'message' | 'batch';

/** Options of {@link traceConsumer}. */
export interface PlatformaticConsumerOptions extends ConsumerTracingOptions, PlatformaticClientOptions {
  /**
   * `messaging.consumer.group.name`. Default: the consumer's own `groupId`.
   * @example { groupId: 'billing' }
   */
  groupId?: string | undefined;
  /**
   * `'message'` (default): one `process {topic}` span per message the stream hands out, ending when
   * the application is done with it (see the README's "When a message is done"). `'batch'`: no
   * automatic per-message span; spans only where you ask with `withMessageContext` (one per call)
   * or `withBatchContext` (one per array of messages, with a link per message). The cheapest way to
   * trace hot consumers.
   * @example { batchSpans: 'batch' }
   */
  batchSpans?: BatchSpans | undefined;
  /**
   * The most links a `withBatchContext` span gets (one per message's creation context, first
   * come). The number actually added is recorded as `hoptrace.batch.link_count`. Default `128`.
   * @example { maxBatchLinks: 1000 }
   */
  maxBatchLinks?: number | undefined;
  /**
   * The longest a per-message process span stays open (milliseconds) when nothing else ends it
   * (the application holds a message without asking for the next one). It then ends with
   * `hoptrace.process.timed_out = true`. Default `60000`.
   * @example { maxProcessingMs: 5000 }
   */
  maxProcessingMs?: number | undefined;
}

/** Default for {@link PlatformaticConsumerOptions.maxBatchLinks}. */
export const DEFAULT_MAX_BATCH_LINKS = 128;
/** Default for {@link PlatformaticConsumerOptions.maxProcessingMs}. */
export const DEFAULT_MAX_PROCESSING_MS = 60_000;

const CLIENT_OPTION_KEYS = {
  captureKeys: true,
  clientId: true,
  broker: true,
} as const satisfies check.OptionKeys<PlatformaticClientOptions>;

/** The option names {@link traceProducer} takes (others throw at wrap time). */
export const PRODUCER_OPTION_KEYS = {
  ...check.TRACING_OPTION_KEYS,
  ...CLIENT_OPTION_KEYS,
  createSpans: true,
} as const satisfies check.OptionKeys<PlatformaticProducerOptions>;

/** The option names {@link traceConsumer} takes (others throw at wrap time). */
export const CONSUMER_OPTION_KEYS = {
  ...check.CONSUMER_TRACING_OPTION_KEYS,
  ...CLIENT_OPTION_KEYS,
  groupId: true,
  batchSpans: true,
  maxBatchLinks: true,
  maxProcessingMs: true,
} as const satisfies check.OptionKeys<PlatformaticConsumerOptions>;

/** Settings resolved once at wrap time. */
export interface Settings {
  readonly captureKeys: boolean;
  readonly createSpans: boolean;
  readonly batchSpans: BatchSpans;
  readonly maxBatchLinks: number;
  readonly maxProcessingMs: number;
  readonly clientId: string | undefined;
  readonly groupId: string | undefined;
  readonly server: { readonly address: string; readonly port: number } | undefined;
}

/**
 * Validates the wrapper's own options and resolves their defaults. Throws a TypeError naming the
 * option and the value received.
 */
export function resolveSettings(
  options: PlatformaticConsumerOptions & PlatformaticProducerOptions,
): Settings {
  check.assertOptionalBoolean('captureKeys', options.captureKeys);
  check.assertOptionalBoolean('createSpans', options.createSpans);
  check.assertOptionalOneOf('batchSpans', options.batchSpans, ['message', 'batch']);
  check.assertOptionalInteger('maxBatchLinks', options.maxBatchLinks, 0);
  check.assertOptionalInteger('maxProcessingMs', options.maxProcessingMs, 1);
  for (const name of ['clientId', 'groupId', 'broker'] as const)
    check.assertOptionalString(name, options[name]);
  let server: Settings['server'];
  if (options.broker !== undefined) {
    server = hostPort(options.broker);
    if (!server) {
      throw new TypeError(
        `Expected \`broker\` to be "host:port", got ${check.describeValue(options.broker)}`,
      );
    }
  }
  return {
    captureKeys: options.captureKeys ?? false,
    createSpans: options.createSpans ?? false,
    batchSpans: options.batchSpans ?? 'message',
    maxBatchLinks: options.maxBatchLinks ?? DEFAULT_MAX_BATCH_LINKS,
    maxProcessingMs: options.maxProcessingMs ?? DEFAULT_MAX_PROCESSING_MS,
    clientId: options.clientId,
    groupId: options.groupId,
    server,
  };
}

/**
 * `host:port` (IPv6 in brackets allowed) as address and port; undefined when it does not parse, or
 * when the host is not one (a scheme or credentials: see `isHostName`).
 */
export function hostPort(text: string): { address: string; port: number } | undefined {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  // A URL (`kafka://user:secret@host:9092`) would put its scheme and credentials in server.address.
  if (!match?.[1] || port < 1 || port > 65535 || !check.isHostName(match[1])) return undefined;
  return { address: match[1], port };
}
