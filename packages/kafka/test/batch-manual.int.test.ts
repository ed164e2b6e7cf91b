import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/kafka';
import { parentSpanId, sleep, until, useTestTracing } from '@hoptrace/test-kit';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Consumer, ConsumerRunConfig, EachBatchHandler, EachBatchPayload, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { committedOffsets, createTopics, groupId, newKafka } from './helpers.ts';

/**
 * kafkajs's manual eachBatch paths, each run side by side with the raw client and a traced one in
 * both span modes (`batchSpans: 'message'` and `'batch'`), on the real broker: the handler calls,
 * consumer events and offsets committed must be the same; the spans must say what happened.
 */
const tracing = useTestTracing();

type Variant = 'raw' | 'message' | 'batch';
const VARIANTS: readonly Variant[] = ['raw', 'message', 'batch'];

/** One run of a scenario: its client, topic, group and what its handler noted. */
interface Ctx {
  kafka: Kafka;
  topic: string;
  group: string;
  consumer: Consumer;
  log: unknown[];
  calls: number;
  state: Record<string, unknown>;
}

/** A workload: messages (per partition) produced first, the run config, when it is done. */
interface Scenario {
  partitions?: number;
  messages?: number;
  consumer?: object;
  run: (ctx: Ctx) => ConsumerRunConfig;
  done: (ctx: Ctx) => boolean;
  /** Default: disconnect. */
  end?: (ctx: Ctx) => Promise<void>;
  /** Sort the log and events (concurrent partitions). */
  unordered?: boolean;
}

/** `value` as JSON with errors named and the run's topic replaced, to compare across runs. */
function norm(value: unknown, topic: string): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v) => (v instanceof Error ? `${v.name}: ${v.message}` : v)).replaceAll(
      topic,
      'T',
    ),
  );
}

/** Runs `scenario` once with `variant`; returns what the application and the broker observed. */
async function runOnce(variant: Variant, scenario: Scenario) {
  const kafka = newKafka(`kjsbatch-${variant}`);
  const [topic] = (await createTopics(kafka, 1, scenario.partitions ?? 1)) as [string];
  const producer = traceProducer(kafka.producer());
  await producer.connect();
  const n = scenario.messages ?? 4;
  const partitions = scenario.partitions ?? 1;
  await producer.send({
    topic,
    messages: Array.from({ length: n * partitions }, (_, i) => ({
      value: `v${i}`,
      partition: i % partitions,
    })),
  });
  await producer.disconnect();
  const group = `kjsbatch-${groupId()}`;
  const made = kafka.consumer({
    groupId: group,
    maxWaitTimeInMs: 100,
    retry: { initialRetryTime: 50, retries: 2 },
    ...scenario.consumer,
  });
  const consumer =
    variant === 'raw' ? made : traceConsumer(made, { batchSpans: variant === 'batch' ? 'batch' : 'message' });
  const events: unknown[] = [];
  const e = consumer.events;
  consumer.on(e.GROUP_JOIN, () => events.push('join'));
  consumer.on(e.CRASH, ({ payload }) => events.push(['crash', String(payload.error), payload.restart]));
  consumer.on(e.END_BATCH_PROCESS, ({ payload }) =>
    events.push(['end_batch', payload.partition, payload.batchSize, payload.firstOffset, payload.lastOffset]),
  );
  consumer.on(e.COMMIT_OFFSETS, ({ payload }) =>
    events.push([
      'commit',
      payload.topics.flatMap((t) => t.partitions.map((p) => `${p.partition}:${p.offset}`)).sort(),
    ]),
  );
  consumer.on(e.STOP, () => events.push('stop'));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const ctx: Ctx = { kafka, topic, group, consumer, log: [], calls: 0, state: {} };
  await consumer.run(scenario.run(ctx));
  await until(() => scenario.done(ctx), `${variant} done`, 15_000).catch((error) => {
    throw new Error(`${variant}: ${error} ${JSON.stringify(norm({ log: ctx.log, events }, topic))}`);
  });
  await sleep(200);
  if (scenario.end) await scenario.end(ctx);
  else await consumer.disconnect();
  if (scenario.unordered) {
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i];
      if (Array.isArray(event) && event[0] === 'commit') events.splice(i, 1);
    }
    ctx.log.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    events.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  const open = tracing.current.openSpans().filter((s) => s.name === `process ${topic}`).length;
  return {
    topic,
    observed: norm(
      { log: ctx.log, events, committed: await committedOffsets(group, topic, kafka), open },
      topic,
    ),
  };
}

