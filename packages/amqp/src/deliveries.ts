import { ATTR_ERROR_TYPE, type MessagingMetrics, recordFailure, type SpanHandle } from '@hoptrace/core';
import { type Attributes, SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR_HOPTRACE_RABBITMQ_REQUEUE,
  ATTR_HOPTRACE_RABBITMQ_SETTLEMENT,
  ERROR_REJECTED,
  ERROR_SETTLE_TIMEOUT,
} from './attributes.ts';

/** How a delivery was settled. */
export type Settlement = 'ack' | 'nack' | 'reject';

/** One delivery whose `process` span is open until the message is settled. */
export class Delivery {
  readonly handle: SpanHandle;
  readonly startMs: number;
  /** Metric attributes (system, operation, low-cardinality destination). */
  readonly metricAttributes: Readonly<Attributes>;
  /** The queue the message was consumed from. */
  readonly queue: string;
  /** The handler's failure, if it threw or rejected (kept over later settle outcomes). */
  errorType: string | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(handle: SpanHandle, startMs: number, metricAttributes: Readonly<Attributes>, queue: string) {
    this.handle = handle;
    this.queue = queue;
    this.startMs = startMs;
    this.metricAttributes = metricAttributes;
  }
}

/**
 * The open `process` spans of one channel by delivery tag (O(1) per settle; `allUpTo` walks the
 * open ones). Every path that ends a span goes through {@link DeliveryTracker.finish}, and a
 * {@link SpanHandle} makes each end happen once.
 */
export class DeliveryTracker {
  readonly open = new Map<number, Delivery>();
  readonly #metrics: MessagingMetrics;
  readonly #timeoutMs: number | undefined;

  constructor(metrics: MessagingMetrics, timeoutMs: number | undefined) {
    this.#metrics = metrics;
    this.#timeoutMs = timeoutMs;
  }

  /** Tracks a delivery until it is settled (or its channel closes, or the timeout fires). */
  track(tag: number, delivery: Delivery): void {
    // A tag already open means amqplib reused it (a new channel incarnation): end the old one.
    const previous = this.open.get(tag);
    if (previous) this.#abort(previous, 'delivery_tag_reused', 'delivery tag reused before settle');
    this.open.set(tag, delivery);
    if (this.#timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        if (this.open.get(tag) === delivery) this.open.delete(tag);
        this.#abort(
          delivery,
          ERROR_SETTLE_TIMEOUT,
          `message not settled within settleTimeoutMs (${this.#timeoutMs} ms)`,
        );
      }, this.#timeoutMs);
      timer.unref?.();
      delivery.timer = timer;
    }
  }

  /**
   * Ends the span of delivery `tag` (and with `multiple`, of every open tag <= `tag`) as settled.
   * Tags hoptrace does not track (got messages, noAck) are ignored.
   *
   * @param collect - receives the settled deliveries (for settle spans).
   */
  settle(tag: number, multiple: boolean, how: Settlement, requeue: boolean, collect?: Delivery[]): void {
    if (!multiple) {
      const delivery = this.open.get(tag);
      if (delivery) {
        this.open.delete(tag);
        this.#settleOne(delivery, how, requeue, collect);
      }
      return;
    }
    for (const [openTag, delivery] of this.open) {
      if (openTag <= tag) {
        this.open.delete(openTag);
        this.#settleOne(delivery, how, requeue, collect);
      }
    }
  }

  /** `ackAll` / `nackAll`: settles every open delivery. */
  settleAll(how: Settlement, requeue: boolean, collect?: Delivery[]): void {
    for (const delivery of this.open.values()) this.#settleOne(delivery, how, requeue, collect);
    this.open.clear();
  }

  /** Ends every open span with an error (channel or connection closed). */
  abortAll(errorType: string, message: string): void {
    if (this.open.size === 0) return;
    const open = [...this.open.values()];
    this.open.clear();
    for (const delivery of open) this.#abort(delivery, errorType, message);
  }

  /** Ends a delivery's span (noAck handler done, or settled) and records its metrics. */
  finish(delivery: Delivery): void {
    if (delivery.timer !== undefined) clearTimeout(delivery.timer);
    if (!delivery.handle.end()) return;
    const attributes =
      delivery.errorType === undefined
        ? delivery.metricAttributes
        : { ...delivery.metricAttributes, [ATTR_ERROR_TYPE]: delivery.errorType };
    this.#metrics.recordProcess(delivery.startMs, 1, attributes);
  }

  #settleOne(delivery: Delivery, how: Settlement, requeue: boolean, collect: Delivery[] | undefined): void {
    if (delivery.handle.ended) return;
    const span = delivery.handle.span;
    span.setAttribute(ATTR_HOPTRACE_RABBITMQ_SETTLEMENT, how);
    if (how !== 'ack') {
      span.setAttribute(ATTR_HOPTRACE_RABBITMQ_REQUEUE, requeue);
      // Dropped or dead-lettered: the message was not processed. A handler failure already
      // recorded stays the span's error.type.
      if (!requeue && delivery.errorType === undefined) {
        delivery.errorType = ERROR_REJECTED;
        span.setAttribute(ATTR_ERROR_TYPE, ERROR_REJECTED);
        span.setStatus({ code: SpanStatusCode.ERROR, message: `message ${how}ed without requeue` });
      }
    }
    collect?.push(delivery);
    this.finish(delivery);
  }

  #abort(delivery: Delivery, errorType: string, message: string): void {
    if (delivery.handle.ended) return;
    if (delivery.errorType === undefined) {
      delivery.errorType = errorType;
      const error = new Error(message);
      error.name = errorType;
      recordFailure(delivery.handle.span, error, errorType);
    }
    this.finish(delivery);
  }
}
