import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';

interface ConnectionShape {
  host?: unknown;
  port?: unknown;
  path?: unknown;
  sentinels?: unknown;
  isCluster?: unknown;
  options?: ConnectionShape;
}

/**
 * `server.address` / `server.port` from a BullMQ `connection` option: an ioredis options object or
 * an ioredis instance (its `.options`). ioredis's defaults (`localhost`, 6379) apply when an options
 * object leaves them out; Unix sockets, Sentinel and Cluster connections (whose server is not one
 * host named in the options) and unknown shapes give no attributes. Never throws.
 */
export function serverAttributes(connection: unknown): Attributes {
  if (!connection || typeof connection !== 'object') return {};
  const c = connection as ConnectionShape;
  if (c.isCluster === true) return {};
  const source = c.options && typeof c.options === 'object' ? c.options : c;
  if (typeof source.path === 'string') return {};
  if (Array.isArray(source.sentinels) && source.sentinels.length > 0) return {};
  const host = typeof source.host === 'string' && source.host !== '' ? source.host : 'localhost';
  const port = typeof source.port === 'number' ? source.port : 6379;
  return { [ATTR_SERVER_ADDRESS]: host, [ATTR_SERVER_PORT]: port };
}
