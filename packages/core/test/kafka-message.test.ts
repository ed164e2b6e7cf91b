import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_MESSAGE_TOMBSTONE,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  addKafkaMessageAttributes,
  addKafkaPositionAttributes,
  messagePositions,
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

describe('messagePositions', () => {
  const m = (topic: unknown, partition?: unknown) => ({ topic, partition });

  it('places each message at its partition base plus its index there, across topics and base offset shapes', () => {
    const sent = [m('a', 0), m('a', 1), m('b', 0), m('a', 0), m('b', 0)];
    expect(
      messagePositions(sent, [
        { topic: 'a', partition: 0, baseOffset: 10n },
        { topic: 'a', partition: 1, baseOffset: '4' },
        { topic: 'b', partition: 0, baseOffset: 0 },
      ]),
    ).toEqual([
      { partition: 0, offset: 10 },
      { partition: 1, offset: 4 },
      { partition: 0, offset: 0 },
      { partition: 0, offset: 11 },
      { partition: 0, offset: 1 },
    ]);
  });

  it('a topic the reply names one partition of places every message there, whatever the caller fixed', () => {
    expect(messagePositions([m('a'), m('a', 7)], [{ topic: 'a', partition: 2, baseOffset: 5 }])).toEqual([
      { partition: 2, offset: 5 },
      { partition: 2, offset: 6 },
    ]);
  });

  it('one message of a topic it cannot place leaves the whole topic without offsets, never a wrong one', () => {
    const reply = [
      { topic: 'a', partition: 0, baseOffset: 0 },
      { topic: 'a', partition: 1, baseOffset: 0 },
      { topic: 'b', partition: 0, baseOffset: 3 },
    ];
    // No partition (the client chose), or one the reply does not name (mapped onto the partition count).
    for (const unknown of [undefined, 3, '0', -1]) {
      expect(messagePositions([m('a', 0), m('a', unknown), m('b', 0)], reply)).toEqual([
        { partition: 0 },
        undefined,
        { partition: 0, offset: 3 },
      ]);
    }
  });

  it('gives nothing for topics the reply does not name, odd topics or unusable base offsets; never throws', () => {
    expect(messagePositions([m('x', 0), m(undefined, 0), m(42, 0)], [])).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    for (const baseOffset of [-1, 2 ** 60, 'nope', null, undefined, 1.5]) {
      expect(messagePositions([m('a', 0)], [{ topic: 'a', partition: 0, baseOffset }])).toEqual([
        { partition: 0 },
      ]);
    }
  });
});
