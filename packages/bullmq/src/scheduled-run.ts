import { createHash } from 'node:crypto';
import type { MessageContext } from '@hoptrace/core/adapter';
import { type SpanContext, TraceFlags, trace } from '@opentelemetry/api';
import { jobPrefix, type PrefixedJobLike } from './job-prefix.ts';

/** The members of a job {@link scheduledRun} reads (a BullMQ `Job`, or a sandboxed processor's job). */
export interface RunJobLike extends PrefixedJobLike {
  timestamp?: unknown;
}

/**
 * The creation context of one run of a scheduled job: a new trace per run, whose trace id and root
 * span id are derived from what every attempt of the run reads alike (in any worker process) and
 * another run does not share, so its attempts are siblings in the same trace under one virtual root
 * (never exported). BullMQ gives runs of the same schedule the same job id
 * (`repeat:{scheduler}:{millis}`, the millis aligned to a cron pattern or an `every` slot) in every
 * deployment: under another key prefix, in another Redis, or from another upsert of the scheduler.
 * The job's key prefix, its creation time (`timestamp`, kept by every retry, stall and re-run) and
 * the scheduling context (a new span per upsert) tell those apart. The scheduler's sampling decision
 * and baggage carry over; the scheduling context itself becomes a link.
 */
export function scheduledRun(
  job: RunJobLike,
  queue: string | undefined,
  jobId: string,
  creation: MessageContext,
): MessageContext {
  const scheduling = creation.spanContext;
  const timestamp = typeof job.timestamp === 'number' ? String(job.timestamp) : '';
  const digest = createHash('sha256')
    .update(
      [
        'hoptrace-run',
        queue ?? '',
        jobId,
        jobPrefix(job) ?? '',
        timestamp,
        scheduling ? `${scheduling.traceId}-${scheduling.spanId}` : '',
      ].join('\u0000'),
    )
    .digest('hex');
  const run: SpanContext = {
    traceId: digest.slice(0, 32),
    spanId: digest.slice(32, 48),
    // Sampled when the scheduling context is unknown.
    traceFlags: creation.spanContext
      ? creation.spanContext.traceFlags & TraceFlags.SAMPLED
      : TraceFlags.SAMPLED,
    isRemote: true,
  };
  return { context: trace.setSpanContext(trace.deleteSpan(creation.context), run), spanContext: run };
}
