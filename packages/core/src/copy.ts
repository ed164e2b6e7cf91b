/**
 * A shallow copy of a caller's object (a message, a record, send options) with `overrides` applied,
 * for handing a client a modified object without touching the caller's. A spread copies own
 * enumerable properties only; each of `fields` (what the client reads) is also copied when the
 * object provides it another way (a getter of a class instance, an inherited or non-enumerable
 * property), so the client reads the same values from the copy as it would from the original; an
 * object literal is spread only (a non-enumerable field defined on one is not looked for).
 * Throws what a getter of `source` throws.
 *
 * @param fields - the property names the client reads from such an object.
 */
export function copyWith<T extends object>(
  source: T,
  fields: readonly string[],
  overrides: Readonly<Partial<T>>,
): T {
  const out: Record<string, unknown> = { ...(source as Record<string, unknown>) };
  // An object literal (the common case) inherits none of the fields: the spread has them all.
  const prototype: unknown = Object.getPrototypeOf(source);
  if (prototype === Object.prototype || prototype === null) return Object.assign(out, overrides) as T;
  for (const field of fields) {
    if (!Object.hasOwn(out, field) && field in source)
      out[field] = (source as Record<string, unknown>)[field];
  }
  return Object.assign(out, overrides) as T;
}
