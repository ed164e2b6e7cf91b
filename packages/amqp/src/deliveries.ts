import type { Operation } from '@hoptrace/core/adapter';
import {
  ATTR_HOPTRACE_MAX_OPEN_DELIVERIES,
  ATTR_HOPTRACE_RABBITMQ_REQUEUE,
  ATTR_HOPTRACE_RABBITMQ_SETTLEMENT,
  ERROR_DELIVERY_TAG_REUSED,
  ERROR_REJECTED,
  ERROR_SETTLE_TIMEOUT,
  EVENT_HOPTRACE_UNTRACKED,
} from './attributes.ts';

/** How a delivery was settled. */
export type Settlement = 'ack' | 'nack' | 'reject';

/** One delivery whose `process` operation is open until the message is settled. */
export class Delivery {
  readonly operation: Operation;
  /** The queue the message was consumed from. */
  readonly queue: string;
  /** The channel's delivery tag. */
  readonly tag: number;
  /**
   * The `fields` object of the message amqplib delivered (one per delivery), by which
   * {@link findOpenDelivery} knows the message again; the message itself (its content) is not kept.
   */
  readonly fields: object | undefined;
  /** Still open in its tracker (false once settled, timed out or pushed out). */
  tracked = false;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(operation: Operation, queue: string, tag: number, fields?: object) {
    this.operation = operation;
    this.queue = queue;
    this.tag = tag;
    this.fields = fields;
  }
}

/**
 * The trackers that have had an open delivery since their channel last closed, process-wide: what
 * {@link findOpenDelivery} searches. A tracker joins with its first delivery and leaves when its
 * channel closes (or a reused tag ends what it held), not each time it runs empty: a channel with
 * prefetch 1 would otherwise join and leave with every message, and a `Set` going 0 -> 1 -> 0
 * rebuilds its table on many of those steps. A tracker holds no channel, only its open deliveries;
 * one left here empty costs an empty map, until its channel's close (which hoptrace always sees).
 */
const withOpenDeliveries = new Set<DeliveryTracker>();

/**
 * The open delivery of `message` (a message a traced consumer was handed, or a copy sharing its
 * `fields`), in whichever traced channel holds it; undefined once settled or ended, or for a message
 * hoptrace does not track. Costs a look-up per traced channel that has had a delivery since it last
 * closed (see {@link withOpenDeliveries}), and nothing per message.
 */
export function findOpenDelivery(message: { fields?: unknown }): Delivery | undefined {
  const { fields } = message;
  if (fields === null || typeof fields !== 'object') return undefined;
  const tag = (fields as { deliveryTag?: unknown }).deliveryTag;
  if (typeof tag !== 'number') return undefined;
  for (const tracker of withOpenDeliveries) {
    const delivery = tracker.get(tag);
    if (delivery?.fields === fields) return delivery;
  }
  return undefined;
}

/** A compaction happens once the queue holds more than twice the open deliveries plus this. */
const COMPACT_SLACK = 64;
/** The key of the entry that keeps a tracker's map from ever being empty (see `DeliveryTracker`). */
const NO_TAG: unique symbol = Symbol('no delivery');

/**
 * The open `process` operations of one channel. Delivery tags grow with each delivery on a channel,
 * so the deliveries are kept in an array in tag order (a queue with a moving head) beside a map by
 * tag: a single settle is a map look-up; a `multiple` settle and the bound walk from the head and
 * stop at the first tag past the one settled, so their cost is the deliveries they settle (plus, once
 * each, the entries single settles left behind), never the deliveries open. Bounded by `maxOpen`.
 * Every path that ends a span goes through the delivery's {@link Operation}, which ends it once.
 */
export class DeliveryTracker {
  /**
   * Open deliveries by tag, plus one entry under {@link NO_TAG} that is never removed: a map whose
   * last entry is deleted shrinks (reallocates) its table, and with one delivery open at a time
   * (prefetch 1) that would happen with every message.
   */
  readonly #byTag = new Map<number | typeof NO_TAG, Delivery | undefined>([[NO_TAG, undefined]]);
  /** Deliveries in tag order from `#head`; entries with `tracked === false` are left-overs. */
  #queue: Delivery[] = [];
  #head = 0;
  #lastTag = Number.NEGATIVE_INFINITY;
  /** Whether {@link withOpenDeliveries} holds it. */
  #listed = false;
  readonly #timeoutMs: number | undefined;
  readonly #maxOpen: number;

  constructor(timeoutMs: number | undefined, maxOpen: number) {
    this.#timeoutMs = timeoutMs;
    this.#maxOpen = maxOpen;
  }

  /** Open deliveries now. */
  get size(): number {
    return this.#byTag.size - 1;
  }

  /** The open delivery of `tag`, if any. */
  get(tag: number): Delivery | undefined {
    return this.#byTag.get(tag);
  }

  /** Entries the ordered queue holds (open deliveries plus left-overs not yet dropped); for tests. */
  get backlog(): number {
    return this.#queue.length - this.#head;
  }

