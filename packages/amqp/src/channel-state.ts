import {
  type MetricAttributeCache,
  type MetricOperation,
  type MetricServer,
  metricServerOf,
  type Operation,
  type OperationMetric,
  OperationTemplates,
  type OwnEmitter,
  type OwnListeners,
  operationMetric,
  ownListeners,
  type SpanOperation,
  type SpanTemplate,
} from '@hoptrace/core/adapter';
import { SpanKind } from '@opentelemetry/api';
import { ERROR_CHANNEL_CLOSED, ERROR_CONNECTION_CLOSED } from './attributes.ts';
import { ConfirmTracker } from './confirms.ts';
import { DeliveryTracker } from './deliveries.ts';
import { DIRECT_REPLY_TO, defaultSpanDestination } from './destination.ts';
import { connectionClosing, serverAttributes } from './internals.ts';
import type { ResolvedOptions } from './options.ts';
import type { AmqpMessage, AnyFunction, TraceableChannel } from './types.ts';
import { UnprovenSettles } from './unproven-settles.ts';

/** The raw channel's methods, called with the raw channel as `this` (an EventEmitter in every amqplib). */
export type RawChannel = TraceableChannel &
  Record<string, unknown> & { prependListener(event: string, listener: (...args: never[]) => void): unknown };

/** Which operation a span template is for (`sendClient`: a send whose caller injected its own context). */
export type AmqpOperation = 'send' | 'sendClient' | 'process' | 'receive' | 'ack' | 'nack' | 'reject';

/** How many tags settled alone a channel remembers (see `ChannelState.settledAlone`). */
const SETTLED_ALONE_MEMORY = 1024;

/** Settle operations are named for the amqplib method (`ack`, `nack`, `reject`). */
const settle = (name: string): SpanOperation => ({ type: 'settle', name });

const OPERATIONS: Readonly<Record<AmqpOperation, SpanOperation>> = {
  send: { type: 'send', name: 'send' },
  sendClient: { type: 'send', name: 'send', kind: SpanKind.CLIENT },
  process: { type: 'process', name: 'process' },
  receive: { type: 'receive', name: 'receive' },
  ack: settle('ack'),
  nack: settle('nack'),
  reject: settle('reject'),
};

/**
 * Everything hoptrace keeps per traced channel: the raw channel, resolved options, span templates
 * (bounded), the metric attributes (bounded, shared by every wrapper on one MeterProvider), the open
 * deliveries and unconfirmed sends. Listens to the channel's `close` event and, on a confirm
 * channel, `ack`, `nack` and `return` (never `error`, whose absence of listeners amqplib's behaviour depends on).
 */
