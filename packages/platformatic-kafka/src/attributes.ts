/** The attribute hoptrace sets on a batch span: how many links it actually carries (after the cap). */
export const ATTR_HOPTRACE_BATCH_LINK_COUNT = 'hoptrace.batch.link_count';
/** Set (`true`) on a per-message process span that `maxProcessingMs` ended. */
export const ATTR_HOPTRACE_PROCESS_TIMED_OUT = 'hoptrace.process.timed_out';
/**
 * `error.type` of a producer-stream send span whose batch was never acknowledged: the stream was
 * destroyed without an error first (it dropped the message, or stopped listening for the answer).
 */
export const ERROR_STREAM_CLOSED = 'stream_closed';
export {
  ATTR_HOPTRACE_KAFKA_TRANSACTION_OUTCOME,
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  ERROR_TRANSACTION_ABORTED,
  MAX_PENDING_TRANSACTION_SENDS,
} from '@hoptrace/core/adapter';
