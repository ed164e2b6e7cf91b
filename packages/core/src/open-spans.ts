/**
 * Every hoptrace span still open in the process, so that a shutdown can end them before the SDK
 * flushes: a delivery not yet acked, a message still being processed, a send waiting for its
 * transaction or its batch. Each adapter ends its spans on its own paths (settle, close, timeouts);
 * this is the last one, for a process that stops before those run.
 *
 * @packageDocumentation
 */

/** `error.type` of a span {@link endOpenSpans} ended: the process shut down while it was open. */
export const ERROR_SHUTDOWN = 'shutdown';

/**
 * The most open operations tracked at once, process-wide. Each adapter bounds what it holds open
 * (open deliveries per channel, `maxProcessingMs`, transaction and stream caps); past this, an
 * operation is not tracked (its adapter still ends it) and {@link endOpenSpans} cannot reach it.
 */
export const MAX_TRACKED_OPEN_OPERATIONS = 65_536;

/** What the registry ends: an operation whose spans record. */
export interface OpenOperation {
  /**
   * Ends the operation's spans with status ERROR and `error.type` = {@link ERROR_SHUTDOWN} (a
   * failure noted before keeps its own `error.type`).
   */
  endAtShutdown(): void;
}

/**
 * A registry entry: the operation and its neighbours. The registry is a doubly linked list, so
 * tracking and untracking cost two pointer updates and one small object; a `Set` whose size goes
 * 0 -> 1 -> 0 with every message rebuilds its hash table on many of those steps.
 */
export interface OpenEntry {
  readonly operation: OpenOperation;
  prev: OpenEntry | undefined;
  next: OpenEntry | undefined;
}

let first: OpenEntry | undefined;
let last: OpenEntry | undefined;
let openCount = 0;

/**
 * Tracks `operation` until {@link untrackOpen} is given the entry returned; undefined when the
 * registry is full.
 */
export function trackOpen(operation: OpenOperation): OpenEntry | undefined {
  if (openCount >= MAX_TRACKED_OPEN_OPERATIONS) return undefined;
  const entry: OpenEntry = { operation, prev: last, next: undefined };
  if (last === undefined) first = entry;
  else last.next = entry;
  last = entry;
  openCount++;
  return entry;
}

/** Stops tracking the operation of `entry` (it ended); a second call, or one after {@link endOpenSpans}, does nothing. */
export function untrackOpen(entry: OpenEntry): void {
  const { prev, next } = entry;
  if (prev === undefined ? first !== entry : prev.next !== entry) return;
  if (prev === undefined) first = next;
  else prev.next = next;
  if (next === undefined) last = prev;
  else next.prev = prev;
  entry.prev = undefined;
  entry.next = undefined;
  openCount--;
}

/** Operations tracked now (for tests). */
export function openOperationCount(): number {
  return openCount;
}

/**
 * Ends every hoptrace span still open in this process with status ERROR and `error.type` =
 * `shutdown` (their metrics too; a span that recorded a failure before keeps that failure's
 * `error.type`), and returns how many operations it ended. Call it when the
 * process stops, before the OpenTelemetry SDK shuts down (or register
 * {@link endOpenSpansOnShutdown} as the first span processor, which does it for you). The clients
 * are left alone: acking, committing and closing them stay the application's.
 */
export function endOpenSpans(): number {
  const operations: OpenOperation[] = [];
  for (let entry = first; entry !== undefined; entry = entry.next) operations.push(entry.operation);
  // Detach every entry, so an operation's own untrack (when it ends below) finds nothing to do.
  for (let entry = first; entry !== undefined; ) {
    const { next } = entry;
    entry.prev = undefined;
    entry.next = undefined;
    entry = next;
  }
  first = undefined;
  last = undefined;
  openCount = 0;
  for (const operation of operations) {
    try {
      operation.endAtShutdown();
    } catch {
      // Ending a span never throws in the SDK; a hostile one changes nothing for the others.
    }
  }
  return operations.length;
}

/** The span processor {@link endOpenSpansOnShutdown} returns (the SDK's `SpanProcessor` shape). */
export interface EndOpenSpansProcessor {
  onStart(): void;
  onEnd(): void;
  forceFlush(): Promise<void>;
  /** Ends every open hoptrace span ({@link endOpenSpans}). */
  shutdown(): Promise<void>;
}

/**
 * A span processor that does nothing until the tracer provider shuts down, and then ends every
 * hoptrace span still open ({@link endOpenSpans}). Register it **first** in the SDK's span
 * processors, so the spans it ends still reach the exporting processors before they flush:
 *
 * @example
 * new NodeSDK({ spanProcessors: [endOpenSpansOnShutdown(), new BatchSpanProcessor(exporter)] })
 */
export function endOpenSpansOnShutdown(): EndOpenSpansProcessor {
  return {
    onStart() {},
    onEnd() {},
    forceFlush: () => Promise.resolve(),
    shutdown: () => {
      endOpenSpans();
      return Promise.resolve();
    },
  };
}
