import type { HeaderCarrier } from './carrier.ts';
import { type FailureInput, failureHeaders, readFailureLineage } from './lineage.ts';
import { FAILURE_HEADERS, HEADER_FAILED_CONTEXT_PREFIX } from './names.ts';

const LINEAGE_HEADER_NAMES = new Set<string>(Object.values(FAILURE_HEADERS));

/**
 * Whether `name` is one of hoptrace's failure lineage headers (`FAILURE_HEADERS` or a
 * `hoptrace-failed-*` context field): a dead-letter or retry copy replaces these rather than keeping
 * the ones of an earlier failure.
 */
export function isLineageHeader(name: string): boolean {
  return LINEAGE_HEADER_NAMES.has(name) || name.startsWith(HEADER_FAILED_CONTEXT_PREFIX);
}

/**
 * The lineage headers of the next dead-letter or retry copy of a failed message whose received
 * headers are `original`: {@link failureHeaders} of `input`, with `attempts` defaulting to one more
 * than the message's own lineage carried (so each trip through a retry topic counts), or `1`.
 * Never throws.
 */
export function nextFailureHeaders(original: HeaderCarrier, input: FailureInput): Record<string, string> {
  if (input.attempts !== undefined) return failureHeaders(input);
  const previous = readFailureLineage(original)?.attempts;
  return failureHeaders({ ...input, attempts: previous === undefined ? 1 : previous + 1 });
}