export class ChannelState {
  readonly raw: RawChannel;
  readonly opts: ResolvedOptions;
  /** A ConfirmChannel (both APIs have `waitForConfirms`; plain channels do not). */
  readonly confirm: boolean;
  readonly deliveries: DeliveryTracker;
  /** A confirm channel's sends waiting for the broker's confirm (undefined on a plain channel). */
  readonly confirms: ConfirmTracker | undefined;
  /** hoptrace's own listeners on the channel (`close`, `delivery`, and `ack`/`nack` on confirm channels). */
  readonly own: OwnListeners;
  /**
   * Callback-API gets waiting for amqplib's answer. amqplib 0.10's callback API never calls back a
   * get whose channel closes (2.x calls it with the close error), so the close ends what is left.
   */
  readonly receives = new Set<Operation>();
  /**
   * The greatest delivery tag of a message delivered on the channel (to any consumer, from amqplib's
   * `delivery` event, or got through the traced channel); 0 before the first. Tags only grow on a
   * channel, so a settle with `allUpTo` of a greater tag names a message of another channel (the
   * broker settles nothing and closes the channel) or one got through the raw channel object (the
   * broker settles every delivery up to it): {@link unproven} until the channel tells.
   */
  lastDeliveryTag = 0;
  /**
   * Tags settled alone (`ack`, `nack`, `reject` without `allUpTo`) through the traced channel, or
   * delivered to a `noAck` consumer or get, while older deliveries were open; the latest
   * {@link SETTLED_ALONE_MEMORY}. The broker holds none of them unacknowledged, so a later `allUpTo`
   * settle naming one settles nothing (unknown delivery tag, channel closed). Only a delivery older
   * than the tag can be misread, so the memory empties whenever no delivery is open.
   */
  readonly #settledAlone = new Set<number>();
  /**
   * The queue of each message got with acks through the traced channel, by delivery tag, kept only
   * with `settleSpans` until its settle (the latest {@link SETTLED_ALONE_MEMORY}), so its settle span
   * and metric name the queue as its receive does (a got message has no open delivery to ask).
   */
  readonly #gotQueues = new Map<number, string>();
  /** `allUpTo` settles of a tag greater than {@link lastDeliveryTag} when made (see {@link UnprovenSettles}). */
  readonly unproven = new UnprovenSettles();
  /**
   * Promise-API recovers awaiting the broker's answer, oldest first, each as a test of whether it
   * still awaits it (see {@link awaitRecover}).
   */
  readonly #recovers: Array<() => boolean> = [];
  readonly metrics: MetricAttributeCache;
  /** The channel's `server.address` / `server.port` (its spans'), for its metrics. */
  readonly #server: MetricServer;
  readonly #templates: OperationTemplates<AmqpOperation>;

  constructor(raw: RawChannel, opts: ResolvedOptions) {
    this.raw = raw;
    this.opts = opts;
    this.confirm = typeof raw.waitForConfirms === 'function';
    this.confirms = this.confirm ? new ConfirmTracker(raw) : undefined;
    const server = serverAttributes(raw, opts.serverAddress, opts.serverPort);
    this.#templates = new OperationTemplates(
      opts.instr.system,
      OPERATIONS,
      () => server,
      opts.instr.legacyAttributes,
    );
    this.deliveries = new DeliveryTracker(opts.settleTimeoutMs, opts.maxOpenDeliveries);
    this.metrics = opts.instr.metricAttributes;
    this.#server = metricServerOf(server);
    // Prepended, and doing its work a microtask later: amqplib's own `close` listener (added first)
    // calls the pending confirm callbacks, and a callback that throws there (`if (err) throw err`,
    // reported through amqplib's `handler-error`) stops that emit before any later listener runs.
    // Running first and deferring the work, hoptrace's cleanup happens whatever the other listeners
    // do, and after amqplib has called the confirm callbacks it calls (their spans end with its error).
    const { confirms } = this;
    // Kept through the application's `removeAllListeners()` and left out of what the traced channel
    // lists (its `listeners.own`), as without hoptrace.
    this.own = ownListeners(raw as unknown as OwnEmitter, {
      prepend: {
        close: () => {
          // amqplib closes the channels of a dropping connection first and marks the connection
          // right after, in the same tick: look once the current task is done.
          queueMicrotask(() => this.#closed());
        },
        // Every message delivered on the channel, to a traced consumer or not (amqplib emits each
        // before handing it to its consumer): the greatest tag an `allUpTo` settle can name (see
        // lastDeliveryTag).
        delivery: (message: never) => {
          if (this.#recovers.length > 0) this.recoversAnswered();
          this.delivered((message as AmqpMessage | undefined)?.fields?.deliveryTag);
        },
        // Prepended too, so a confirm callback that throws in amqplib's own listener cannot stop them.
        ...(confirms
          ? {
              ack: (fields: never) => confirms.confirmed(fields, false),
              nack: (fields: never) => confirms.confirmed(fields, true),
              // A returned mandatory message comes before its confirm (see ConfirmTracker.returned).
              return: (message: never) => confirms.returned(message),
            }
          : {}),
      },
    });
  }

  /**
   * The channel closed: every send still unconfirmed, every open delivery and every get amqplib did
   * not answer ends with an error.
   */
  #closed(): void {
    const { type, closed } = this.#closedBy();
    this.confirms?.closeAll(type, closed);
    this.unproven.clear();
    this.#recovers.length = 0;
    this.#gotQueues.clear();
    this.deliveries.abortAll(type, `${closed} before the message was settled`);
    for (const receive of this.receives) {
      receive.noteFailureType(type, `${closed} before amqplib answered the get`);
      receive.end();
    }
    this.receives.clear();
  }

