import { Writable } from 'node:stream';
import { logFields } from '@hoptrace/core';
import { type Logger, pino } from 'pino';

/** A parsed pino line. */
export type LogLine = Record<string, unknown> & {
  msg?: string;
  hop?: string;
  trace_id?: string;
  span_id?: string;
};

/** A pino logger whose lines carry `logFields()` (the active span's ids), kept in memory. */
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
    logger: pino({ base: { service: 'order-pipeline' }, mixin: () => ({ ...logFields() }) }, sink),
    lines,
  };
}
