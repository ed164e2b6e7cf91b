/**
 * The copy of a caller's publish options that a traced publish hands amqplib: amqplib must read
 * from it exactly what it would read from the caller's own object, which is never written to.
 *
 * @packageDocumentation
 */

import type { PublishOptions } from './types.ts';

/** Whether `value` is an object literal or a null-prototype object (nothing inherited to keep). */
function isPlain(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * The caller's publish `options` with `headers` in place of theirs. amqplib reads each option by
 * name, inherited ones included, so options built on a prototype (shared defaults through
 * `Object.create`, a class) get a copy whose prototype is the caller's object; object literals a
 * plain copy. Anything but an object counts as no options, as amqplib reads it.
 */
export function withHeaders(options: unknown, headers: Readonly<Record<string, unknown>>): PublishOptions {
  if (options === null || (typeof options !== 'object' && typeof options !== 'function')) return { headers };
  if (isPlain(options)) return { ...(options as PublishOptions), headers };
  const copy = Object.create(options) as PublishOptions;
  Object.defineProperty(copy, 'headers', {
    value: headers,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return copy;
}

/**
 * The headers amqplib would encode from the caller's object: it walks them with `for...in`, so a
 * headers object built on a prototype also sends the inherited fields. Those are copied into a
 * plain object before hoptrace copies the headers (which keeps own fields only); object literals
 * are returned as they are.
 */
export function encodedHeaders<H extends Readonly<Record<string, unknown>> | null | undefined>(
  headers: H,
): H {
  if (headers === null || typeof headers !== 'object' || isPlain(headers)) return headers;
  const flat: Record<string, unknown> = {};
  for (const key in headers) {
    // an assignment to `__proto__` would set the copy's prototype instead of a header
    if (key === '__proto__')
      Object.defineProperty(flat, key, {
        value: headers[key],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else flat[key] = headers[key];
  }
  return flat as H;
}