/** What a `process` span of the topic says (see {@link compact}). */
interface SpanView {
  kind: 'batch' | 'msg';
  offset?: unknown;
  partition?: unknown;
  count?: unknown;
  status: number;
  errorType?: unknown;
  unresolved?: unknown;
  exceptions: number;
}

/** Message spans are children of the send span; batch spans are roots linked to it. */
function checkRelations(topic: string): void {
  const all = tracing.current.spans();
  const sends = all.filter((s) => s.name === `send ${topic}`);
  expect(sends).toHaveLength(1);
  const send = (sends[0] as ReadableSpan).spanContext();
  for (const s of all.filter((x) => x.name === `process ${topic}`)) {
    // A failure is recorded once, where it is noted; nothing else carries an exception.
    expect(s.events.filter((e) => e.name === 'exception').length).toBe(s.status.code === 2 ? 1 : 0);
    if (s.attributes['messaging.batch.message_count'] === undefined) {
      expect(parentSpanId(s)).toBe(send.spanId);
      expect(s.spanContext().traceId).toBe(send.traceId);
    } else {
      expect(parentSpanId(s)).toBeUndefined();
      expect(s.spanContext().traceId).not.toBe(send.traceId);
      expect(s.links.length).toBe(s.attributes['messaging.batch.message_count']);
      for (const link of s.links) expect(link.context.spanId).toBe(send.spanId);
    }
  }
}

/**
 * The spans of `topic` in the order they ended, one group per batch call (its message spans, then
 * the batch span): `3u` message offset 3 unresolved, `1!` an ERROR message span, `B4!Error` a batch
 * of four that failed with `error.type` Error. Groups are sorted for concurrent partitions.
 */
function compact(views: SpanView[], unordered = false): string {
  const groups: string[] = [];
  let group: string[] = [];
  for (const v of views) {
    const error = v.status === 2 ? `!${v.kind === 'batch' ? v.errorType : ''}` : '';
    if (v.kind === 'msg') group.push(`${v.offset}${v.unresolved ? 'u' : ''}${error}`);
    else {
      group.push(`B${v.count}${error}`);
      groups.push(`${unordered ? `p${v.partition}:` : ''}${group.join(' ')}`);
      group = [];
    }
  }
  if (unordered) groups.sort();
  return groups.join(' | ');
}

/** The `process` spans of `topic`, in the order they ended. */
function spanView(topic: string): SpanView[] {
  return tracing.current
    .spans()
    .filter((s: ReadableSpan) => s.name === `process ${topic}`)
    .map((s) => {
      const count = s.attributes['messaging.batch.message_count'];
      return {
        kind: count === undefined ? 'msg' : 'batch',
        ...(count === undefined ? { offset: s.attributes['kafka.offset'] } : { count }),
        partition: s.attributes['messaging.destination.partition.id'],
        status: s.status.code,
        errorType: s.attributes['error.type'],
        unresolved: s.attributes['hoptrace.message.unresolved'],
        exceptions: s.events.filter((e) => e.name === 'exception').length,
      } as SpanView;
    });
}

/**
 * Runs raw and both traced modes side by side; expects identical observations, the span relations
 * of {@link checkRelations}, and the traced spans `spans` (see {@link compact}).
 */
async function differential(scenario: Scenario, spans: { message: string; batch: string }) {
  const results = await Promise.all(VARIANTS.map((v) => runOnce(v, scenario)));
  const [raw, message, batch] = results as [
    Awaited<ReturnType<typeof runOnce>>,
    Awaited<ReturnType<typeof runOnce>>,
    Awaited<ReturnType<typeof runOnce>>,
  ];
  expect(message.observed).toEqual(raw.observed);
  expect(batch.observed).toEqual(raw.observed);
  expect((raw.observed as { open: number }).open).toBe(0);
  checkRelations(message.topic);
  checkRelations(batch.topic);
  const got = {
    message: compact(spanView(message.topic), scenario.unordered),
    batch: compact(spanView(batch.topic), scenario.unordered),
  };
  expect(got).toEqual(spans);
  return raw.observed as { log: unknown[]; events: unknown[]; committed: string[] };
}

/** The offsets of the batch's messages. */
function offsets(p: EachBatchPayload): string[] {
  return p.batch.messages.map((m) => m.offset);
}

