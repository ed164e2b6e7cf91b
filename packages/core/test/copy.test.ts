import { copyWith } from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';

class Record {
  get topic(): string {
    return 't';
  }
}

describe('copyWith', () => {
  it('keeps the named fields a spread drops (getters), applies overrides, never touches the source', () => {
    const source = Object.assign(new Record(), { own: 1 });
    const copy = copyWith(source as Record & { own: number; messages?: number[] }, ['topic', 'acks'], {
      messages: [1],
    });
    expect(copy).toEqual({ own: 1, topic: 't', messages: [1] });
    expect('acks' in copy).toBe(false);
    expect(Object.keys(source)).toEqual(['own']);
  });
});
