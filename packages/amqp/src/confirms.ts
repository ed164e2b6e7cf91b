/**
 * The send operations of a confirm channel waiting for the broker's confirm.
 *
 * @packageDocumentation
 */

import { type Operation, readMessageContext } from '@hoptrace/core/adapter';
import { ERROR_CHANNEL_CLOSED, ERROR_NACKED, ERROR_RETURNED } from './attributes.ts';
import type { AmqpMessage } from './types.ts';

/** amqplib's confirm bookkeeping on a confirm channel (0.10 to 2.x; not part of its typed API). */
interface ConfirmInternals {
  /** The lowest delivery tag not yet confirmed. */
  lwm?: unknown;
  /** One slot per unconfirmed publish from `lwm` on: its callback, `false` without one, `null` once confirmed. */
  unconfirmed?: unknown;
}

/** The fields of a `basic.ack` / `basic.nack` frame, as amqplib emits them with `ack` / `nack`. */
interface ConfirmFields {
  deliveryTag?: unknown;
  multiple?: unknown;
}

/**
 * The confirm channel's sends waiting for the broker, in two kinds:
 * - a publish that came with a confirm callback gets hoptrace's wrapper of that callback, which ends
 *   its span ({@link add} / {@link delete});
 * - a publish without one is handed to amqplib without one, exactly as the caller made it, so
 *   amqplib's list of callbacks (what its close handling and `waitForConfirms` walk) is what it would
 *   be without hoptrace: its span is kept by delivery tag ({@link addByTag}) and ends on the
 *   channel's `ack` / `nack` event for that tag ({@link confirmed}).
 * Whatever is still waiting when the channel closes ends with `channel_closed` (`connection_closed`
 * when its connection closed; {@link closeAll}).
 * A `mandatory` send the broker returns is marked `returned` before its confirm ends it
 * ({@link returned}).
 */
export class ConfirmTracker {
  readonly #raw: ConfirmInternals;
  readonly #waiting = new Set<Operation>();
  /** Callback-less sends by delivery tag; tags only grow, so insertion order is tag order. */
  readonly #byTag = new Map<number, Operation>();
  /**
   * `mandatory` sends waiting for their confirm, by the id of the span whose context their headers
   * carry: the broker sends a message's `basic.return` before its `basic.ack`, with the headers as
   * published, so the returned message names its send span.
   */
  readonly #returnable = new Map<string, Operation>();

  constructor(raw: object) {
    this.#raw = raw as ConfirmInternals;
  }

  /** Whether a callback-less publish's delivery tag can be read from amqplib (else it gets a wrapper). */
  get readsTags(): boolean {
    return typeof this.#raw.lwm === 'number' && Array.isArray(this.#raw.unconfirmed);
  }

  /** A send whose confirm callback hoptrace wrapped. */
  add(operation: Operation): void {
    this.#waiting.add(operation);
  }

  /** A wrapped callback was called, or the publish threw. */
  delete(operation: Operation): void {
    this.#waiting.delete(operation);
    this.#forgetReturnable(operation);
  }

  /**
   * A `mandatory` send (already added) whose headers carry its own span's context: a return of its
   * message marks it {@link ERROR_RETURNED}.
   */
  addReturnable(operation: Operation): void {
    const spanId = operation.spanContext()?.spanId;
    if (spanId !== undefined && this.#waiting.has(operation)) this.#returnable.set(spanId, operation);
  }

  /**
   * The channel's `return` event: the send whose span the returned message's headers name is marked
   * failed (`returned`, with the broker's reply code and text); its confirm still ends it.
   */
  returned(message: AmqpMessage | undefined): void {
    if (this.#returnable.size === 0) return;
    const spanId = readMessageContext(message?.properties?.headers).spanContext?.spanId;
    const operation = spanId === undefined ? undefined : this.#returnable.get(spanId);
    if (!operation) return;
    this.#returnable.delete(spanId as string);
    const fields = message?.fields as { replyCode?: unknown; replyText?: unknown } | undefined;
    operation.noteFailureType(
      ERROR_RETURNED,
      `message returned by the broker: ${String(fields?.replyCode)} ${String(fields?.replyText)}`,
    );
  }

  /**
   * A callback-less send amqplib has just queued: its tag is the last slot of amqplib's window.
   * When the tag cannot be read, the span waits for the channel's close.
   */
  addByTag(operation: Operation): void {
    this.#waiting.add(operation);
    const { lwm, unconfirmed } = this.#raw;
    if (typeof lwm !== 'number' || !Array.isArray(unconfirmed) || unconfirmed.length === 0) return;
    this.#byTag.set(lwm + unconfirmed.length - 1, operation);
  }

  /** The channel's `ack` or (`nacked`) `nack` event: ends the callback-less sends it confirms. */
  confirmed(fields: ConfirmFields | undefined, nacked: boolean): void {
    if (this.#byTag.size === 0) return;
    const tag = fields?.deliveryTag;
    if (typeof tag !== 'number') return;
    if (fields?.multiple) {
      for (const [pending, operation] of this.#byTag) {
        if (pending > tag) break;
        this.#settle(pending, operation, nacked);
      }
      return;
    }
    const operation = this.#byTag.get(tag);
    if (operation) this.#settle(tag, operation, nacked);
  }

  /**
   * The channel closed: every send still waiting ends with `type` (`channel_closed`, or
   * `connection_closed` when its connection closed), `closed` saying which in the status message.
   */
  closeAll(type: string = ERROR_CHANNEL_CLOSED, closed = 'channel closed'): void {
    for (const operation of this.#waiting) {
      operation.noteFailureType(type, `${closed} before the broker confirmed the message`);
      operation.end();
    }
    this.#waiting.clear();
    this.#byTag.clear();
    this.#returnable.clear();
  }

  #forgetReturnable(operation: Operation): void {
    if (this.#returnable.size === 0) return;
    const spanId = operation.spanContext()?.spanId;
    if (spanId !== undefined && this.#returnable.get(spanId) === operation) this.#returnable.delete(spanId);
  }

  #settle(tag: number, operation: Operation, nacked: boolean): void {
    this.#byTag.delete(tag);
    this.delete(operation);
    if (nacked) operation.noteFailureType(ERROR_NACKED, 'message nacked');
    operation.end();
  }
}