describe('kafkajs manual eachBatch paths: raw vs traced (message and batch modes)', () => {
  it('autoResolve false: resolve two then throw; retry resolves all', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            if (ctx.calls === 1) {
              p.resolveOffset('0');
              p.resolveOffset('1');
              throw new Error('after two');
            }
            for (const o of offsets(p)) p.resolveOffset(o);
          },
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      { message: '0 1 2u 3u B4!Error | 2 3 B2', batch: 'B4!Error | B2' },
    );
  });

  it('resolveOffset out of order (2 then 0), return without resolving the rest', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            if (ctx.calls === 1) {
              p.resolveOffset('2');
              p.resolveOffset('0');
              ctx.log.push(p.uncommittedOffsets());
              return;
            }
            for (const o of offsets(p)) p.resolveOffset(o);
          },
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      // kafkajs keeps the offset resolved last (0), so 1 and 2 come again; their first spans had
      // already ended, unmarked, at the resolve of 2 (a span ends at the resolve that covers it).
      { message: '0 1 2 3u B4 | 1 2 3 B3', batch: 'B4 | B3' },
    );
  });

  it('never resolving (autoResolve false): redelivered until resolved', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            if (ctx.calls < 3) return;
            p.resolveOffset(offsets(p).at(-1) as string);
          },
        }),
        done: (ctx) => ctx.calls >= 3,
      },
      { message: '0u 1u 2u 3u B4 | 0u 1u 2u 3u B4 | 0 1 2 3 B4', batch: 'B4 | B4 | B4' },
    );
  });

  it('commitOffsetsIfNecessary inside the handler, then a throw', async () => {
    await differential(
      {
        consumer: {},
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          autoCommitThreshold: 1,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            if (ctx.calls === 1) {
              p.resolveOffset('0');
              ctx.log.push(['c1', await p.commitOffsetsIfNecessary()]);
              ctx.log.push(['u', p.uncommittedOffsets()]);
              p.resolveOffset('1');
              ctx.log.push([
                'c2',
                await p.commitOffsetsIfNecessary({
                  topics: [{ topic: p.batch.topic, partitions: [{ partition: 0, offset: '2' }] }],
                }),
              ]);
              ctx.log.push(['u', p.uncommittedOffsets()]);
              throw new Error('after commit');
            }
            for (const o of offsets(p)) p.resolveOffset(o);
          },
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      { message: '0 1 2u 3u B4!Error | 2 3 B2', batch: 'B4!Error | B2' },
    );
  });

  it('autoCommit false with consumer.commitOffsets from eachBatch', async () => {
    await differential(
      {
        run: (ctx) => ({
          autoCommit: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            p.resolveOffset('1');
            ctx.log.push(['u', p.uncommittedOffsets()]);
            ctx.log.push([
              'c',
              await ctx.consumer.commitOffsets([{ topic: p.batch.topic, partition: 0, offset: '2' }]),
            ]);
            ctx.log.push(['u', p.uncommittedOffsets()]);
          },
        }),
        done: (ctx) => ctx.calls >= 1,
      },
      { message: '0 1 2 3 B4', batch: 'B4' },
    );
  });

  it('heartbeat, isRunning, isStale; pause() of the batch partition then return; resume later', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            ctx.log.push(['hb', await p.heartbeat(), p.isRunning(), p.isStale()]);
            if (ctx.calls === 1) {
              p.resolveOffset('0');
              p.resolveOffset('1');
              const resume = p.pause();
              ctx.log.push(['paused', ctx.consumer.paused()]);
              setTimeout(resume, 400);
              return;
            }
            for (const o of offsets(p)) p.resolveOffset(o);
          },
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      { message: '0 1 2u 3u B4 | 2 3 B2', batch: 'B4 | B2' },
    );
  });

  it('consumer.seek inside eachBatch: the batch goes stale; what the handler never reached is unresolved', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            for (const m of p.batch.messages) {
              ctx.log.push(['m', m.offset, p.isStale()]);
              p.resolveOffset(m.offset);
              if (ctx.calls === 1 && m.offset === '2') {
                ctx.consumer.seek({ topic: p.batch.topic, partition: 0, offset: '1' });
              }
              if (p.isStale()) break;
            }
          },
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      // kafkajs resolves the whole batch after the handler, but the seek replaces that position:
      // offset 3, never reached, comes again (with 1 and 2) and its first span says unresolved.
      { message: '0 1 2 3u B4 | 1 2 3 B3', batch: 'B4 | B3' },
    );
  });

  it('break after two messages (autoResolve true), and filtered/skipped resolves (autoResolve false)', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            let i = 0;
            for (const m of p.batch.messages) {
              if (i++ === 2) break;
              ctx.log.push(m.offset);
            }
          },
        }),
        done: (ctx) => ctx.calls >= 1,
      },
      { message: '0 1 2 3 B4', batch: 'B4' },
    );
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            for (const m of p.batch.messages)
              if (ctx.calls > 1 || Number(m.offset) % 2 === 0) p.resolveOffset(m.offset);
          },
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      { message: '0 1 2 3u B4 | 3 B1', batch: 'B4 | B1' },
    );
  });

  it('a handler returning a non-promise value; a handler throwing a string, then undefined', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: ((p: EachBatchPayload) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            p.resolveOffset(ctx.calls === 1 ? '1' : '3');
            return 42;
          }) as unknown as EachBatchHandler,
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      { message: '0 1 2u 3u B4 | 2 3 B2', batch: 'B4 | B2' },
    );
    await differential(
      {
        run: (ctx) => ({
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            if (ctx.calls === 1) throw 'a string';
            if (ctx.calls === 2) throw { code: 'E_OBJ' };
          },
        }),
        done: (ctx) => ctx.calls >= 3,
      },
      {
        message: '0u 1u 2u 3u B4!_OTHER | 0u 1u 2u 3u B4!E_OBJ | 0 1 2 3 B4',
        batch: 'B4!_OTHER | B4!E_OBJ | B4',
      },
    );
    await differential(
      {
        run: (ctx) => ({
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            throw undefined;
          },
        }),
        done: (ctx) => ctx.calls >= 1,
      },
      { message: '0u 1u 2u 3u B4!_OTHER', batch: 'B4!_OTHER' },
    );
  });

  it('partitionsConsumedConcurrently 3 on a 3-partition topic', async () => {
    await differential(
      {
        partitions: 3,
        unordered: true,
        run: (ctx) => ({
          partitionsConsumedConcurrently: 3,
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            const key = `p${p.batch.partition}`;
            const seen = ((ctx.state[key] as number | undefined) ?? 0) + 1;
            ctx.state[key] = seen;
            ctx.log.push([p.batch.partition, seen, offsets(p)]);
            await sleep(100);
            p.resolveOffset(offsets(p)[0] as string);
            if (p.batch.partition === 1 && seen === 1) throw new Error('p1 once');
            for (const o of offsets(p)) p.resolveOffset(o);
          },
        }),
        done: (ctx) => ctx.state.p0 === 1 && ctx.state.p1 === 2 && ctx.state.p2 === 1,
      },
      {
        message: 'p0:0 1 2 3 B4 | p1:0 1u 2u 3u B4!Error | p1:1 2 3 B3 | p2:0 1 2 3 B4',
        batch: 'p0:B4 | p1:B3 | p1:B4!Error | p2:B4',
      },
    );
  });

  it('stop() then run() again on the same consumer', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            if (ctx.calls > 1) {
              while (p.isRunning()) await sleep(20);
              return;
            }
            ctx.log.push(['first', offsets(p)]);
            p.resolveOffset('1');
          },
        }),
        done: (ctx) => ctx.calls >= 1,
        end: async (ctx) => {
          await ctx.consumer.stop();
          ctx.log.push(['c', await committedOffsets(ctx.group, ctx.topic, ctx.kafka)]);
          let again = 0;
          await ctx.consumer.run({
            eachBatch: async (p) => {
              again++;
              ctx.log.push(['second', offsets(p)]);
            },
          });
          await until(() => again >= 1, 'second run');
          await sleep(200);
          await ctx.consumer.disconnect();
        },
      },
      { message: '0 1 2u 3u B4 | 2u 3u B2 | 2 3 B2', batch: 'B4 | B2 | B2' },
    );
  });

  it('disconnect() while a batch handler awaits', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            p.resolveOffset('0');
            ctx.state.waiting = true;
            await new Promise<void>((resolve) => {
              ctx.state.release = resolve;
            });
            ctx.log.push(['after', p.isRunning(), p.isStale()]);
            p.resolveOffset('1');
          },
        }),
        done: (ctx) => ctx.state.waiting === true,
        end: async (ctx) => {
          const disconnected = ctx.consumer.disconnect().then(() => ctx.log.push('disconnected'));
          await sleep(300);
          ctx.log.push('release');
          (ctx.state.release as () => void)();
          await disconnected;
        },
      },
      { message: '0 1 2u 3u B4', batch: 'B4' },
    );
  });

  it('disconnect() while a batch handler awaits, then the handler throws', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            ctx.log.push(offsets(p));
            p.resolveOffset('0');
            ctx.state.waiting = true;
            await new Promise<void>((resolve) => {
              ctx.state.release = resolve;
            });
            p.resolveOffset('1');
            throw new Error('late failure');
          },
        }),
        done: (ctx) => ctx.state.waiting === true,
        end: async (ctx) => {
          const disconnected = ctx.consumer.disconnect().then(
            () => ctx.log.push('disconnected'),
            (error) => ctx.log.push(['disconnect failed', error]),
          );
          await sleep(300);
          (ctx.state.release as () => void)();
          await disconnected;
          await sleep(300);
        },
      },
      { message: '0 1 2u 3u B4!Error', batch: 'B4!Error' },
    );
  });

  it('batch.messages changed in place by the handler (shift() loop; reverse())', async () => {
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            // Consumes the array kafkajs handed over; kafkajs itself no longer reads it.
            for (let m = p.batch.messages.shift(); m; m = p.batch.messages.shift()) {
              ctx.log.push(m.offset);
              p.resolveOffset(m.offset);
            }
          },
        }),
        done: (ctx) => ctx.calls >= 1,
      },
      { message: '0 1 2 3 B4', batch: 'B4' },
    );
    await differential(
      {
        run: (ctx) => ({
          eachBatchAutoResolve: false,
          eachBatch: async (p) => {
            ctx.calls++;
            if (ctx.calls > 1) {
              for (const m of p.batch.messages) p.resolveOffset(m.offset);
              return;
            }
            // Newest first: resolving the newest resolves the batch, as kafkajs keeps the last one.
            p.batch.messages.reverse();
            for (const m of p.batch.messages) {
              ctx.log.push(m.offset);
              if (m.offset === '3') p.resolveOffset(m.offset);
            }
            p.resolveOffset('1');
          },
        }),
        done: (ctx) => ctx.calls >= 2,
      },
      { message: '0 1 2 3 B4 | 2 3 B2', batch: 'B4 | B2' },
    );
  });
});

