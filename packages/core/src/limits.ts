/**
 * Limits from the W3C specs, named so the code that enforces them can say where they come from.
 */

/** W3C Trace Context, tracestate: at most 32 list members. */
export const MAX_TRACESTATE_MEMBERS = 32;
/** W3C Trace Context, tracestate: vendors should propagate at least 512 characters. */
export const MAX_TRACESTATE_LENGTH = 512;
/** W3C Baggage: a platform must propagate at least 64 list members. */
export const MAX_BAGGAGE_MEMBERS = 64;
/** W3C Baggage: a platform must propagate at least 8192 bytes in total. */
export const MAX_BAGGAGE_BYTES = 8192;
