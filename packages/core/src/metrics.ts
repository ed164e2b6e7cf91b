import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Histogram,
  type Meter,
} from '@opentelemetry/api';
import { METRIC_HOPTRACE_TIME_IN_QUEUE } from './names.ts';
import {
  MESSAGING_DURATION_BUCKETS,
  METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES,
  METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
  METRIC_MESSAGING_CLIENT_SENT_MESSAGES,
  METRIC_MESSAGING_PROCESS_DURATION,
} from './semconv.ts';

/** The kinds of operation a metric is recorded for. */
export type MetricOperation = 'send' | 'process' | 'receive' | 'settle';

/**
 * The messaging metrics from the conventions plus hoptrace's time in queue, created on one meter.
 * Adapters hold one only when a MeterProvider is registered ({@link createMessagingMetrics}), so
 * without one no metric work happens at all (no clock reads, no attribute objects).
 */
export class MessagingMetrics {
  /** `messaging.client.operation.duration` (s): send, receive and settle calls. */
  readonly operationDuration: Histogram;
  /** `messaging.process.duration` (s): the handler's work per message or batch. */
  readonly processDuration: Histogram;
  /** `messaging.client.sent.messages`. */
  readonly sentMessages: Counter;
  /** `messaging.client.consumed.messages`. */
  readonly consumedMessages: Counter;
  /** `hoptrace.messaging.time_in_queue` (s). */
  readonly timeInQueue: Histogram;

  /** @param meter - e.g. `metrics.getMeter('@hoptrace/kafka')`. */
  constructor(meter: Meter) {
    const advice = { explicitBucketBoundaries: [...MESSAGING_DURATION_BUCKETS] };
    this.operationDuration = meter.createHistogram(METRIC_MESSAGING_CLIENT_OPERATION_DURATION, {
      unit: 's',
      description: 'Duration of messaging operation initiated by a producer or consumer client.',
      advice,
    });
    this.processDuration = meter.createHistogram(METRIC_MESSAGING_PROCESS_DURATION, {
      unit: 's',
      description: 'Duration of processing operation.',
      advice,
    });
    this.sentMessages = meter.createCounter(METRIC_MESSAGING_CLIENT_SENT_MESSAGES, {
      unit: '{message}',
      description: 'Number of messages producer attempted to send to the broker.',
    });
    this.consumedMessages = meter.createCounter(METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES, {
      unit: '{message}',
      description: 'Number of messages that were delivered to the application.',
    });
    this.timeInQueue = meter.createHistogram(METRIC_HOPTRACE_TIME_IN_QUEUE, {
      unit: 's',
      description:
        'Time from a message being created (or a job becoming due) to the start of its processing.',
      advice,
    });
  }

  /** Seconds since a `performance.now()` reading. */
  static secondsSince(startMs: number): number {
    return (performance.now() - startMs) / 1000;
  }

  /**
   * Records one operation: its duration, and the messages it carried (`send`), delivered (`process`,
   * and `receive` when `count` > 0). `settle` records the duration only.
   */
  record(operation: MetricOperation, startMs: number, count: number, attributes: Attributes): void {
    const seconds = MessagingMetrics.secondsSince(startMs);
    if (operation === 'process') {
      this.processDuration.record(seconds, attributes);
      this.consumedMessages.add(count, attributes);
      return;
    }
    this.operationDuration.record(seconds, attributes);
    if (operation === 'send') this.sentMessages.add(count, attributes);
    else if (operation === 'receive' && count > 0) this.consumedMessages.add(count, attributes);
  }

  /** Records a send (kept for callers of the 0.x API). */
  recordSend(startMs: number, messages: number, attributes: Attributes): void {
    this.record('send', startMs, messages, attributes);
  }

  /** Records a processing (kept for callers of the 0.x API). */
  recordProcess(startMs: number, messages: number, attributes: Attributes): void {
    this.record('process', startMs, messages, attributes);
  }
}

/**
 * The metrics for `meter`, or `undefined` when `meter` is the API's no-op meter (no MeterProvider
 * was registered): a meter handed out then stays a no-op forever, so there is nothing to record.
 */
export function createMessagingMetrics(meter: Meter): MessagingMetrics | undefined {
  if (meter === createNoopMeter()) return undefined;
  return new MessagingMetrics(meter);
}
