import { describeValue } from '@hoptrace/core/adapter';
import { describe, expect, it } from 'vitest';

// What a wrap-time TypeError quotes of the value it got: enough to recognise it, never a secret,
// never a megabyte.
describe('describeValue (the value a wrap-time TypeError quotes)', () => {
  it('quotes strings and simple objects as JSON', () => {
    expect(describeValue('queue')).toBe('"queue"');
    expect(describeValue({ maxHops: -1 })).toBe('{"maxHops":-1}');
    expect(describeValue(42)).toBe('42');
    expect(describeValue(undefined)).toBe('undefined');
  });

  it('shows the credentials of a URL as ***, in a string and inside an object', () => {
    expect(describeValue('amqp://user:secret@rabbit-1:5672')).toBe('"amqp://***@rabbit-1:5672"');
    const quoted = describeValue({ url: 'redis://user:secret@cache-1:6379', host: 'cache-1' });
    expect(quoted).toBe('{"url":"redis://***@cache-1:6379","host":"cache-1"}');
  });

  it('leaves out the values of keys that name a secret (a whole client config passed by mistake)', () => {
    const quoted = describeValue({
      brokers: ['kafka-1:9092'],
      sasl: { mechanism: 'plain', username: 'app', password: 'hunter2' },
      apiKey: 'k-123',
      authToken: 't-456',
    });
    expect(quoted).not.toContain('hunter2');
    expect(quoted).not.toContain('k-123');
    expect(quoted).not.toContain('t-456');
    expect(quoted).toContain('"password":"***"');
    expect(quoted).toContain('"brokers":["kafka-1:9092"]');
  });

  it('cuts a long value to 256 characters and says so', () => {
    const long = describeValue('x'.repeat(100_000));
    expect(long.length).toBe(257);
    expect(long.startsWith('"xxx')).toBe(true);
    expect(long.endsWith('…')).toBe(true);
    const big = describeValue(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])));
    expect(big.length).toBe(257);
  });
});
