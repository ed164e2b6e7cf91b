import { readFileSync } from 'node:fs';
import { useTestTracing } from '@hoptrace/test-kit';
import { describe, expect, it } from 'vitest';
import { traceFlowProducer, traceProcessor, traceQueue } from '../src/index.ts';

const tracing = useTestTracing();

/** The span names the README's "Spans" table shows (second column), e.g. `send {queue}`. */
function readmeSpanNames(): Set<string> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(
    readme.indexOf('\n## Spans'),
    readme.indexOf('\n## ', readme.indexOf('\n## Spans') + 1),
  );
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const cell = cells[2] ?? '';
    if (!cell.startsWith('`')) continue;
    for (const match of cell.matchAll(/`([^`]+)`/g)) names.add(match[1] as string);
  }
  return names;
}

describe('README', () => {
  it('shows exactly the span names the code emits', async () => {
    const queue = traceQueue({
      name: 'q',
      async add(..._args: unknown[]) {
        return { id: '1' };
      },
      async addBulk(jobs: unknown[]) {
        return jobs.map((_, i) => ({ id: String(i) }));
      },
      async upsertJobScheduler(..._args: unknown[]) {
        return {};
      },
    });
    await queue.add('a', {});
    await queue.addBulk([{ name: 'a', data: {} }]);
    await queue.upsertJobScheduler('s', { every: 1000 }, { name: 'a' });
    await traceQueue(
      { name: 'q', async add(..._args: unknown[]) {}, async addBulk(..._args: unknown[]) {} },
      { createSpans: true },
    ).addBulk([{ name: 'a', data: {} }]);
    const flow = traceFlowProducer(
      { async add(..._args: unknown[]) {}, async addBulk(..._args: unknown[]) {} },
      { createSpans: true },
    );
    await flow.add({ name: 'p', queueName: 'q', children: [{ name: 'c', queueName: 'q' }] });
    await flow.addBulk([{ name: 'p', queueName: 'q' }]);
    await traceProcessor(async (_job: unknown) => 'ok')({ id: '1', queueName: 'q', attemptsMade: 0 });
    const emitted = new Set(tracing.current.spans().map((s) => s.name.replace(/ q$/, ' {queue}')));
    const documented = readmeSpanNames();
    expect(documented.size).toBeGreaterThanOrEqual(4);
    expect([...emitted].sort()).toEqual([...documented].sort());
  });
});
