import {
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  type ClientAttributes,
  type MetricServer,
  setSpanAttributes,
} from '@hoptrace/core/adapter';
import type { Attributes, Span } from '@opentelemetry/api';
import type { ConsumerGroupJoinEvent, RequestEvent } from 'kafkajs';
import { type KafkaSettings, parseBroker } from './options.ts';

type Listener<E> = (event: E) => void;
type Subscribe<E> = (listener: Listener<E>) => () => void;

/**
 * Most spans of one client that wait for its first request event (see
 * {@link ClientInfo.completeWhenLearned}); past it, ended ones are dropped, then new ones are not kept.
 */
export const MAX_SPANS_AWAITING_CLIENT_INFO = 64;

/**
 * What a wrapper knows about the client it wraps: filled from options, then from kafkajs's own
 * instrumentation events. `version` changes whenever something new is learned, so span templates
 * built from {@link ClientInfo.attributes} know when to rebuild.
 */
export class ClientInfo implements ClientAttributes, MetricServer {
  clientId: string | undefined;
  serverAddress: string | undefined;
  serverPort: number | undefined;
  groupId: string | undefined;
  #version = 0;
  readonly #legacy: boolean;
  /**
   * Recording spans started before the first request event, to complete when it arrives; defined
   * only while the wrapper listens for that event.
   */
  #awaiting: Set<Span> | undefined;

  /**
   * @param settings - the wrapper's resolved options (`clientId`, `broker`).
   * @param groupId - the consumer group when known at wrap time (consumers only).
   * @param legacy - the wrapper's `legacyAttributes`, for the attributes set on spans after they started.
   */
  constructor(settings: KafkaSettings, groupId: string | undefined, legacy = false) {
    this.clientId = settings.clientId;
    this.serverAddress = settings.serverAddress;
    this.serverPort = settings.serverPort;
    this.groupId = groupId;
    this.#legacy = legacy;
  }

  /** Bumped each time something new is learned. */
  get version(): number {
    return this.#version;
  }

  /** Client id, server address and port, and (for consumers) the group, as far as known. */
  attributes(): Attributes {
    const out = this.#requestAttributes();
    if (this.groupId !== undefined) out[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = this.groupId;
    return out;
  }

  /** What the first request event tells: client id, server address and port, as far as known. */
  #requestAttributes(): Attributes {
    const out: Attributes = {};
    if (this.clientId !== undefined) out[ATTR_MESSAGING_CLIENT_ID] = this.clientId;
    if (this.serverAddress !== undefined) {
      out[ATTR_SERVER_ADDRESS] = this.serverAddress;
      if (this.serverPort !== undefined) out[ATTR_SERVER_PORT] = this.serverPort;
    }
    return out;
  }

  /**
   * Spans that started before the client's first request event (a producer wrapped after its
   * `connect()`: the first event is its first send's own request, made while the send span is
   * open): when the event arrives, those still recording get the client id and server learned from
   * it. Once it arrived (or when the options gave both), this returns at once. Non-recording spans
   * are not kept; at most {@link MAX_SPANS_AWAITING_CLIENT_INFO} spans are. Never throws.
   */
  completeWhenLearned(spans: Span | readonly Span[] | undefined): void {
    const awaiting = this.#awaiting;
    if (awaiting === undefined || spans === undefined) return;
    try {
      if (!Array.isArray(spans)) this.#await(awaiting, spans as Span);
      else for (const span of spans as readonly Span[]) this.#await(awaiting, span);
    } catch {
      // A span whose isRecording throws (not the SDK's): left as it started.
    }
  }

  #await(awaiting: Set<Span>, span: Span): void {
    if (!span.isRecording()) return;
    if (awaiting.size >= MAX_SPANS_AWAITING_CLIENT_INFO) {
      // Spans that ended meanwhile need nothing any more.
      for (const held of awaiting) if (!held.isRecording()) awaiting.delete(held);
      if (awaiting.size >= MAX_SPANS_AWAITING_CLIENT_INFO) return;
    }
    awaiting.add(span);
  }

  /** The first request event arrived: the spans waiting for it get what it told, then none wait. */
  #completeAwaiting(): void {
    const awaiting = this.#awaiting;
    this.#awaiting = undefined;
    if (awaiting === undefined || awaiting.size === 0) return;
    const attributes = this.#requestAttributes();
    for (const span of awaiting) {
      try {
        setSpanAttributes(span, attributes, this.#legacy);
      } catch {
        // Not the SDK's span: the others still get theirs.
      }
    }
  }

  /**
   * Learns what options did not say from the client's instrumentation events: client id and the
   * seed broker from the first network request (then the listener is removed, so the per-request
   * cost is gone, and spans that started before it get them: see
   * {@link ClientInfo.completeWhenLearned}), and the consumer group from the group join. Never throws.
   *
   * @param onRequest - subscribes to `producer.network.request` / `consumer.network.request`.
   * @param onGroupJoin - subscribes to `consumer.group_join` (consumers only).
   */
  learn(onRequest: Subscribe<RequestEvent>, onGroupJoin?: Subscribe<ConsumerGroupJoinEvent>): void {
    if (this.clientId === undefined || this.serverAddress === undefined) {
      // Spans wait for the event only while something listens for it.
      this.#awaiting = new Set();
      try {
        const remove = onRequest((event) => {
          const payload = event?.payload;
          if (this.clientId === undefined && typeof payload?.clientId === 'string' && payload.clientId) {
            this.clientId = payload.clientId;
          }
          if (this.serverAddress === undefined && typeof payload?.broker === 'string') {
            const server = parseBroker(payload.broker);
            if (server) {
              this.serverAddress = server.address;
              this.serverPort = server.port;
            }
          }
          this.#version++;
          this.#completeAwaiting();
          remove();
        });
      } catch {
        // A client without the instrumentation emitter (a test double): the options are all we know.
        this.#awaiting = undefined;
      }
    }
    if (onGroupJoin && this.groupId === undefined) {
      try {
        const remove = onGroupJoin((event) => {
          const groupId = event?.payload?.groupId;
          if (typeof groupId === 'string' && groupId) {
            this.groupId = groupId;
            this.#version++;
            remove();
          }
        });
      } catch {
        // As above: no group join event to learn from.
      }
    }
  }
}
