import type { ConsumerGroupJoinEvent, RequestEvent } from 'kafkajs';
import { parseBroker } from './options.ts';

/** What a wrapper knows about the client it wraps; filled from options, then from kafkajs events. */
export interface ClientInfo {
  clientId: string | undefined;
  serverAddress: string | undefined;
  serverPort: number | undefined;
  groupId: string | undefined;
}

type Listener<E> = (event: E) => void;
type Subscribe<E> = (listener: Listener<E>) => () => void;

/**
 * Learns what options did not say from the client's own instrumentation events: client id and the
 * seed broker from the first network request (then the listener is removed, so the per-request
 * cost is gone), and the consumer group from the group join. Never throws.
 *
 * @param onRequest - subscribes to `producer.network.request` / `consumer.network.request`.
 * @param onGroupJoin - subscribes to `consumer.group_join` (consumers only).
 */
export function learnClientInfo(
  info: ClientInfo,
  onRequest: Subscribe<RequestEvent>,
  onGroupJoin?: Subscribe<ConsumerGroupJoinEvent>,
): void {
  try {
    if (info.clientId === undefined || info.serverAddress === undefined) {
      const remove = onRequest((event) => {
        const payload = event?.payload;
        if (info.clientId === undefined && typeof payload?.clientId === 'string' && payload.clientId) {
          info.clientId = payload.clientId;
        }
        if (info.serverAddress === undefined && typeof payload?.broker === 'string') {
          const server = parseBroker(payload.broker);
          if (server) {
            info.serverAddress = server.address;
            info.serverPort = server.port;
          }
        }
        remove();
      });
    }
    if (onGroupJoin && info.groupId === undefined) {
      const remove = onGroupJoin((event) => {
        const groupId = event?.payload?.groupId;
        if (typeof groupId === 'string' && groupId) {
          info.groupId = groupId;
          remove();
        }
      });
    }
  } catch {
    // A client without the instrumentation emitter (a test double): the options are all we know.
  }
}
