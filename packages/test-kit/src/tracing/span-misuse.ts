/**
 * The SDK's complaints about span misuse, collected through the OpenTelemetry diagnostic logger: a
 * span ended twice, written after its end, given an attribute key or value it must drop, an invalid
 * status message, an end before its start, more links or events than it keeps. hoptrace must never
 * cause any of these; every test file checks after each test that none appeared (`setup.ts`).
 *
 * @packageDocumentation
 */

import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api';

/** The SDK's messages (`@opentelemetry/sdk-trace` 2.x `Span`) that mean a span was misused. */
const SPAN_MISUSE =
  /only call end\(\) on a span once|on ended Span|Invalid attribute (key|value)|Dropping invalid status|Inconsistent start and end time|Failed to record an exception|because (link|event)CountLimit reached|No events allowed/;

/** Keeps the misuse messages of the warn and error levels; drops everything else. */
class SpanMisuseLog implements DiagLogger {
  readonly complaints: string[] = [];
  readonly error = (message: string): void => this.#note(message);
  readonly warn = (message: string): void => this.#note(message);
  readonly info = (): void => {};
  readonly debug = (): void => {};
  readonly verbose = (): void => {};

  #note(message: unknown): void {
    if (typeof message === 'string' && SPAN_MISUSE.test(message)) this.complaints.push(message);
  }
}

let log: SpanMisuseLog | undefined;

/**
 * Registers the collecting diagnostic logger globally (once per process; later calls keep it). The
 * test setup file does it for every test file; processes a test starts (fixtures) call it themselves.
 */
export function watchSpanMisuse(): void {
  if (log) return;
  log = new SpanMisuseLog();
  diag.setLogger(log, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

/** The complaints collected since the last {@link assertNoSpanMisuse}, and forgets them. */
export function takeSpanMisuse(): string[] {
  return log ? log.complaints.splice(0) : [];
}

/** Throws, quoting them, when the SDK complained about span misuse since the last call. */
export function assertNoSpanMisuse(): void {
  const complaints = takeSpanMisuse();
  if (complaints.length > 0) {
    throw new Error(`the SDK reported ${complaints.length} span misuse(s): ${complaints.join(' | ')}`);
  }
}
