// The README's demo: orders through Kafka -> RabbitMQ -> BullMQ on real brokers, traced by hoptrace.
// Prints the trace trees of a retried and a dead-lettered order, writes a self-contained HTML waterfall
// and prints its path.
//   ./dev demo [--orders N] [--out DIR] [--kafka kafkajs|platformatic]   (DIR defaults to .artifacts/demo;
//   --kafka picks the client of the Kafka hops, kafkajs by default)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BrokerEndpoints, resolveAllBrokers } from '@hoptrace/test-kit/harness';
import {
  KAFKA_CLIENTS,
  type KafkaClientKind,
  memoryLogger,
  type Order,
  startPipeline,
} from '../pipeline/index.ts';
import { createDemoTracing } from './exporters.ts';
import { renderWaterfallHtml } from './render-html.ts';
import { renderTraceTree } from './render-tree.ts';

const USAGE =
  'usage: ./dev demo [--orders N] [--out DIR] [--kafka kafkajs|platformatic]\n' +
  '  --orders N   orders to run (an integer >= 3; default 12)\n' +
  '  --out DIR    where the HTML waterfall and the log go (default .artifacts/demo)\n' +
  '  --kafka      the client of both Kafka hops (default kafkajs)';
let flags: {
  orders?: string | undefined;
  kafka?: string | undefined;
  out?: string | undefined;
  help?: boolean;
};
try {
  ({ values: flags } = parseArgs({
    args: process.argv.slice(2),
    options: {
      orders: { type: 'string' },
      kafka: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  // An argument the demo does not take stops it before any broker starts.
  console.error(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}
const count = flags.orders === undefined ? 12 : Number(flags.orders);
if (!Number.isInteger(count) || count < 3) {
  console.error(`--orders takes an integer >= 3, got ${flags.orders}`);
  process.exit(2);
}
const kafkaClient = (flags.kafka ?? 'kafkajs') as KafkaClientKind;
if (!KAFKA_CLIENTS.includes(kafkaClient)) {
  console.error(`--kafka takes ${KAFKA_CLIENTS.join(' or ')}, got ${flags.kafka}`);
  process.exit(2);
}
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
const outDir = flags.out
  ? resolve(flags.out)
  : resolve(dirname(fileURLToPath(import.meta.url)), '../../../.artifacts/demo');
mkdirSync(outDir, { recursive: true });

const brokers = await resolveAllBrokers((line) => console.log(`[harness] ${line}`));
console.log(brokers.summary());
const tracing = createDemoTracing({ serviceName: 'hoptrace-demo' });
if (tracing.otlpEndpoint) console.log(`exporting spans via OTLP/HTTP to ${tracing.otlpEndpoint}`);
const logs = memoryLogger();
const pipeline = await startPipeline({
  endpoints: brokers.endpoints as BrokerEndpoints,
  logger: logs.logger,
  kafkaClient,
});
console.log(`Kafka hops use ${kafkaClient === 'platformatic' ? '@platformatic/kafka' : 'kafkajs'}`);

let exitCode = 0;
try {
  // A mix of orders: most go straight through; one fails its first BullMQ attempt; one is poison.
  const orders: Order[] = Array.from({ length: count }, (_, i) => ({
    id: `order-${String(i + 1).padStart(3, '0')}`,
    tenant: ['acme', 'globex', 'initech'][i % 3] as string,
    items: 1 + (i % 4),
    ...(i === 1 ? { flaky: true } : {}),
    ...(i === 2 ? { poison: true } : {}),
  }));
  const scheduling = await pipeline.scheduleReconciliation(1000);
  const started = performance.now();
  let finished = 0;
  // A live line on a terminal; a line per quarter when the output is a file or a CI log.
  let lastQuarter = 0;
  const progress = () => {
    const text = `orders: ${finished}/${count} done, reconciliation runs: ${pipeline.reconciliationRuns()}`;
    if (process.stdout.isTTY) process.stdout.write(`\r${text}   `);
    else if (Math.floor((finished * 4) / count) > lastQuarter) {
      lastQuarter = Math.floor((finished * 4) / count);
      process.stdout.write(`${text}\n`);
    }
  };
  const placed = await Promise.all(
    orders.map(async (order) => {
      const { traceId, done } = await pipeline.placeOrder(order);
      const outcome = await withTimeout(done, 60_000, `order ${order.id}`);
      finished += 1;
      progress();
      return { order, traceId, outcome };
    }),
  );
  while (pipeline.reconciliationRuns() < 2) await new Promise((r) => setTimeout(r, 100));
  if (process.stdout.isTTY) process.stdout.write('\n');
  process.stdout.write(
    `all ${count} orders done in ${((performance.now() - started) / 1000).toFixed(1)} s\n\n`,
  );
  await pipeline.unscheduleReconciliation();
  await new Promise((r) => setTimeout(r, 300)); // let the last spans end

  const spans = tracing.memory.getFinishedSpans();
  const flaky = placed.find((p) => p.order.flaky);
  const shown = flaky ?? placed[0];
  if (!shown) throw new Error('no order was placed');
  console.log(
    `trace of ${shown.order.id} (${shown.outcome.status} after ${shown.outcome.attempts} attempt(s)), trace id ${shown.traceId}:\n`,
  );
  console.log(renderTraceTree(spans, shown.traceId, { color: process.stdout.isTTY }));
  const line = logs.lines.find(
    (l) => l.hop === 'bullmq' && (l as { orderId?: string }).orderId === shown.order.id,
  );
  if (line) console.log(`\na log line from the worker hop carries the trace: ${JSON.stringify(line)}\n`);
  const poison = placed.find((p) => p.order.poison);
  if (poison) {
    console.log(`trace of ${poison.order.id} (${poison.outcome.status}), trace id ${poison.traceId}:\n`);
    console.log(renderTraceTree(spans, poison.traceId, { color: process.stdout.isTTY }));
    const dlqLine = logs.lines.find(
      (l) => l.hop === 'rabbitmq-dlq' && (l as { orderId?: string }).orderId === poison.order.id,
    );
    if (dlqLine) {
      console.log(
        `\nits dead-letter log line carries trace id, error code and tenant: ${JSON.stringify(dlqLine)}\n`,
      );
    }
  }

  const html = renderWaterfallHtml(spans, {
    title: `hoptrace demo: ${count} orders`,
    highlightTraceId: shown.traceId,
  });
  const htmlPath = join(outDir, 'waterfall.html');
  writeFileSync(htmlPath, html);
  writeFileSync(join(outDir, 'pipeline.log'), `${logs.lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  const traces = new Set(spans.map((s) => s.spanContext().traceId)).size;
  console.log(
    `${spans.length} spans in ${traces} traces (${count} orders, reconciliation runs, scheduling calls).`,
  );
  console.log(
    `scheduling trace ${scheduling.traceId}: each reconciliation run is its own trace linked to it.`,
  );
  console.log(`HTML waterfall: ${htmlPath}`);
  console.log(`pino log lines with trace ids: ${join(outDir, 'pipeline.log')}`);
} catch (error) {
  console.error('\ndemo failed:', error);
  exitCode = 1;
} finally {
  await pipeline.stop();
  // An unreachable collector must not keep the brokers running or hide the demo's own outcome.
  await tracing.shutdown().catch((error: unknown) => {
    console.error(`OTLP export failed: ${error instanceof Error ? error.message : String(error)}`);
    exitCode = 1;
  });
  await brokers.stop();
}
process.exit(exitCode);

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms).unref(),
    ),
  ]);
}
