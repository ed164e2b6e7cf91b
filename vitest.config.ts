import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Tests run against the published packages' TypeScript sources (the dist is checked by publint and
// attw). The test kit and the pipeline resolve as the workspace packages they are.
const alias = {
  '@hoptrace/core/adapter': here('./packages/core/src/adapter.ts'),
  '@hoptrace/core': here('./packages/core/src/index.ts'),
  '@hoptrace/kafka': here('./packages/kafka/src/index.ts'),
  '@hoptrace/platformatic-kafka': here('./packages/platformatic-kafka/src/index.ts'),
  '@hoptrace/amqp': here('./packages/amqp/src/index.ts'),
  '@hoptrace/bullmq': here('./packages/bullmq/src/index.ts'),
};

const brokerSetup = here('./packages/test-kit/src/harness/global-setup.ts');
// Every test fails when the SDK reported a span misuse during it (ended twice, written after its end...).
const setupFiles = [here('./packages/test-kit/src/tracing/setup.ts')];

export default defineConfig({
  resolve: { alias },
  test: {
    reporters: ['default'],
    passWithNoTests: false,
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          setupFiles,
          include: [
            'packages/*/test/**/*.test.ts',
            'integration/test/unit/**/*.test.ts',
            'bench/test/**/*.test.ts',
          ],
          exclude: ['**/*.int.test.ts', '**/*.fault.test.ts', '**/node_modules/**'],
          testTimeout: 20_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          setupFiles,
          include: ['packages/*/test/**/*.int.test.ts', 'integration/test/**/*.int.test.ts'],
          globalSetup: [brokerSetup],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          env: { KAFKAJS_NO_PARTITIONER_WARNING: '1' },
        },
      },
      {
        // Tests that break a broker on purpose (restart Kafka, close RabbitMQ connections, kill Redis
        // clients) run after the others and one file at a time, so they never disturb another test.
        resolve: { alias },
        test: {
          name: 'faults',
          setupFiles,
          include: ['packages/*/test/**/*.fault.test.ts', 'integration/test/**/*.fault.test.ts'],
          globalSetup: [brokerSetup],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          env: { KAFKAJS_NO_PARTITIONER_WARNING: '1' },
        },
      },
    ],
  },
});
