import type { Operation } from '@hoptrace/core/adapter';
import {
  ATTR_HOPTRACE_RABBITMQ_REQUEUE,
  ATTR_HOPTRACE_RABBITMQ_SETTLEMENT,
  ERROR_REJECTED,
  ERROR_SETTLE_TIMEOUT,
} from './attributes.ts';

/** How a delivery was settled. */
export type Settlement = 'ack' | 'nack' | 'reject';

/** Event on a process span that `maxOpenDeliveries` ended before its message was settled. */
export const EVENT_HOPTRACE_UNTRACKED = 'hoptrace.untracked';

/** One delivery whose `process` operation is open until the message is settled. */
export class Delivery {
  readonly operation: Operation;
  /** The queue the message was consumed from. */
  readonly queue: string;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(operation: Operation, queue: string) {
    this.operation = operation;
    this.queue = queue;
  }
}

/**
 * The open `process` operations of one channel by delivery tag. Tags grow with each delivery on a
 * channel and a Map keeps insertion order, so the open deliveries are always in tag order: a
 * `multiple` settle walks only the deliveries it settles (O(settled), not O(open)), and the oldest
 * delivery is the first entry. Bounded by `maxOpen`. Every path that ends a span goes through the
 * delivery's {@link Operation}, which ends it once.
 */
export class DeliveryTracker {
  readonly #open = new Map<number, Delivery>();
  readonly #timeoutMs: number | undefined;
  readonly #maxOpen: number;

  constructor(timeoutMs: number | undefined, maxOpen: number) {
    this.#timeoutMs = timeoutMs;
    this.#maxOpen = maxOpen;
  }

  /** Open deliveries now. */
  get size(): number {
    return this.#open.size;
  }

  /** Tracks a delivery until it is settled (or its channel closes, the timeout fires, or the bound pushes it out). */
  track(tag: number, delivery: Delivery): void {
    // A tag already open means amqplib reused it (a new channel incarnation): end the old one.
    const previous = this.#open.get(tag);
    if (previous) {
      this.#open.delete(tag);
      this.#abort(previous, 'delivery_tag_reused', 'delivery tag reused before settle');
    }
    while (this.#open.size >= this.#maxOpen) {
      const [oldestTag, oldest] = this.#open.entries().next().value as [number, Delivery];
      this.#open.delete(oldestTag);
      this.#untrack(oldest);
    }
    this.#open.set(tag, delivery);
    if (this.#timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        if (this.#open.get(tag) === delivery) this.#open.delete(tag);
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
   * The deliveries a settle of `tag` would end, in tag order, without ending them (`undefined` tag:
   * all). O(settled).
   */
  peek(tag: number | undefined, multiple: boolean): Delivery[] {
    if (tag === undefined) return [...this.#open.values()];
    if (!multiple) {
      const delivery = this.#open.get(tag);
      return delivery ? [delivery] : [];
    }
    const out: Delivery[] = [];
    for (const [openTag, delivery] of this.#open) {
      if (openTag > tag) break;
      out.push(delivery);
    }
    return out;
  }

  /**
   * Ends the span of delivery `tag` (with `multiple`, of every open tag <= `tag`; `undefined` tag:
   * every open one) as settled. Tags hoptrace does not track (got messages, noAck) are ignored.
   */
  settle(tag: number | undefined, multiple: boolean, how: Settlement, requeue: boolean): void {
    if (tag !== undefined && !multiple) {
      const delivery = this.#open.get(tag);
      if (delivery) {
        this.#open.delete(tag);
        this.#settleOne(delivery, how, requeue);
      }
      return;
    }
    for (const [openTag, delivery] of this.#open) {
      if (tag !== undefined && openTag > tag) break;
      this.#open.delete(openTag);
      this.#settleOne(delivery, how, requeue);
    }
  }

  /** `channel.recover()`: every open delivery will be redelivered; their spans end as `recovered`. */
  recoverAll(): void {
    for (const delivery of this.#drain()) {
      delivery.operation.setAttribute(ATTR_HOPTRACE_RABBITMQ_SETTLEMENT, 'recovered');
      this.#end(delivery);
    }
  }

  /** Ends every open span with an error (channel or connection closed). */
  abortAll(errorType: string, message: string): void {
    for (const delivery of this.#drain()) this.#abort(delivery, errorType, message);
  }

  /** Ends a delivery's span now (a noAck handler is done). */
  finish(delivery: Delivery): void {
    this.#end(delivery);
  }

  #drain(): Delivery[] {
    if (this.#open.size === 0) return [];
    const open = [...this.#open.values()];
    this.#open.clear();
    return open;
  }

  #end(delivery: Delivery): void {
    if (delivery.timer !== undefined) clearTimeout(delivery.timer);
    delivery.operation.end();
  }

  #settleOne(delivery: Delivery, how: Settlement, requeue: boolean): void {
    const { operation } = delivery;
    if (operation.ended) return;
    operation.setAttribute(ATTR_HOPTRACE_RABBITMQ_SETTLEMENT, how);
    if (how !== 'ack') {
      operation.setAttribute(ATTR_HOPTRACE_RABBITMQ_REQUEUE, requeue);
      // Dropped or dead-lettered: the message was not processed. A handler failure already noted
      // stays the span's error.type.
      if (!requeue) operation.noteFailureType(ERROR_REJECTED, `message ${how}ed without requeue`);
    }
    this.#end(delivery);
  }

  #untrack(delivery: Delivery): void {
    delivery.operation.setAttribute(ATTR_HOPTRACE_RABBITMQ_SETTLEMENT, 'untracked');
    delivery.operation.addEvent(EVENT_HOPTRACE_UNTRACKED, { 'hoptrace.max_open_deliveries': this.#maxOpen });
    this.#end(delivery);
  }

  #abort(delivery: Delivery, errorType: string, message: string): void {
    delivery.operation.noteFailureType(errorType, message);
    this.#end(delivery);
  }
}
