/**
 * A shallow copy of a caller's object (a message, a record, send options) with `overrides` applied,
 * for handing a client a modified object without touching the caller's. A spread copies own
 * enumerable properties only; each of `fields` (what the client reads) is also copied when the
 * object provides it another way (a getter of a class instance, an inherited or non-enumerable
 * property), so the client reads the same values from the copy as it would from the original.
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
  for (const field of fields) {
    if (!Object.hasOwn(out, field) && field in source)
      out[field] = (source as Record<string, unknown>)[field];
  }
  return Object.assign(out, overrides) as T;
}
