import {
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  type MetricServer,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import { firstBootstrapBroker } from './client-options.ts';
import { hostPort, type Settings } from './options.ts';

/** The bits of a @platformatic/kafka client the wrappers read (producer or consumer). */
export interface ClientLike {
  readonly clientId?: unknown;
  readonly groupId?: unknown;
  once?(event: string, listener: (payload: unknown) => void): unknown;
}

function text(read: () => unknown): string | undefined {
  try {
    const value = read();
    return typeof value === 'string' && value.length > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a wrapper knows about its client: from options first, then from the client (its `clientId`
 * and `groupId`, and the first broker it connects to, its first bootstrap broker until then).
 * `version` changes whenever something is learned, so span templates know when to rebuild.
 */
export class ClientInfo implements MetricServer {
  readonly #clientId: string | undefined;
  readonly #groupId: string | undefined;
  #address: string | undefined;
  #port: number | undefined;
  #version = 0;

  constructor(client: ClientLike, settings: Settings, withGroup: boolean) {
    this.#clientId = settings.clientId ?? text(() => client.clientId);
    this.#groupId = withGroup ? (settings.groupId ?? text(() => client.groupId)) : undefined;
    this.#address = settings.server?.address;
    this.#port = settings.server?.port;
    if (this.#address !== undefined) return;
    // Until the client reports a connection (it connects lazily, in its first call; or it connected
    // before it was wrapped, and never reports again), the broker it tries first.
    const seed = firstBootstrapBroker(client);
    this.#address = seed?.address;
    this.#port = seed?.port;
    try {
      client.once?.('client:broker:connect', (payload) => {
        let server: { address: string; port: number } | undefined;
        try {
          const broker = (payload as { broker?: { host?: unknown; port?: unknown } } | undefined)?.broker;
          const host = broker?.host;
          const port = broker?.port;
          // Checked as a bootstrap broker is: a host with `@` or `/`, or a port out of 1-65535, keeps
          // what was known.
          if (typeof host === 'string' && Number.isInteger(port)) server = hostPort(`${host}:${port}`);
        } catch {
          return; // a payload whose reads throw: never into the client's emit
        }
        if (server === undefined) return;
        if (server.address === this.#address && server.port === this.#port) return;
        this.#address = server.address;
        this.#port = server.port;
        this.#version++;
      });
    } catch {
      // a client without events (a test double): the options are all we know
    }
  }

  /** Bumped each time something new is learned. */
  get version(): number {
    return this.#version;
  }

  /** `server.address` as the spans carry it, when known (read by the metrics, see `MetricServer`). */
  get serverAddress(): string | undefined {
    return this.#address;
  }

  /** `server.port` as the spans carry it (only with an address). */
  get serverPort(): number | undefined {
    return this.#address === undefined ? undefined : this.#port;
  }

  /** The consumer group, when known. */
  get groupId(): string | undefined {
    return this.#groupId;
  }

  /** Client id, server address and port, and (for consumers) the group, as far as known. */
  attributes(): Attributes {
    const out: Attributes = {};
    if (this.#clientId !== undefined) out[ATTR_MESSAGING_CLIENT_ID] = this.#clientId;
    if (this.#address !== undefined) {
      out[ATTR_SERVER_ADDRESS] = this.#address;
      if (this.#port !== undefined) out[ATTR_SERVER_PORT] = this.#port;
    }
    if (this.#groupId !== undefined) out[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = this.#groupId;
    return out;
  }
}