describe('at-most-once in message mode: resolveOffset before withMessageContext', () => {
  it('the call gets a span of its own: its child spans go under it and its failure is recorded', async () => {
    const kafka = newKafka('kjsbatch-amo');
    const [topic] = (await createTopics(kafka, 1, 1)) as [string];
    const producer = traceProducer(kafka.producer());
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.disconnect();
    const consumer = traceConsumer(kafka.consumer({ groupId: `kjsbatch-${groupId()}` }));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const caught: string[] = [];
    try {
      await consumer.run({
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) {
            resolveOffset(m.offset); // at most once: resolved before it is processed
            try {
              withMessageContext(m, () => {
                trace.getTracer('test').startSpan(`work ${m.value}`).end();
                if (String(m.value) === 'b') throw new RangeError('bad b');
              });
            } catch (error) {
              caught.push((error as Error).message);
            }
          }
        },
      });
      await until(() => caught.length === 1 && tracing.current.spans().some((s) => s.name === 'work b'), 'b');
    } finally {
      await consumer.disconnect();
    }
    expect(caught).toEqual(['bad b']);
    const spans = tracing.current.spans();
    const send = spans.find((s) => s.name === `send ${topic}`) as ReadableSpan;
    const process = spans.filter(
      (s) => s.name === `process ${topic}` && s.attributes['messaging.batch.message_count'] === undefined,
    );
    // Each message: its span ended by resolveOffset, and the span of the withMessageContext call
    // (the batch span aside).
    expect(process).toHaveLength(4);
    for (const value of ['a', 'b']) {
      const work = spans.find((s) => s.name === `work ${value}`) as ReadableSpan;
      const call = process.find((s) => s.spanContext().spanId === parentSpanId(work)) as ReadableSpan;
      expect(call).toBeDefined();
      expect(parentSpanId(call)).toBe(send.spanContext().spanId);
      expect(call.status.code).toBe(value === 'b' ? SpanStatusCode.ERROR : SpanStatusCode.UNSET);
      if (value === 'b') {
        expect(call.attributes['error.type']).toBe('RangeError');
        expect(call.events.filter((e) => e.name === 'exception')).toHaveLength(1);
      }
    }
    expect(tracing.current.openSpans()).toEqual([]);
  });
});
