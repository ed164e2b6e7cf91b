import { describe, expect, it } from 'vitest';
import { FirstDeliveries, MAX_FIRST_DELIVERY_TOPICS } from '../src/first-deliveries.ts';

describe('FirstDeliveries', () => {
  it('an offset past every one noted for its topic and partition is a first delivery; one at or below it is not', () => {
    const seen = new FirstDeliveries();
    expect(seen.isFirst('t', 0, '5')).toBe(true);
    expect(seen.isFirst('t', 0, '5')).toBe(false);
    expect(seen.isFirst('t', 0, 3n)).toBe(false);
    expect(seen.isFirst('t', 1, 3)).toBe(true);
    expect(seen.isFirst('u', 0, '1')).toBe(true);
    expect(seen.isFirst('t', 0, 6n)).toBe(true);
  });

  it('an offset or partition that is not a number counts as first and notes nothing', () => {
    const seen = new FirstDeliveries();
    for (const bad of [undefined, null, '', 'x', Number.NaN, {}, Symbol('s')]) {
      expect(seen.isFirst('t', 0, bad)).toBe(true);
      expect(seen.isFirst('t', bad, 1)).toBe(true);
    }
    expect(seen.isFirst('t', 0, 0)).toBe(true);
  });

  it(`remembers at most ${MAX_FIRST_DELIVERY_TOPICS} topics, forgetting the one noted longest ago`, () => {
    const seen = new FirstDeliveries();
    for (let i = 0; i <= MAX_FIRST_DELIVERY_TOPICS; i++) seen.isFirst(`t${i}`, 0, 10);
    expect(seen.isFirst('t0', 0, 10)).toBe(true); // forgotten: first again
    expect(seen.isFirst(`t${MAX_FIRST_DELIVERY_TOPICS}`, 0, 10)).toBe(false);
  });
});
