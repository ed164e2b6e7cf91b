import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { traceConsumer, traceProducer, withMessageContext } from '@hoptrace/platformatic-kafka';
import { spansNamed, until, useTestTracing } from '@hoptrace/test-kit';
import { type LocalKafka, startLocalKafka } from '@hoptrace/test-kit/harness';
import { trace } from '@opentelemetry/api';
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { brokers, cleanup, createTopics, runCleanup } from './helpers.ts';

const tracing = useTestTracing({ leakGraceMs: 5000 });
afterEach(runCleanup);

/** Sends one message, retrying while the broker is away; true once acknowledged. */
async function sendWithRetry(
  producer: Producer<string, string, string, string>,
  topic: string,
  value: string,
) {
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      await producer.send({ messages: [{ topic, value }] });
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return false;
}

/** Consumes in the background, recording each value inside its process span. */
function drain(
  stream: AsyncIterable<{ value: string }>,
  into: Set<string>,
  activeSeen: boolean[],
): Promise<void> {
  return (async () => {
    try {
      for await (const message of stream) {
        withMessageContext(message, () => {
          activeSeen.push(trace.getActiveSpan() !== undefined);
          into.add(message.value);
        });
      }
    } catch {
      // the stream closed
    }
  })();
}

// Port 19096 (+ controller 19097): its own broker, apart from the shared one and other suites' private ones.
describe('the broker freezes mid-stream (private broker on 19096)', () => {
  let broker: LocalKafka | undefined;
  beforeAll(async () => {
    broker = await startLocalKafka({ port: 19096 });
  }, 120_000);
  afterAll(async () => {
    if (broker) {
      try {
        process.kill(broker.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await broker.stop();
    }
  });

  it('leaves no span open, throws nothing from hoptrace, and processes every acknowledged message', async () => {
    const local = broker as LocalKafka;
    const [topic] = (await createTopics(1, 1, local.brokers)) as [string];
    const producer = traceProducer(
      new Producer({
        clientId: 'fault',
        bootstrapBrokers: local.brokers,
        serializers: stringSerializers,
        timeout: 2000,
        retries: 2,
      }),
    );
    const consumer = traceConsumer(
      new Consumer({
        clientId: 'fault',
        groupId: `fault-${randomUUID()}`,
        bootstrapBrokers: local.brokers,
        deserializers: stringDeserializers,
        maxWaitTime: 200,
        timeout: 2000,
        sessionTimeout: 20_000,
        heartbeatInterval: 1000,
      }),
    );
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const processed = new Set<string>();
    const activeSeen: boolean[] = [];
    const loop = drain(stream, processed, activeSeen);
    const acknowledged = new Set<string>();
    const send = async (id: string) => {
      if (await sendWithRetry(producer, topic, id)) acknowledged.add(id);
    };
    for (let i = 0; i < 10; i++) await send(`before-${i}`);
    await until(() => processed.size === 10, 'the first ten messages');

    process.kill(local.pid, 'SIGSTOP');
    const outageStart = Date.now();
    const during = Promise.all(Array.from({ length: 10 }, (_, i) => send(`during-${i}`)));
    await new Promise((r) => setTimeout(r, 6000));
    process.kill(local.pid, 'SIGCONT');
    await during;
    expect(Date.now() - outageStart).toBeGreaterThanOrEqual(6000);
    for (let i = 0; i < 10; i++) await send(`after-${i}`);

    expect(acknowledged.size).toBe(30);
    await until(
      () => [...acknowledged].every((id) => processed.has(id)),
      'every acknowledged message',
      90_000,
    );
    await consumer.close(true);
    await producer.close();
    await loop;
    expect(activeSeen.every(Boolean)).toBe(true);
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(spansNamed(tracing.current.spans(), `process ${topic}`).length).toBeGreaterThanOrEqual(30);
    for (const span of spansNamed(tracing.current.spans(), `send ${topic}`).filter(
      (s) => s.status.code === 2,
    ))
      expect(span.attributes['error.type']).toBeTypeOf('string');
  }, 180_000);
});

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCES = Object.fromEntries(
  [
    ['@hoptrace/core', 'core/src/index.ts'],
    ['@hoptrace/core/adapter', 'core/src/adapter.ts'],
    ['@hoptrace/platformatic-kafka', 'platformatic-kafka/src/index.ts'],
  ].map(([name, path]) => [name, pathToFileURL(`${REPO}packages/${path}`).href]),
);
const SOURCE_HOOK = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
const sources = ${JSON.stringify(SOURCES)};
registerHooks({
  resolve: (specifier, context, next) =>
    sources[specifier] ? { url: sources[specifier], shortCircuit: true } : next(specifier, context),
});`)}`;

interface MemberReport {
  type: 'ready' | 'processed' | 'done';
  value?: string;
  open?: number;
  misuse?: string[];
  processSpans?: number;
}

describe('a consumer-group rebalance with two members in separate processes', () => {
  it('loses no message and leaves no span open in either member', async () => {
    const [topic] = (await createTopics(1, 4)) as [string];
    const group = `rebalance-${randomUUID()}`;
    const producer = traceProducer(
      new Producer({ clientId: 'rebalance', bootstrapBrokers: brokers(), serializers: stringSerializers }),
    );
    cleanup.push(() => producer.close());
    const a = traceConsumer(
      new Consumer({
        clientId: 'member-a',
        groupId: group,
        bootstrapBrokers: brokers(),
        deserializers: stringDeserializers,
        maxWaitTime: 100,
        sessionTimeout: 10_000,
        heartbeatInterval: 500,
      }),
    );
    const stream = await a.consume({
      topics: [topic],
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: 100,
    });
    const processed = new Set<string>();
    const activeSeen: boolean[] = [];
    const loop = drain(stream, processed, activeSeen);
    const produce = async (prefix: string, count: number) => {
      const messages = Array.from({ length: count }, (_, i) => ({
        topic,
        key: `${prefix}-${i}`,
        value: `${prefix}-${i}`,
      }));
      await producer.send({ messages });
      return messages.map((m) => m.value);
    };
    const sent: string[] = [...(await produce('alone', 20))];
    await until(() => sent.every((v) => processed.has(v)), 'member A alone');

    // Member B joins from another process: the group rebalances across the two.
    const reports: MemberReport[] = [];
    const member: ChildProcess = fork(
      fileURLToPath(new URL('./fixtures/member.ts', import.meta.url)),
      [brokers().join(','), topic, group],
      {
        execArgv: ['--import', SOURCE_HOOK, '--disable-warning=TimeoutNegativeWarning'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    cleanup.push(async () => member.kill('SIGKILL'));
    member.on('message', (report: MemberReport) => {
      reports.push(report);
      if (report.type === 'processed' && report.value) processed.add(report.value);
    });
    await until(() => reports.some((r) => r.type === 'ready'), 'member B started', 30_000);
    for (let round = 0; round < 10; round++) {
      sent.push(...(await produce(`both-${round}`, 20)));
      await new Promise((r) => setTimeout(r, 300));
    }
    await until(() => sent.every((v) => processed.has(v)), 'every message with two members', 60_000);
    await until(() => reports.some((r) => r.type === 'processed'), 'member B got partitions', 30_000);

    // Member B leaves: A takes every partition again.
    member.send('stop');
    await until(() => reports.some((r) => r.type === 'done'), 'member B closed', 30_000);
    sent.push(...(await produce('after', 20)));
    await until(() => sent.every((v) => processed.has(v)), 'every message after B left', 60_000);

    await stream.close();
    await a.close();
    await loop;
    const done = reports.find((r) => r.type === 'done') as MemberReport;
    expect(done.open).toBe(0);
    expect(done.misuse).toEqual([]);
    expect(done.processSpans).toBeGreaterThan(0);
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(activeSeen.every(Boolean)).toBe(true);
    expect(sent.filter((v) => !processed.has(v))).toEqual([]);
    // Each member made one process span per message it handled (redeliveries after a rebalance included).
    const local = spansNamed(tracing.current.spans(), `process ${topic}`).length;
    expect(local + (done.processSpans ?? 0)).toBeGreaterThanOrEqual(sent.length);
  }, 180_000);
});
