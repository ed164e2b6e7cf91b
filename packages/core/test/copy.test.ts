import { copyWith, metricAttributesOf } from '@hoptrace/core/adapter';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
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

describe('copyWith on object literals', () => {
  it('spreads them (their getters read once), applies overrides', () => {
    let reads = 0;
    const literal = {
      get topic(): string {
        reads++;
        return 't';
      },
      acks: -1,
    };
    const copy = copyWith(literal as typeof literal & { messages?: number[] }, ['topic', 'acks'], {
      messages: [2],
    });
    expect(copy).toEqual({ topic: 't', acks: -1, messages: [2] });
    expect(reads).toBe(1);
    const bare = Object.assign(Object.create(null) as { topic?: string }, { topic: 'n' });
    expect(copyWith(bare, ['topic'], {})).toEqual({ topic: 'n' });
  });
});

describe('metricAttributesOf', () => {
  it('one cache per meter and system: shared by wrappers, never across systems', () => {
    const meter = new MeterProvider().getMeter('one-meter-for-all');
    const kafka = metricAttributesOf(meter, 'kafka');
    expect(metricAttributesOf(meter, 'kafka')).toBe(kafka);
    const rabbit = metricAttributesOf(meter, 'rabbitmq');
    expect(rabbit).not.toBe(kafka);
    expect(rabbit.get('send', 'q')['messaging.system.name']).toBe('rabbitmq');
    expect(kafka.get('send', 'q')['messaging.system.name']).toBe('kafka');
  });
});
