import type { FirstDeliveries, Operation } from '@hoptrace/core/adapter';
import type { Context } from '@opentelemetry/api';
import type { ClientState } from './client-state.ts';

/** One message's process span while the application holds the message. */
export interface MessageEntry {
  /** The traced consumer whose stream handed the message out. */
  readonly state: ConsumerState;
  readonly operation: Operation;
  /** The context the message is handled in (its span's, with its failure lineage). */
  readonly context: Context;
  /** `performance.now()` when the span started (for `maxProcessingMs`). */
  readonly startedAt: number;
  /** The stream's set of open entries it belongs to. */
  readonly open: Set<MessageEntry>;
  /** `data` listener calls still running for it. */
  pending: number;
}

/** Everything a traced consumer shares across its streams. */
export interface ConsumerState extends ClientState {
  /**
   * Each traced stream's open entries (emptied when the stream or the consumer closes), with whether
   * the stream is over (closed or destroyed, or unable to tell when it closes). A stream leaves the
   * map, and so the sweep, when it closes, not when the consumer does: @platformatic/kafka's
   * `close()` leaves a stream open when the consumer is not an active group member (it then skips
   * leaving the group, which is what closes the streams), and what that stream hands out later is
   * still swept.
   */
  readonly streams: Map<Set<MessageEntry>, () => boolean>;
  /** The `maxProcessingMs` sweep, running while a stream is in {@link streams}. */
  sweep: ReturnType<typeof setInterval> | undefined;
  /**
   * The greatest offset per topic and partition whose time in queue was recorded (filled only with
   * metrics on): a message at or below it is one delivered again (a stream restarted from the last
   * commit, a seek back), whose wait is not recorded again.
   */
  readonly firstDeliveries: FirstDeliveries;
}
