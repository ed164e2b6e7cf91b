import type { DeliveryTracker, Settlement } from './deliveries.ts';

/** One `allUpTo` settle whose tag hoptrace has not seen delivered on the channel (yet). */
interface UnprovenSettle {
  tag: number;
  how: Settlement;
  requeue: boolean;
}

/** How many such settles a channel keeps; past it, the oldest is forgotten (its spans end at the close). */
const MAX_UNPROVEN = 64;

/**
 * `allUpTo` settles naming a tag greater than any hoptrace saw delivered on the channel. Either the
 * message came from this channel through a path hoptrace does not see (a `get` on the raw channel
 * object), and the broker settled every delivery up to it; or it came from another channel (or the
 * tag is made up), and the broker settled nothing and closes the channel. Which one is known only
 * later: the broker numbers a channel's deliveries 1, 2, 3..., so once the channel delivers a tag at
 * least as great, the settle's tag was one of its own and was accepted (a refused one would have
 * closed the channel first): the deliveries up to it end then, with the settle's outcome. A channel
 * that closes first ends them `channel_closed` (a refused settle; or, when nothing was delivered
 * since, a close hoptrace cannot tell from one). A `recover()` meanwhile does not end them as
 * recovered: the broker reads the settle before the recover ({@link greatestTag}).
 */
export class UnprovenSettles {
  #pending: UnprovenSettle[] = [];

  /** Notes a settle that may or may not have settled the deliveries up to `tag`. */
  add(tag: number, how: Settlement, requeue: boolean): void {
    this.#pending.push({ tag, how, requeue });
    if (this.#pending.length > MAX_UNPROVEN) this.#pending.shift();
  }

  /**
   * The channel delivered `tag`: every settle noted with a tag up to it was accepted; in the order
   * they were made, they end the deliveries they settled.
   */
  delivered(tag: number, deliveries: DeliveryTracker): void {
    const pending = this.#pending;
    while (pending.length > 0 && (pending[0] as UnprovenSettle).tag <= tag) {
      const settle = pending.shift() as UnprovenSettle;
      deliveries.settle(settle.tag, true, settle.how, settle.requeue);
    }
  }

  /** The greatest tag of a settle not yet proven; 0 when there is none. */
  get greatestTag(): number {
    let greatest = 0;
    for (const settle of this.#pending) if (settle.tag > greatest) greatest = settle.tag;
    return greatest;
  }

  /** The channel closed: nothing more can be proven. */
  clear(): void {
    this.#pending = [];
  }
}
