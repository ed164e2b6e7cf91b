import { TIME_IN_QUEUE_MAX_MS, TIME_IN_QUEUE_MAX_SKEW_MS, timeInQueueSeconds } from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';

describe('timeInQueueSeconds: only a plausible wait', () => {
  const now = 1_800_000_000_000;
  it('a past creation time gives the wait in seconds, up to the bound', () => {
    expect(timeInQueueSeconds(now - 1500, now)).toBe(1.5);
    expect(timeInQueueSeconds(now - TIME_IN_QUEUE_MAX_MS, now)).toBe(TIME_IN_QUEUE_MAX_MS / 1000);
    expect(timeInQueueSeconds(now - TIME_IN_QUEUE_MAX_MS - 1, now)).toBeUndefined();
    expect(timeInQueueSeconds(1000, now)).toBeUndefined(); // one second after the epoch
  });
  it('a creation time ahead of the clock: 0 within the skew, nothing beyond it', () => {
    expect(timeInQueueSeconds(now + TIME_IN_QUEUE_MAX_SKEW_MS, now)).toBe(0);
    expect(timeInQueueSeconds(now + TIME_IN_QUEUE_MAX_SKEW_MS + 1, now)).toBeUndefined();
    expect(timeInQueueSeconds(Number.MAX_SAFE_INTEGER, now)).toBeUndefined();
  });
  it('not a finite positive number: nothing', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      expect(timeInQueueSeconds(bad, now)).toBeUndefined();
  });
});