  /** What closed the channel, read once amqplib is done closing it (see {@link endClosed}). */
  #closedBy(): { type: string; closed: string } {
    return connectionClosing(this.raw)
      ? { type: ERROR_CONNECTION_CLOSED, closed: 'connection closed' }
      : { type: ERROR_CHANNEL_CLOSED, closed: 'channel closed' };
  }

  /**
   * Ends `operation` as its channel's close ends what is left open (`channel_closed`, or
   * `connection_closed` when its connection closed), for an amqplib callback its close answered.
   * amqplib calls those back while closing the channel, before the connection marks itself closed
   * in the same task: what closed it is read a microtask later.
   *
   * @param how - the rest of the status message after "channel closed" ("before the broker ...").
   */
  endClosed(operation: Operation, how: string): void {
    queueMicrotask(() => {
      this.noteClosed(operation, how);
      operation.end();
    });
  }

  /**
   * Marks `operation` failed by its channel's close, as {@link endClosed} does, without ending it.
   * Call it once amqplib is done closing (a promise reaction is).
   */
  noteClosed(operation: Operation, how: string): void {
    const { type, closed } = this.#closedBy();
    operation.noteFailureType(type, `${closed} ${how}`);
  }

  /**
   * Notes a promise-API `recover()` whose answer amqplib has not read yet, by a test of whether it
   * still awaits it. The deliveries that arrive after the call and before the answer were sent
   * before the broker read the request, which requeued them too: they end as recovered with the
   * answer. A promise reaction runs only once amqplib has handed over every delivery read with the
   * answer, redeliveries included, so the answer is told by the next delivery
   * ({@link recoversAnswered}), or by the promise when none came.
   */
  awaitRecover(waiting: () => boolean): void {
    this.#recovers.push(waiting);
  }

  /** Forgets a recover {@link awaitRecover} noted (its promise rejected: nothing was recovered). */
  forgetRecover(waiting: () => boolean): void {
    const at = this.#recovers.indexOf(waiting);
    if (at !== -1) this.#recovers.splice(at, 1);
  }

  /**
   * Ends, as recovered, the open deliveries that arrived before the answer of the recovers answered
   * by now (the broker answers a channel's requests in order), except those an unproven `allUpTo`
   * settle may have settled (see `UnprovenSettles`). Called before a delivery is handed to its
   * consumer, and when a recover's promise fulfils.
   */
  recoversAnswered(): void {
    const recovers = this.#recovers;
    let answered = false;
    while (recovers.length > 0 && !(recovers[0] as () => boolean)()) {
      recovers.shift();
      answered = true;
    }
    if (answered) DeliveryTracker.endRecovered(this.deliveries.takeRecovered(this.unproven.greatestTag));
  }

  /** Notes the delivery tag of a message delivered on the channel (see {@link lastDeliveryTag}). */
  delivered(tag: unknown): void {
    // The greatest, not the latest noted: a promise get's tag is noted a microtask after amqplib
    // read it, when deliveries read in the same chunk after it may have been noted already.
    if (typeof tag !== 'number' || tag <= this.lastDeliveryTag) return;
    this.lastDeliveryTag = tag;
    this.unproven.delivered(tag, this.deliveries);
  }

  /** Notes a tag amqplib just settled alone, or delivered without ack (see {@link #settledAlone}). */
  settledAlone(tag: number): void {
    const memory = this.#settledAlone;
    if (this.deliveries.size === 0) {
      // Cleared only when it holds something: clearing allocates a fresh table, and with one
      // delivery open at a time (prefetch 1) the memory is empty at every settle.
      if (memory.size !== 0) memory.clear();
      return;
    }
    memory.add(tag);
    if (memory.size > SETTLED_ALONE_MEMORY) memory.delete(memory.values().next().value as number);
  }

  /** Notes the queue of a message got with acks, for its settle (see {@link #gotQueues}). */
  gotFrom(tag: number, queue: string): void {
    if (!this.opts.settleSpans) return;
    const memory = this.#gotQueues;
    memory.set(tag, queue);
    if (memory.size > SETTLED_ALONE_MEMORY) memory.delete(memory.keys().next().value as number);
  }

  /**
   * The queue of the got message a settle names (see {@link #gotQueues}), forgetting every got
   * message it settles: `tag` alone, or with `multiple` every tag up to it (all with no tag).
   */
  takeGotQueue(tag: number | undefined, multiple: boolean): string | undefined {
    const memory = this.#gotQueues;
    if (memory.size === 0) return undefined;
    const queue = tag === undefined ? undefined : memory.get(tag);
    if (!multiple) {
      if (tag !== undefined) memory.delete(tag);
      return queue;
    }
    for (const got of memory.keys()) if (tag === undefined || got <= tag) memory.delete(got);
    return queue;
  }

  /** Whether `tag` was settled alone or delivered without ack (see {@link #settledAlone}). */
  wasSettledAlone(tag: number): boolean {
    return this.#settledAlone.has(tag);
  }

  /** Calls a raw method with the raw channel as `this`. */
  call(method: string, args: unknown[]): unknown {
    return (this.raw[method] as AnyFunction).apply(this.raw, args);
  }

  /**
   * The template of an operation's spans named after `nameDestination`. It carries
   * `nameDestination` as `messaging.destination.name` (built once per destination), so a span
   * whose full destination is the same needs no attribute object of its own; others pass theirs
   * (see `destinationOverride`).
   */
  template(operation: AmqpOperation, nameDestination: string | undefined): SpanTemplate {
    return this.#templates.of(operation).get(nameDestination);
  }

  /**
   * The routing key as `messaging.destination.name` may show it: always on the default exchange
   * (where it is the queue name), else only with `captureRoutingKey` (it may carry personal data).
   */
  destinationRoutingKey(exchange: string, routingKey: string): string {
    return exchange === '' || this.opts.captureRoutingKey ? routingKey : '';
  }

  /** The low-cardinality destination for a span name and metrics (see {@link defaultSpanDestination}). */
  nameFor(
    operation: string,
    exchange: string,
    routingKey: string,
    queue: string | undefined,
  ): string | undefined {
    const custom = this.opts.spanDestination;
    if (!custom) return defaultSpanDestination({ operation, exchange, routingKey, queue });
    const parts = { operation, exchange, routingKey, queue };
    try {
      const name: unknown = custom(parts);
      if (typeof name === 'string') return name !== '' ? name : undefined;
      // `undefined` (or `null`) leaves the destination out; any other value is a hook gone wrong,
      // treated as one that throws.
      return name === undefined || name === null ? undefined : defaultSpanDestination(parts);
    } catch {
      return defaultSpanDestination(parts);
    }
  }

  /**
   * The metric of an operation on a low-cardinality destination, or undefined without metrics.
   * Direct reply-to's `amq.rabbitmq.reply-to` (the span-name form of every reply address, and the
   * pseudo-queue a requester consumes from) is a template, not a destination's name: the metric
   * carries it as `messaging.destination.template`, as the spans do, and no name.
   */
  metric(
    operation: MetricOperation,
    operationName: string,
    nameDestination: string | undefined,
    count = 1,
  ): OperationMetric | undefined {
    const templated = nameDestination === DIRECT_REPLY_TO;
    return operationMetric(
      this.opts.instr.metrics !== undefined,
      this.metrics,
      operation,
      operationName,
      templated ? undefined : nameDestination,
      count,
      undefined,
      this.#server,
      templated ? DIRECT_REPLY_TO : undefined,
    );
  }
}
