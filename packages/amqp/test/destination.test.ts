import { consumerDestination, defaultSpanDestination, producerDestination } from '@hoptrace/amqp';
import { describe, expect, it } from 'vitest';
import { deathCount } from '../src/x-death.ts';

describe('RabbitMQ destination names (conventions)', () => {
  it.each([
    ['orders', 'created', 'orders:created'],
    ['orders', '', 'orders'],
    ['', 'jobs', 'jobs'],
    ['', '', 'amq.default'],
  ])('producer %j + %j -> %j', (exchange, routingKey, expected) => {
    expect(producerDestination(exchange, routingKey)).toBe(expected);
  });

  it.each([
    ['orders', 'created', 'q', 'orders:created:q'],
    ['', 'q', 'q', 'q'],
    ['orders', 'q', 'q', 'orders:q'],
    ['fan', '', 'q', 'fan:q'],
    ['', 'other', 'q', 'other:q'],
  ])('consumer %j + %j + %j -> %j', (exchange, routingKey, queue, expected) => {
    expect(consumerDestination(exchange, routingKey, queue)).toBe(expected);
  });

  it('keeps routing keys and server-named queues out of span names', () => {
    const send = { operation: 'send', queue: undefined };
    expect(defaultSpanDestination({ ...send, exchange: 'orders', routingKey: 'order.42' })).toBe('orders');
    expect(defaultSpanDestination({ ...send, exchange: '', routingKey: 'jobs' })).toBe('jobs');
    expect(defaultSpanDestination({ ...send, exchange: '', routingKey: 'amq.gen-abc' })).toBeUndefined();
    expect(defaultSpanDestination({ ...send, exchange: '', routingKey: '' })).toBe('amq.default');
    const process = { operation: 'process', routingKey: 'order.42' };
    expect(defaultSpanDestination({ ...process, exchange: 'orders', queue: 'billing' })).toBe('billing');
    expect(defaultSpanDestination({ ...process, exchange: 'orders', queue: 'amq.gen-xyz' })).toBe('orders');
    expect(defaultSpanDestination({ ...process, exchange: '', queue: 'amq.gen-xyz' })).toBeUndefined();
  });
});

describe('x-death count', () => {
  it('sums the counts and never throws on odd input', () => {
    expect(deathCount([{ count: 2 }, { count: 1 }])).toBe(3);
    expect(deathCount([{ count: 5n }])).toBe(5);
    expect(deathCount(undefined)).toBeUndefined();
    expect(deathCount([])).toBeUndefined();
    expect(deathCount('x')).toBeUndefined();
    expect(deathCount([null, 7, { count: 'x' }])).toBe(0);
  });
});
