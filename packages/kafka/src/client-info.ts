import {
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  type ClientAttributes,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import type { ConsumerGroupJoinEvent, RequestEvent } from 'kafkajs';
import { type KafkaSettings, parseBroker } from './options.ts';

type Listener<E> = (event: E) => void;
type Subscribe<E> = (listener: Listener<E>) => () => void;

/**
 * What a wrapper knows about the client it wraps: filled from options, then from kafkajs's own
 * instrumentation events. `version` changes whenever something new is learned, so span templates
 * built from {@link ClientInfo.attributes} know when to rebuild.
 */
export class ClientInfo implements ClientAttributes {
  clientId: string | undefined;
  serverAddress: string | undefined;
  serverPort: number | undefined;
  groupId: string | undefined;
  #version = 0;

  constructor(settings: KafkaSettings, groupId: string | undefined) {
    this.clientId = settings.clientId;
    this.serverAddress = settings.serverAddress;
    this.serverPort = settings.serverPort;
    this.groupId = groupId;
  }

  /** Bumped each time something new is learned. */
  get version(): number {
    return this.#version;
  }

  /** Client id, server address and port, and (for consumers) the group, as far as known. */
  attributes(): Attributes {
    const out: Attributes = {};
    if (this.clientId !== undefined) out[ATTR_MESSAGING_CLIENT_ID] = this.clientId;
    if (this.serverAddress !== undefined) {
      out[ATTR_SERVER_ADDRESS] = this.serverAddress;
      if (this.serverPort !== undefined) out[ATTR_SERVER_PORT] = this.serverPort;
    }
    if (this.groupId !== undefined) out[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = this.groupId;
    return out;
  }

  /**
   * Learns what options did not say from the client's instrumentation events: client id and the
   * seed broker from the first network request (then the listener is removed, so the per-request
   * cost is gone), and the consumer group from the group join. Never throws.
   *
   * @param onRequest - subscribes to `producer.network.request` / `consumer.network.request`.
   * @param onGroupJoin - subscribes to `consumer.group_join` (consumers only).
   */
  learn(onRequest: Subscribe<RequestEvent>, onGroupJoin?: Subscribe<ConsumerGroupJoinEvent>): void {
    try {
      if (this.clientId === undefined || this.serverAddress === undefined) {
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
          remove();
        });
      }
      if (onGroupJoin && this.groupId === undefined) {
        const remove = onGroupJoin((event) => {
          const groupId = event?.payload?.groupId;
          if (typeof groupId === 'string' && groupId) {
            this.groupId = groupId;
            this.#version++;
            remove();
          }
        });
      }
    } catch {
      // A client without the instrumentation emitter (a test double): the options are all we know.
    }
  }
}
