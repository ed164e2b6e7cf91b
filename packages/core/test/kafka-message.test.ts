import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  addKafkaMessageAttributes,
  addKafkaPositionAttributes,
} from '@hoptrace/core/adapter';
import type { Attributes } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

function attributes(message: Parameters<typeof addKafkaMessageAttributes>[1], keys = true, size = true) {
  const out: Attributes = {};
  addKafkaMessageAttributes(out, message, keys, size);
  return out;
}

function position(partition: unknown, offset: unknown) {
  const out: Attributes = {};
  addKafkaPositionAttributes(out, partition, offset);
  return out;
}

describe('addKafkaMessageAttributes', () => {
  it('reads partition and offset in every client shape (number, decimal string, bigint)', () => {
    for (const offset of [7, '7', 7n]) {
      expect(attributes({ partition: 3, offset, value: 'v' }, true, false)).toEqual({
        [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '3',
        [ATTR_KAFKA_OFFSET]: 7,
      });
      expect(position(3, offset)).toEqual({
        [ATTR_MESSAGING_DESTINATION_PARTITION_ID]: '3',
        [ATTR_KAFKA_OFFSET]: 7,
      });
    }
    expect(position(1.5, 2n ** 60n)).toEqual({});
    expect(position(undefined, 'nope')).toEqual({});
  });

  it('records keys only when asked, only as text, capped', () => {
    const value = 'v';
    expect(attributes({ key: 'k', value }, false, false)).toEqual({});
    expect(attributes({ key: 'x'.repeat(1000), value })[ATTR_KAFKA_MESSAGE_KEY]).toHaveLength(256);
    expect(attributes({ key: Buffer.from('ü-key'), value })[ATTR_KAFKA_MESSAGE_KEY]).toBe('ü-key');
    expect(attributes({ key: Buffer.from([0xff, 0xfe]), value }, true, false)).toEqual({});
    expect(attributes({ key: Buffer.alloc(2000, 0x61), value }, true, false)).toEqual({});
    expect(attributes({ key: { id: 1 }, value }, true, false)).toEqual({});
  });

  it('marks tombstones and sizes values only when asked', () => {
    expect(attributes({ value: null })).toEqual({ [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true });
    // Both clients send an undefined value as null, and @platformatic/kafka hands a null value out
    // as undefined: a tombstone either way.
    expect(attributes({ value: undefined })).toEqual({ [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true });
    expect(attributes({ key: 'k' }, false)).toEqual({ [ATTR_KAFKA_MESSAGE_TOMBSTONE]: true });
    expect(attributes({ value: '' })).toEqual({ [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: 0 });
    expect(attributes({ value: 'äb' })).toEqual({ [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: 3 });
    expect(attributes({ value: Buffer.alloc(5) }, true, false)).toEqual({});
  });
});
