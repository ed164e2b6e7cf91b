import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';

interface ConnectionShape {
  host?: unknown;
  port?: unknown;
  path?: unknown;
  url?: unknown;
  sentinels?: unknown;
  isCluster?: unknown;
  options?: ConnectionShape;
}

/**
 * `server.address` / `server.port` from a BullMQ `connection` option: an ioredis options object or
 * an ioredis instance (its `.options`). A `url` (BullMQ hands it to ioredis, whose host and port then
 * win over the other options) gives its host and port, never its credentials. ioredis's defaults
 * (`localhost`, 6379) apply when an options object leaves them out; Unix sockets, Sentinel and
 * Cluster connections (whose server is not one host named in the options) and unknown shapes give no
 * attributes. Never throws.
 */
export function serverAttributes(connection: unknown): Attributes {
  if (!connection || typeof connection !== 'object') return {};
  const c = connection as ConnectionShape;
  if (c.isCluster === true) return {};
  const source = c.options && typeof c.options === 'object' ? c.options : c;
  if (typeof source.path === 'string') return {};
  if (Array.isArray(source.sentinels) && source.sentinels.length > 0) return {};
  let fromUrl: { host?: string; port?: number } = {};
  if (typeof source.url === 'string' && source.url !== '') {
    const parsed = urlServer(source.url);
    if (parsed === undefined) return {};
    fromUrl = parsed;
  }
  const host =
    fromUrl.host ?? (typeof source.host === 'string' && source.host !== '' ? source.host : 'localhost');
  const port = fromUrl.port ?? (typeof source.port === 'number' ? source.port : 6379);
  return { [ATTR_SERVER_ADDRESS]: host, [ATTR_SERVER_PORT]: port };
}

/**
 * The host and port of a Redis URL as ioredis reads it (`redis://` assumed without a scheme);
 * `undefined` for a Unix socket path or a URL that does not parse.
 */
function urlServer(url: string): { host?: string; port?: number } | undefined {
  if (url.startsWith('/') && !url.startsWith('//')) return undefined; // a Unix socket
  const withScheme = /^rediss?:\/\//i.test(url)
    ? url
    : url.startsWith('//')
      ? `redis:${url}`
      : `redis://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    return undefined;
  }
  const out: { host?: string; port?: number } = {};
  if (parsed.hostname !== '') out.host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (parsed.port !== '') out.port = Number(parsed.port);
  return out;
}
