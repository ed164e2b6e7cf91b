import { hostPort } from './options.ts';

/**
 * The options a @platformatic/kafka client was made with, read through its own
 * `plt.kafka.base.options` symbol (the one documented symbol hoptrace reads); `undefined` for a
 * client without it (a test double) or one whose properties throw.
 */
export function clientOptions(client: object): Readonly<Record<string, unknown>> | undefined {
  try {
    const symbol = Object.getOwnPropertySymbols(client).find(
      (s) => s.description === 'plt.kafka.base.options',
    );
    const options = symbol ? (client as Record<symbol, unknown>)[symbol] : undefined;
    return options !== null && typeof options === 'object' ? (options as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The first of the client's `bootstrapBrokers` (`"host:port"` or `{ host, port }`), the broker it
 * tries first: what `server.address` / `server.port` say until the client reports the broker it
 * connected to. `undefined` when the client does not say, the entry names no port, or its host is
 * not one (a scheme or credentials, see {@link hostPort}); both forms are read alike. Never throws.
 */
export function firstBootstrapBroker(client: object): { address: string; port: number } | undefined {
  try {
    const brokers = clientOptions(client)?.bootstrapBrokers;
    const first: unknown = Array.isArray(brokers) ? brokers[0] : undefined;
    if (typeof first === 'string') return hostPort(first);
    if (first === null || typeof first !== 'object') return undefined;
    const { host, port } = first as { host?: unknown; port?: unknown };
    // Checked as the same broker written `host:port` is: a host with `@` or `/` (a URL's credentials
    // or scheme) would reach server.address, a port out of 1-65535 is none, and an IPv6 host loses
    // its brackets (as the client takes them off both forms).
    return typeof host === 'string' && Number.isInteger(port) ? hostPort(`${host}:${port}`) : undefined;
  } catch {
    return undefined;
  }
}
