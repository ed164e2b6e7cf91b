import { describe, expect, it } from 'vitest';
import { runCases } from '../lib/measure.ts';

describe('runCases', () => {
  it('reports the heap each case allocates per operation, and counts an async case’s tail', async () => {
    let tails = 0;
    let sink: unknown;
    const results = await runCases(
      [
        { name: 'nothing', fn: () => undefined },
        { name: 'an array of 1,000 numbers', fn: () => (sink = new Array(1000).fill(0.5)) },
        { name: 'async', fn: () => Promise.resolve().then(() => tails++) },
      ],
      { ops: 200, repetitions: 2, warmupOps: 100, allocationOps: 500 },
    );
    expect(sink).toHaveLength(1000);
    const [nothing, array] = results;
    // A packed double array of 1,000 elements is at least 8,000 bytes of heap; nothing allocates nothing.
    expect(array?.bytesPerOp).toBeGreaterThan(7_500);
    expect(nothing?.bytesPerOp).toBeLessThan(200);
    // Every continuation ran before runCases returned: warm-up, two repetitions, the allocation pass.
    expect(tails).toBe(100 + 2 * 200 + 500);
  });
});
