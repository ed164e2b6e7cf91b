import { Writable } from 'node:stream';
import { createLogFields } from '@hoptrace/core';
import { type Logger, pino } from 'pino';

/** A parsed pino line. */
export type LogLine = Record<string, unknown> & {
  msg?: string;
  hop?: string;
  trace_id?: string;
  span_id?: string;
  /** The error code hoptrace recorded on the active span, or the original failure's on a dead-letter copy. */
  'error.type'?: string;
  /** The business code, from the allow-listed `tenant.id` baggage entry. */
  'tenant.id'?: string;
};

/**
 * A pino logger kept in memory whose lines carry the active span's ids, the `tenant.id` baggage entry
 * (the business code) and, inside a failed span or a dead-letter copy's span, the `error.type` code:
 * trace id + error code + business code on one line.
 */
export function memoryLogger(options: { echo?: boolean } = {}): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString();
      lines.push(JSON.parse(text) as LogLine);
      if (options.echo) process.stdout.write(text);
      done();
    },
  });
  return {
    logger: pino(
      { base: { service: 'order-pipeline' }, mixin: createLogFields({ baggage: ['tenant.id'] }) },
      sink,
    ),
    lines,
  };
}
