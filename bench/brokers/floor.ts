// The header-only floor (`raw+header` variants): the raw client carrying a W3C traceparent per
// message, as every tracer that propagates through headers writes one. No SDK, nothing parsed.

const PREFIX = '00-4bf92f3577b34da6a3ce929d0e0e4736-';

/** A valid W3C traceparent for message `i` (fixed trace id, a span id per message, sampled). */
export function floorTraceparent(i: number): string {
  return `${PREFIX}${(0x1000000000000 + i).toString(16).padStart(16, '0')}-01`;
}
