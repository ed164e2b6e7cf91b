import { createInstrumentation, MESSAGING_SYSTEM, Operation } from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';
import { Delivery, DeliveryTracker, findOpenDelivery } from '../src/deliveries.ts';

const instr = createInstrumentation({ name: 'test', version: '0', system: MESSAGING_SYSTEM.rabbitmq });

/** A delivery whose `tag` reads are counted, to measure how much of the tracker a settle walks. */
function counted(tag: number, reads: { n: number }): Delivery {
  const delivery = new Delivery(new Operation(instr, undefined), 'q', tag);
  Object.defineProperty(delivery, 'tag', {
    get: () => {
      reads.n++;
      return tag;
    },
  });
  return delivery;
}

describe('DeliveryTracker (ack(msg, true) cost and the open bound)', () => {
  it('a multiple settle walks only the deliveries it settles, however many are open', () => {
    const reads = { n: 0 };
    const tracker = new DeliveryTracker(undefined, Number.POSITIVE_INFINITY);
    const open = 40_000;
    const all: Delivery[] = [];
    for (let tag = 1; tag <= open; tag++) {
      const delivery = counted(tag, reads);
      all.push(delivery);
      tracker.track(delivery);
    }
    let next = open + 1;
    // The classic pattern: settle the oldest with allUpTo while new deliveries keep arriving.
    for (let oldest = 1; oldest <= 20_000; oldest++) {
      reads.n = 0;
      tracker.settle(oldest, true, 'ack', false);
      // The settled one plus the first one past it, each read a bounded number of times.
      expect(reads.n).toBeLessThanOrEqual(8);
      tracker.track(counted(next++, reads));
    }
    expect(tracker.size).toBe(open);
    expect(all.slice(0, 20_000).every((d) => d.operation.ended)).toBe(true);
    expect(all.slice(20_000).some((d) => d.operation.ended)).toBe(false);
    expect(tracker.backlog).toBeLessThanOrEqual(2 * open + 64);
  });

  it('single acks out of order leave no unbounded backlog behind a stuck oldest delivery', () => {
    const tracker = new DeliveryTracker(undefined, Number.POSITIVE_INFINITY);
    const stuck = new Delivery(new Operation(instr, undefined), 'q', 1);
    tracker.track(stuck);
    for (let tag = 2; tag < 100_000; tag++) {
      tracker.track(new Delivery(new Operation(instr, undefined), 'q', tag));
      tracker.settle(tag, false, 'ack', false);
    }
    expect(tracker.size).toBe(1);
    expect(tracker.backlog).toBeLessThanOrEqual(2 + 64);
    tracker.settle(5, true, 'ack', false);
    expect(stuck.operation.ended).toBe(true);
    expect(tracker.size).toBe(0);
  });

  it('never holds more than maxOpen; a consumer that never acks keeps a bounded queue', () => {
    const tracker = new DeliveryTracker(undefined, 100);
    const all: Delivery[] = [];
    for (let tag = 1; tag <= 50_000; tag++) {
      const delivery = new Delivery(new Operation(instr, undefined), 'q', tag);
      all.push(delivery);
      tracker.track(delivery);
      expect(tracker.size).toBeLessThanOrEqual(100);
    }
    expect(tracker.backlog).toBeLessThanOrEqual(2 * 100 + 64);
    expect(all.filter((d) => !d.operation.ended)).toHaveLength(100);
    expect(all.slice(-100).every((d) => !d.operation.ended)).toBe(true);
  });

  it('a tag not greater than the last one (a reused channel) ends every open delivery', () => {
    const tracker = new DeliveryTracker(undefined, 10);
    const old = new Delivery(new Operation(instr, undefined), 'q', 5);
    tracker.track(old);
    tracker.track(new Delivery(new Operation(instr, undefined), 'q', 1));
    expect(old.operation.ended).toBe(true);
    expect(old.operation.failure?.type).toBe('delivery_tag_reused');
    expect(tracker.size).toBe(1);
  });

  it('finds an open delivery by its message fields on any tracker, and nothing once it ended, however it ended', () => {
    const one = new DeliveryTracker(undefined, 2);
    const two = new DeliveryTracker(undefined, 2);
    const fields = (tag: number) => ({ deliveryTag: tag });
    const open = (tracker: DeliveryTracker, tag: number) => {
      const f = fields(tag);
      const delivery = new Delivery(new Operation(instr, undefined), 'q', tag, f);
      tracker.track(delivery);
      return { delivery, message: { fields: f } };
    };
    const a = open(one, 1);
    const b = open(two, 1);
    expect(findOpenDelivery(a.message)).toBe(a.delivery);
    expect(findOpenDelivery(b.message)).toBe(b.delivery);
    expect(findOpenDelivery({ fields: fields(1) })).toBeUndefined();
    expect(findOpenDelivery({ fields: null })).toBeUndefined();
    one.settle(1, false, 'ack', false);
    expect(findOpenDelivery(a.message)).toBeUndefined();
    // Pushed out by the bound, recovered, aborted: gone too.
    const c = open(two, 2);
    const d = open(two, 3);
    expect(findOpenDelivery(b.message)).toBeUndefined();
    DeliveryTracker.endRecovered(two.takeRecovered());
    expect(findOpenDelivery(c.message)).toBeUndefined();
    expect(findOpenDelivery(d.message)).toBeUndefined();
    const e = open(one, 2);
    one.abortAll('channel_closed', 'closed');
    expect(findOpenDelivery(e.message)).toBeUndefined();
  });

  it('agrees with a map by tag through any mix of single and multiple settles, the bound and recovers', () => {
    // A small deterministic generator (no dependency on Math.random's sequence).
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const tracker = new DeliveryTracker(undefined, 50);
    const model = new Map<number, Delivery>();
    let next = 1;
    let mismatches = 0;
    for (let step = 0; step < 5_000; step++) {
      const action = random(10);
      const tags = [...model.keys()];
      if (action < 5) {
        const delivery = new Delivery(new Operation(instr, undefined), 'q', next++);
        if (model.size >= 50) model.delete(Math.min(...tags)); // the bound pushes the oldest out
        tracker.track(delivery);
        model.set(delivery.tag, delivery);
      } else if (action < 8) {
        // A single settle of an open tag (in or out of order) or of one that is not open.
        const tag =
          tags.length > 0 && random(4) > 0 ? (tags[random(tags.length)] as number) : random(next + 5);
        tracker.settle(tag, false, 'ack', false);
        model.delete(tag);
      } else if (action < 9) {
        const upTo = random(next + 1);
        tracker.settle(upTo, true, 'nack', true);
        for (const tag of tags) if (tag <= upTo) model.delete(tag);
      } else if (random(10) === 0) {
        const keepUpTo = random(next + 1);
        DeliveryTracker.endRecovered(tracker.takeRecovered(keepUpTo));
        for (const tag of tags) if (tag > keepUpTo) model.delete(tag);
      }
      if (tracker.size !== model.size || tracker.backlog > 2 * model.size + 64) mismatches++;
      for (let tag = Math.max(0, next - 80); tag <= next; tag++)
        if (tracker.get(tag) !== model.get(tag)) mismatches++;
    }
    expect(mismatches).toBe(0);
    for (const delivery of model.values()) expect(delivery.operation.ended).toBe(false);
  });

  it('finds deliveries whose tags are not numbers, and a look-up of any value never throws', () => {
    const tracker = new DeliveryTracker(undefined, 10);
    const odd = [Number.NaN, undefined, '7'] as unknown as number[];
    const deliveries = odd.map((tag) => new Delivery(new Operation(instr, undefined), 'q', tag));
    for (const delivery of deliveries) tracker.track(delivery);
    expect(tracker.size).toBe(3);
    expect(tracker.get(Number.NaN)).toBe(deliveries[0]);
    expect(tracker.get(undefined as unknown as number)).toBe(deliveries[1]);
    expect(tracker.get('7' as unknown as number)).toBe(deliveries[2]);
    expect(tracker.get(7)).toBeUndefined();
    const hostile = {
      valueOf() {
        throw new Error('read');
      },
    } as unknown as number;
    expect(tracker.get(hostile)).toBeUndefined();
    tracker.settle(Number.NaN, false, 'ack', false);
    expect(deliveries[0]?.operation.ended).toBe(true);
    expect(tracker.size).toBe(2);
  });
});