  /** Tracks a delivery until it is settled (or its channel closes, the timeout fires, or the bound pushes it out). */
  track(delivery: Delivery): void {
    const { tag } = delivery;
    if (tag <= this.#lastTag) {
      // Tags only grow on a channel: a smaller or equal one means a new channel incarnation reused
      // them, and the open deliveries can no longer be settled.
      this.abortAll(ERROR_DELIVERY_TAG_REUSED, 'delivery tag reused before settle');
    }
    this.#lastTag = tag;
    while (this.size >= this.#maxOpen) {
      const oldest = this.#shift();
      if (oldest) this.#untrack(oldest);
    }
    this.#compact();
    this.#open(delivery);
    this.#queue.push(delivery);
    if (this.#timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        this.#forget(delivery);
        this.#compact();
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
    if (tag !== undefined && !multiple) {
      const delivery = this.#byTag.get(tag);
      return delivery ? [delivery] : [];
    }
    const out: Delivery[] = [];
    const queue = this.#queue;
    for (let i = this.#head; i < queue.length; i++) {
      const delivery = queue[i] as Delivery;
      if (tag !== undefined && delivery.tag > tag) break;
      if (delivery.tracked) out.push(delivery);
    }
    return out;
  }

  /**
   * Ends the span of delivery `tag` (with `multiple`, of every open tag <= `tag`; `undefined` tag:
   * every open one) as settled. Tags hoptrace does not track (got messages, noAck) are ignored.
   */
  settle(tag: number | undefined, multiple: boolean, how: Settlement, requeue: boolean): void {
    if (tag !== undefined && !multiple) {
      const delivery = this.#byTag.get(tag);
      if (delivery) {
        this.#forget(delivery);
        this.#compact();
        this.#settleOne(delivery, how, requeue);
      }
      return;
    }
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const delivery = queue[this.#head] as Delivery;
      if (tag !== undefined && delivery.tag > tag) break;
      this.#head++;
      if (!delivery.tracked) continue;
      this.#forget(delivery);
      this.#settleOne(delivery, how, requeue);
    }
    this.#compact();
  }

  /**
   * `channel.recover()`: every open delivery will be redelivered once the broker reads the request.
   * They leave the tracker now (a settle naming one after the request names a tag the broker no
   * longer holds) and are returned, still open, to end when the broker answers
   * ({@link endRecovered}), or with the close of a channel that closes first. Those with a tag up to
   * `keepUpTo` stay tracked: an `allUpTo` settle not yet proven may have settled them before the
   * broker read the recover (see `UnprovenSettles`).
   */
  takeRecovered(keepUpTo = 0): Delivery[] {
    const taken: Delivery[] = [];
    for (const delivery of this.#drain()) {
      if (delivery.tag <= keepUpTo) {
        this.#open(delivery);
        this.#queue.push(delivery);
        continue;
      }
      if (delivery.timer !== undefined) clearTimeout(delivery.timer);
      delivery.timer = undefined;
      taken.push(delivery);
    }
    return taken;
  }

  /** Ends deliveries {@link takeRecovered} took as `recovered` (the broker answered the recover). */
  static endRecovered(deliveries: readonly Delivery[]): void {
    for (const { operation } of deliveries) {
      operation.setAttribute(ATTR_HOPTRACE_RABBITMQ_SETTLEMENT, 'recovered');
      operation.end();
    }
  }

  /** Ends every open span with an error (channel or connection closed). */
  abortAll(errorType: string, message: string): void {
    for (const delivery of this.#drain()) this.#abort(delivery, errorType, message);
  }

  #drain(): Delivery[] {
    if (this.#listed) {
      withOpenDeliveries.delete(this);
      this.#listed = false;
    }
    if (this.size === 0) return [];
    const open = this.peek(undefined, true);
    for (const delivery of open) delivery.tracked = false;
    this.#byTag.clear();
    this.#byTag.set(NO_TAG, undefined);
    this.#queue = [];
    this.#head = 0;
    return open;
  }

  /** Puts a delivery in the map (the caller queues it). */
  #open(delivery: Delivery): void {
    if (!this.#listed) {
      withOpenDeliveries.add(this);
      this.#listed = true;
    }
    delivery.tracked = true;
    this.#byTag.set(delivery.tag, delivery);
  }

  /** Removes a delivery from the map; its queue entry becomes a left-over, dropped later. */
  #forget(delivery: Delivery): void {
    if (!delivery.tracked) return;
    delivery.tracked = false;
    this.#byTag.delete(delivery.tag);
  }

  /** The oldest still tracked delivery, removed from the queue (left-overs before it are dropped). */
  #shift(): Delivery | undefined {
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const delivery = queue[this.#head++] as Delivery;
      if (delivery.tracked) {
        this.#forget(delivery);
        return delivery;
      }
    }
    return undefined;
  }

  /** Keeps the queue within twice the open deliveries: left-overs and the consumed head go. */
  #compact(): void {
    const backlog = this.#queue.length - this.#head;
    if (backlog === 0) {
      this.#queue = [];
      this.#head = 0;
      return;
    }
    if (backlog <= 2 * this.size + COMPACT_SLACK && this.#head <= backlog + COMPACT_SLACK) return;
    const kept: Delivery[] = [];
    for (let i = this.#head; i < this.#queue.length; i++) {
      const delivery = this.#queue[i] as Delivery;
      if (delivery.tracked) kept.push(delivery);
    }
    this.#queue = kept;
    this.#head = 0;
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
    delivery.operation.addEvent(EVENT_HOPTRACE_UNTRACKED, {
      [ATTR_HOPTRACE_MAX_OPEN_DELIVERIES]: this.#maxOpen,
    });
    this.#end(delivery);
  }

  #abort(delivery: Delivery, errorType: string, message: string): void {
    delivery.operation.noteFailureType(errorType, message);
    this.#end(delivery);
  }
}
