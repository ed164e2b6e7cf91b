import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import {
  MESSAGING_DURATION_BUCKETS,
  METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES,
  METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
  METRIC_MESSAGING_CLIENT_SENT_MESSAGES,
  METRIC_MESSAGING_PROCESS_DURATION,
} from './semconv.ts';

/**
 * The four messaging metrics from the conventions, created on one meter. With no MeterProvider
 * registered the API hands out a no-op meter, so recording costs next to nothing.
 */
export class MessagingMetrics {
  /** `messaging.client.operation.duration` (s): send, receive, settle and create calls. */
  readonly operationDuration: Histogram;
  /** `messaging.process.duration` (s): the handler's work per message or batch. */
  readonly processDuration: Histogram;
  /** `messaging.client.sent.messages`. */
  readonly sentMessages: Counter;
  /** `messaging.client.consumed.messages`. */
  readonly consumedMessages: Counter;

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
  }

  /** Records a duration in seconds from a `performance.now()` start (milliseconds). */
  static secondsSince(startMs: number): number {
    return (performance.now() - startMs) / 1000;
  }

  /** Records one client operation: its duration and, for sends, the messages it carried. */
  recordSend(startMs: number, messages: number, attributes: Attributes): void {
    this.operationDuration.record(MessagingMetrics.secondsSince(startMs), attributes);
    this.sentMessages.add(messages, attributes);
  }

  /** Records one processing: its duration and the messages it consumed. */
  recordProcess(startMs: number, messages: number, attributes: Attributes): void {
    this.processDuration.record(MessagingMetrics.secondsSince(startMs), attributes);
    this.consumedMessages.add(messages, attributes);
  }
}
