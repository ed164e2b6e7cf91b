import { deadLetterOptions, traceConnection } from '@hoptrace/amqp';
import { traceProcessor, traceQueue } from '@hoptrace/bullmq';
import type { ErrorClassifier } from '@hoptrace/core';
import { traceKafka } from '@hoptrace/kafka';
import type { BrokerEndpoints } from '@hoptrace/test-kit/harness';
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import amqplib from 'amqplib';
import { Queue, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { type KafkaClientKind, openKafkaHop } from './kafka-clients.ts';
import { pipelineKafkaLog } from './kafka-log.ts';
import { type PipelineNames, pipelineNames } from './names.ts';

/** An order as it travels: JSON in every message. */
export interface Order {
  id: string;
  tenant: string;
  items: number;
  /**
   * The RabbitMQ hop refuses it with {@link PoisonOrderError} (code `POISON_ORDER`): it republishes a
   * dead-letter copy carrying the failure's lineage, and a dead-letter consumer handles it within the
   * original trace, linked to the failed attempt.
   */
  poison?: boolean;
  /** The first BullMQ attempt fails; BullMQ's retry succeeds. */
  flaky?: boolean;
}

/** What the RabbitMQ hop throws for an order it must never process (a business failure, not retryable). */
export class PoisonOrderError extends Error {
  /** The business error code: low cardinality, recorded as `error.type`. */
  readonly code = 'POISON_ORDER';
  constructor(orderId: string) {
    super(`order ${orderId} failed validation`);
    this.name = 'PoisonOrderError';
  }
}

/**
 * The pipeline's error classifier, given to every wrapper and to the dead-letter helper so the span,
 * the dead-letter headers and the log lines agree: business errors by their code, not retryable.
 */
export const classifyOrderError: ErrorClassifier = (error) =>
  error instanceof PoisonOrderError ? { type: error.code, retryable: false } : undefined;

/** How an order ended. */
export interface OrderOutcome {
  orderId: string;
  status: 'fulfilled' | 'dead-lettered';
  attempts: number;
}

/** A running order pipeline: Kafka -> RabbitMQ -> BullMQ, plus a scheduled reconciliation to Kafka. */
export interface Pipeline {
  names: PipelineNames;
  /** Places an order inside a root SERVER span `POST /orders` with `tenant.id` baggage; resolves with the trace id and the order's outcome. */
  placeOrder(order: Order): Promise<{ traceId: string; done: Promise<OrderOutcome> }>;
  /** Starts the reconciliation job scheduler (every `everyMs`) and returns the trace id of the call that scheduled it. */
  scheduleReconciliation(everyMs: number): Promise<{ traceId: string; spanId: string }>;
  /** Removes the reconciliation job scheduler. */
  unscheduleReconciliation(): Promise<void>;
  /** Reconciliation runs seen so far (each publishes to the reconciliation topic, consumed by an audit consumer). */
  reconciliationRuns(): number;
  stop(): Promise<void>;
}

/** Options for {@link startPipeline}. */
export interface PipelineOptions {
  endpoints: BrokerEndpoints;
  /** A pino logger whose `mixin` is `logFields` (every line carries the active span's ids). */
  logger: Logger;
  names?: PipelineNames;
  /** BullMQ backoff between attempts, ms (default 50). */
  retryDelayMs?: number;
  /** The client of the Kafka hops: `'kafkajs'` (default, @hoptrace/kafka) or `'platformatic'` (@hoptrace/platformatic-kafka). */
  kafkaClient?: KafkaClientKind;
}

/**
 * Starts the order pipeline on real brokers, traced with hoptrace's adapters on every hop:
 * 1. `POST /orders` (root SERVER span) sends `order placed` to Kafka;
 * 2. a Kafka consumer reserves stock and publishes `order.reserved` to a RabbitMQ topic exchange;
 * 3. a RabbitMQ consumer enqueues a BullMQ `fulfil` job (poison orders fail with `POISON_ORDER` and are
 *    republished to a dead-letter exchange with their failure lineage; a dead-letter consumer handles
 *    them within the original trace, linked to the failed attempt);
 * 4. a BullMQ worker completes the order (flaky orders fail the first attempt).
 * A BullMQ job scheduler runs a reconciliation that publishes to another Kafka topic.
 * Baggage `tenant.id` is allow-listed on the BullMQ worker only.
 */
export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const names = options.names ?? pipelineNames();
  const log = options.logger;
  const tracer = trace.getTracer('order-service');
  const pending = new Map<string, (outcome: OrderOutcome) => void>();
  const settle = (outcome: OrderOutcome) => {
    pending.get(outcome.orderId)?.(outcome);
    pending.delete(outcome.orderId);
  };
  const cleanups: Array<() => Promise<unknown>> = [];

  // Kafka (topics created up front so the consumers' first fetch finds them).
  const kafka = traceKafka(
    new Kafka({
      clientId: 'order-service',
      brokers: options.endpoints.kafka.brokers,
      logLevel: logLevel.ERROR,
      logCreator: pipelineKafkaLog,
    }),
    // Order ids are the message keys here and carry no personal data, so the demo opts in to
    // recording them (`kafka.message.key` is off by default).
    { captureKeys: true, classifyError: classifyOrderError },
  );
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic: names.ordersTopic }, { topic: names.reconciliationTopic }],
    waitForLeaders: true,
  });
  await admin.disconnect();
  const kafkaHop = await openKafkaHop(
    options.kafkaClient ?? 'kafkajs',
    kafka,
    options.endpoints.kafka.brokers,
  );
  cleanups.push(() => kafkaHop.stop());

  // RabbitMQ.
  const connection = traceConnection(await amqplib.connect(options.endpoints.rabbitmq.url), {
    classifyError: classifyOrderError,
  });
  cleanups.push(() => connection.close());
  const publishChannel = await connection.createConfirmChannel();
  const consumeChannel = await connection.createChannel();
  await consumeChannel.prefetch(10);
  await publishChannel.assertExchange(names.exchange, 'topic', { durable: false, autoDelete: true });
  await publishChannel.assertExchange(names.deadLetterExchange, 'fanout', {
    durable: false,
    autoDelete: true,
  });
  // Exclusive (to this one connection, gone with it) rather than transient and shared: RabbitMQ 4.x
  // deprecates transient non-exclusive queues and a later release refuses them.
  await consumeChannel.assertQueue(names.fulfilmentRequests, {
    exclusive: true,
    arguments: { 'x-dead-letter-exchange': names.deadLetterExchange },
  });
  await consumeChannel.bindQueue(names.fulfilmentRequests, names.exchange, 'order.reserved');
  await consumeChannel.assertQueue(names.deadLetters, { exclusive: true });
  await consumeChannel.bindQueue(names.deadLetters, names.deadLetterExchange, '');

  // BullMQ.
  const redis = { host: options.endpoints.redis.host, port: options.endpoints.redis.port };
  const fulfilment = traceQueue(new Queue<Order>(names.fulfilmentQueue, { connection: redis }));
  const reconciliation = traceQueue(new Queue(names.reconciliationQueue, { connection: redis }));
  cleanups.push(async () => {
    await fulfilment.obliterate({ force: true }).catch(() => undefined);
    await reconciliation.removeJobScheduler(names.schedulerId).catch(() => undefined);
    await reconciliation.obliterate({ force: true }).catch(() => undefined);
    await fulfilment.close();
    await reconciliation.close();
  });

  // Hop 2: Kafka -> RabbitMQ.
  await kafkaHop.consume(names.ordersTopic, names.stockGroup, async (value) => {
    const order = JSON.parse(value || '{}') as Order;
    log.info({ orderId: order.id, hop: 'kafka' }, 'reserving stock');
    await new Promise<void>((resolve, reject) => {
      publishChannel.publish(
        names.exchange,
        'order.reserved',
        Buffer.from(JSON.stringify(order)),
        { messageId: order.id, correlationId: order.id, contentType: 'application/json' },
        (error) => (error ? reject(error) : resolve()),
      );
    });
  });

  // Hop 3: RabbitMQ -> BullMQ (and the DLQ).
  await consumeChannel.consume(names.fulfilmentRequests, (message) => {
    if (!message) return;
    const order = JSON.parse(message.content.toString()) as Order;
    if (order.poison) {
      // Dead-letter it ourselves, as Spring's dead-letter publishing does: the copy keeps the message's
      // headers (its creation context and baggage) and adds the failure's lineage (original queue,
      // error code, attempts, this attempt's span context), and the attempt's span records the code.
      const error = new PoisonOrderError(order.id);
      const copy = deadLetterOptions(message, error, {
        queue: names.fulfilmentRequests,
        classifyError: classifyOrderError,
      });
      log.warn({ orderId: order.id, hop: 'rabbitmq', code: error.code }, 'poison order dead-lettered');
      publishChannel.publish(names.deadLetterExchange, '', message.content, copy, (failed) =>
        failed ? consumeChannel.nack(message, false, false) : consumeChannel.ack(message),
      );
      return;
    }
    log.info({ orderId: order.id, hop: 'rabbitmq' }, 'enqueueing fulfilment');
    return fulfilment
      .add('fulfil', order, { attempts: 3, backoff: { type: 'fixed', delay: options.retryDelayMs ?? 50 } })
      .then(
        () => consumeChannel.ack(message),
        () => consumeChannel.nack(message, false, true),
      );
  });
  await consumeChannel.consume(names.deadLetters, (message) => {
    if (!message) return;
    const order = JSON.parse(message.content.toString()) as Order;
    log.warn({ orderId: order.id, hop: 'rabbitmq-dlq' }, 'dead-lettered order parked');
    consumeChannel.ack(message);
    settle({ orderId: order.id, status: 'dead-lettered', attempts: 0 });
  });

  // Hop 4: BullMQ worker.
  const worker = new Worker<Order>(
    names.fulfilmentQueue,
    traceProcessor(
      async (job) => {
        log.info({ orderId: job.data.id, hop: 'bullmq', attempt: job.attemptsMade + 1 }, 'fulfilling order');
        if (job.data.flaky && job.attemptsMade === 0) throw new Error('warehouse timed out');
        settle({ orderId: job.data.id, status: 'fulfilled', attempts: job.attemptsMade + 1 });
        return { fulfilled: true };
      },
      { baggageAttributes: ['tenant.id'], classifyError: classifyOrderError },
    ),
    { connection: redis, concurrency: 5 },
  );
  await worker.waitUntilReady();
  cleanups.push(() => worker.close());

  // Scheduled reconciliation: BullMQ scheduler -> worker -> Kafka -> audit consumer.
  let runs = 0;
  const reconWorker = new Worker(
    names.reconciliationQueue,
    traceProcessor(async (job) => {
      log.info({ hop: 'bullmq', scheduler: job.repeatJobKey }, 'reconciling');
      await kafkaHop.send(names.reconciliationTopic, JSON.stringify({ at: Date.now() }));
    }),
    { connection: redis },
  );
  await reconWorker.waitUntilReady();
  cleanups.push(() => reconWorker.close());
  await kafkaHop.consume(names.reconciliationTopic, names.reconciliationGroup, async () => {
    runs += 1;
    log.info({ hop: 'kafka' }, 'reconciliation audited');
  });

  return {
    names,
    async placeOrder(order) {
      const done = new Promise<OrderOutcome>((resolve) => pending.set(order.id, resolve));
      const bag = propagation.createBaggage({ 'tenant.id': { value: order.tenant } });
      const traceId = await tracer.startActiveSpan(
        'POST /orders',
        {
          kind: SpanKind.SERVER,
          root: true,
          attributes: { 'http.request.method': 'POST', 'http.route': '/orders' },
        },
        propagation.setBaggage(ROOT_CONTEXT, bag),
        async (span) => {
          try {
            log.info({ orderId: order.id, hop: 'http' }, 'order placed');
            await kafkaHop.send(names.ordersTopic, JSON.stringify(order), order.id);
            return span.spanContext().traceId;
          } catch (error) {
            span.setStatus({ code: SpanStatusCode.ERROR });
            throw error;
          } finally {
            span.end();
          }
        },
      );
      return { traceId, done };
    },
    async scheduleReconciliation(everyMs) {
      return tracer.startActiveSpan(
        'POST /admin/reconciliation',
        { kind: SpanKind.SERVER, root: true },
        async (span) => {
          try {
            await reconciliation.upsertJobScheduler(
              names.schedulerId,
              { every: everyMs },
              { name: 'reconcile', data: {} },
            );
            return { traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
          } finally {
            span.end();
          }
        },
      );
    },
    async unscheduleReconciliation() {
      await reconciliation.removeJobScheduler(names.schedulerId);
    },
    reconciliationRuns: () => runs,
    async stop() {
      await reconciliation.removeJobScheduler(names.schedulerId).catch(() => undefined);
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    },
  };
}
