/**
 * Readers of RabbitMQ's `x-death` header, which the broker adds to a message each time it
 * dead-letters it. Never throw; anything unexpected is skipped.
 *
 * @packageDocumentation
 */

import { capValue } from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT,
  ATTR_HOPTRACE_RABBITMQ_DEATH_EXCHANGE,
  ATTR_HOPTRACE_RABBITMQ_DEATH_QUEUE,
  ATTR_HOPTRACE_RABBITMQ_DEATH_REASON,
} from './attributes.ts';

/** One `x-death` entry, as amqplib decodes it. */
interface DeathEntry {
  count?: unknown;
  reason?: unknown;
  queue?: unknown;
  exchange?: unknown;
}

/**
 * The number of times a message was dead-lettered, from its `x-death` header (an array of tables
 * with a `count`). Only non-negative integer counts are summed (any publisher can set `x-death`),
 * and the sum stops at `Number.MAX_SAFE_INTEGER`. Never throws; anything unexpected yields
 * `undefined`.
 */
export function deathCount(xDeath: unknown): number | undefined {
  if (!Array.isArray(xDeath) || xDeath.length === 0) return undefined;
  let total = 0;
  for (const entry of xDeath.slice(0, 64)) {
    const raw = entry !== null && typeof entry === 'object' ? (entry as DeathEntry).count : undefined;
    const count = typeof raw === 'bigint' ? Number(raw) : raw;
    if (typeof count === 'number' && Number.isInteger(count) && count >= 0) {
      total = Math.min(total + count, Number.MAX_SAFE_INTEGER);
    }
  }
  return total;
}

/**
 * Attributes describing a dead-lettered message from its `x-death` header: total count, and the
 * most recent death's reason, queue and exchange (RabbitMQ puts the most recent first). Values are
 * capped; anything unexpected is skipped. Never throws.
 */
export function deathAttributes(xDeath: unknown, out: Attributes): void {
  const count = deathCount(xDeath);
  if (count === undefined) return;
  out[ATTR_HOPTRACE_RABBITMQ_DEATH_COUNT] = count;
  const latest = (xDeath as unknown[])[0];
  if (latest === null || typeof latest !== 'object') return;
  const { reason, queue, exchange } = latest as DeathEntry;
  if (typeof reason === 'string' && reason !== '')
    out[ATTR_HOPTRACE_RABBITMQ_DEATH_REASON] = capValue(reason, 64);
  if (typeof queue === 'string' && queue !== '') out[ATTR_HOPTRACE_RABBITMQ_DEATH_QUEUE] = capValue(queue);
  if (typeof exchange === 'string' && exchange !== '')
    out[ATTR_HOPTRACE_RABBITMQ_DEATH_EXCHANGE] = capValue(exchange);
}
