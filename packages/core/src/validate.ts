/**
 * Wrap-time validation: a bad option throws a TypeError that names the option and the value
 * received. Data from the wire is never validated this way (it never throws).
 *
 * @packageDocumentation
 */

import { capValue } from './attributes.ts';

/**
 * The longest delay Node.js timers take (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms.
 * The upper bound of every timeout option.
 */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** Throws a clear TypeError unless `value` is `undefined` or an integer >= `min` (and <= `max`, when given). */
export function assertOptionalInteger(name: string, value: unknown, min: number, max?: number): void {
  if (value === undefined) return;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < min ||
    (max !== undefined && value > max)
  ) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    throw new TypeError(`Expected \`${name}\` to be an integer ${range}, got ${describeValue(value)}`);
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or a number >= `min` (Infinity allowed). */
export function assertOptionalNumber(name: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new TypeError(`Expected \`${name}\` to be a number >= ${min}, got ${describeValue(value)}`);
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or one of `allowed`. */
export function assertOptionalOneOf<T>(name: string, value: unknown, allowed: readonly T[]): void {
  if (value === undefined) return;
  if (!allowed.includes(value as T)) {
    throw new TypeError(
      `Expected \`${name}\` to be one of ${allowed.map((a) => `'${String(a)}'`).join(', ')}, got ${describeValue(value)}`,
    );
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or a boolean. */
export function assertOptionalBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`Expected \`${name}\` to be a boolean, got ${describeValue(value)}`);
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or a function. */
export function assertOptionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`Expected \`${name}\` to be a function, got ${describeValue(value)}`);
  }
}

/** Throws a clear TypeError unless `value` is `undefined` or a non-empty string. */
export function assertOptionalString(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
    throw new TypeError(`Expected \`${name}\` to be a non-empty string, got ${describeValue(value)}`);
  }
}

/**
 * Whether `text` can be a host name or IP address as `server.address` records it: no `@` (a URL's
 * credentials, `user:secret@host`) and no `/` (a scheme, `amqp://host`, or a path).
 */
export function isHostName(text: string): boolean {
  return text.length > 0 && !text.includes('@') && !text.includes('/');
}

/**
 * Throws a clear TypeError unless `value` is `undefined` or a host name or IP address (see
 * {@link isHostName}): a broker URL given where a host is expected would put its scheme, and its
 * credentials, in `server.address`. The message leaves the credentials out.
 */
export function assertOptionalHost(name: string, value: unknown): void {
  assertOptionalString(name, value);
  if (typeof value === 'string' && !isHostName(value)) {
    throw new TypeError(
      `Expected \`${name}\` to be a host name or IP address (no scheme, path or credentials), got ${describeValue(value)}`,
    );
  }
}

/**
 * `text` with what precedes its last `@` (after a `scheme://`) shown as `***`: the credentials of a
 * URL given as an option (`amqp://user:secret@host` shows as `amqp://***@host`) never reach an error
 * message, and so the logs.
 */
export function redactCredentials(text: string): string {
  const at = text.lastIndexOf('@');
  if (at === -1) return text;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? '';
  return at < scheme.length ? text : `${scheme}***${text.slice(at)}`;
}

/** Throws a clear TypeError unless `value` is `undefined` or a plain object (the options bag). */
export function assertOptionsObject(name: string, value: unknown): void {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new TypeError(`Expected \`${name}\` to be an object, got ${describeValue(value)}`);
  }
}

/**
 * Throws a clear TypeError unless `value` is an object (or function) with every method in `methods`:
 * the check a wrapper makes of the client it is handed, which would otherwise wrap `null`, a plain
 * object or another library's client without a word and trace nothing.
 *
 * @param name - the parameter's name, e.g. `producer`.
 * @param expected - what it should be, e.g. `a kafkajs Producer`.
 * @param methods - the methods such a client always has (the first one missing is named).
 */
export function assertClient(
  name: string,
  value: unknown,
  expected: string,
  methods: readonly string[],
): void {
  const isObject = value !== null && (typeof value === 'object' || typeof value === 'function');
  const missing = isObject ? methods.find((method) => !hasMethod(value, method)) : undefined;
  if (isObject && missing === undefined) return;
  const got = isObject ? `${describeKind(value)} without ${missing}()` : describeValue(value);
  throw new TypeError(`Expected \`${name}\` to be ${expected}, got ${got}`);
}

/**
 * Throws a clear TypeError unless `value` is an OpenTelemetry `Context` (an object with a `getValue`
 * method): the check an application-facing function makes of the context it is handed, which would
 * otherwise fail inside the API with `context.getValue is not a function`. One property read; the
 * caller resolves `undefined` to the active context first. A Span gets a hint: the context holding it
 * is what is wanted.
 *
 * @param fn - the function's name, e.g. `logFields`.
 * @param argument - the argument's name as the caller wrote it: `context` (default), `base`,
 * `input.context`.
 */
export function assertContext(fn: string, value: unknown, argument = 'context'): void {
  if (value !== null && typeof value === 'object' && hasMethod(value, 'getValue')) return;
  const isObject = value !== null && (typeof value === 'object' || typeof value === 'function');
  const got = isObject ? describeKind(value) : describeValue(value);
  const hint =
    isObject && hasMethod(value, 'spanContext')
      ? ' (a Span: pass trace.setSpan(context.active(), span))'
      : '';
  throw new TypeError(
    `${fn}: expected \`${argument}\` to be an OpenTelemetry Context or undefined, got ${got}${hint}`,
  );
}

function hasMethod(value: object, method: string): boolean {
  try {
    return typeof (value as Record<string, unknown>)[method] === 'function';
  } catch {
    return false; // a throwing getter or a hostile Proxy
  }
}

/** `a Kafka`, `an object`, `a function`: what kind of object a wrong client is, never its contents. */
export function describeKind(value: object): string {
  if (typeof value === 'function') return 'a function';
  let className: unknown;
  try {
    className = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor
      ?.name;
  } catch {
    className = undefined;
  }
  if (typeof className !== 'string' || className === '' || className === 'Object') return 'an object';
  return `${/^[AEIOU]/.test(className) ? 'an' : 'a'} ${className}`;
}

/**
 * A short, safe rendering of a received option value for error messages: JSON for strings and
 * objects, with a URL's credentials shown as `***` (also inside objects), the values of keys naming
 * a secret (`password`, `token`, `apiKey`...) as `***`, and at most 256 characters (then `…`).
 */
export function describeValue(value: unknown): string {
  const text = describeUncut(value);
  return text.length > MAX_DESCRIBED_LENGTH ? `${capValue(text, MAX_DESCRIBED_LENGTH)}…` : text;
}

/** How much of a value a wrap-time TypeError quotes. */
const MAX_DESCRIBED_LENGTH = 256;

/** Keys whose values a TypeError never quotes (a whole client config passed by mistake). */
const SECRET_KEY = /pass(word|phrase)?$|secret|token|credential|api[-_]?key|private[-_]?key/i;

/** JSON of an object with secrets left out: `***` for their keys' values and URLs' credentials. */
function withoutSecrets(key: string, value: unknown): unknown {
  if (key !== '' && SECRET_KEY.test(key) && value !== undefined && value !== null) return '***';
  return typeof value === 'string' ? redactCredentials(value) : value;
}

function describeUncut(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(redactCredentials(value));
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value, withoutSecrets) ?? Object.prototype.toString.call(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}
