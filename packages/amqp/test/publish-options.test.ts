import { describe, expect, it } from 'vitest';
import { encodedHeaders } from '../src/publish-options.ts';

describe('encodedHeaders: what amqplib would encode from headers built on a prototype', () => {
  it('keeps a field named `__proto__` as an own header, as `for...in` (amqplib) sees it', () => {
    const shared = Object.create(null) as Record<string, unknown>;
    Object.defineProperty(shared, '__proto__', { value: 'p', enumerable: true });
    Object.defineProperty(shared, 'constructor', { value: 'c', enumerable: true });
    const headers = Object.create(shared) as Record<string, unknown>;
    headers.tenant = 'acme';
    const flat = encodedHeaders(headers);
    expect(Object.getPrototypeOf(flat)).toBe(Object.prototype);
    expect(Object.keys(flat).sort()).toEqual(['__proto__', 'constructor', 'tenant']);
    expect(Object.getOwnPropertyDescriptor(flat, '__proto__')?.value).toBe('p');
    expect(flat.constructor).toBe('c');
  });
});
