import { brokerEndpoint, useTestTracing } from '@hoptrace/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { traceFlowProducer, traceQueue } from '../src/index.ts';
import { BULLMQ_VERSIONS, cleanup, type QueueHandle, uniqueQueueName } from './helpers.ts';

const tracing = useTestTracing();

type Mode = 'raw' | 'traced';
type Fn = (this: unknown, ...args: unknown[]) => unknown;

describe.each(BULLMQ_VERSIONS)(
  'BullMQ %s: listeners added to a traced queue get it as `this`',
  (_label, bullmq) => {
    const { Queue, FlowProducer } = bullmq;
    const queues: QueueHandle[] = [];
    afterEach(async () => cleanup([], queues));
    const connection = () => brokerEndpoint('redis');

    it('a waiting listener: this is the queue, this.off removes it, this.add() is traced', async () => {
      const run = async (mode: Mode) => {
        const name = uniqueQueueName('thisfix');
        const raw = new Queue(name, { connection: connection() });
        queues.push(raw);
        const queue = mode === 'raw' ? raw : traceQueue(raw);
        const seen: string[] = [];
        let added: Promise<unknown> | undefined;
        const onWaiting: Fn = function (this: unknown, job: unknown) {
          const self = this as typeof queue;
          seen.push(`${(job as { name: string }).name}:${String(this === queue)}`);
          self.off('waiting', onWaiting as never);
          added = self.add('from-listener', { n: 2 });
        };
        queue.on('waiting', onWaiting as never);
        await queue.add('first', { n: 1 });
        await added;
        await queue.add('third', { n: 3 });
        return { seen, counts: await queue.getJobCounts('waiting'), left: queue.listenerCount('waiting') };
      };
      const raw = await run('raw');
      tracing.current.reset();
      expect(await run('traced')).toEqual(raw);
      // Every add of the traced run is traced, the one made on `this` included.
      expect(tracing.current.spans().filter((s) => s.name.startsWith('send '))).toHaveLength(3);
    });

    it('a flow producer error listener gets the traced flow producer as `this`', async () => {
      const run = (mode: Mode) => {
        const raw = new FlowProducer({ connection: connection() });
        const flows = mode === 'raw' ? raw : traceFlowProducer(raw);
        const seen: boolean[] = [];
        flows.on('error', function (this: unknown) {
          seen.push(this === flows);
        });
        flows.emit('error', new Error('test'));
        return raw.close().then(() => seen);
      };
      const raw = await run('raw');
      expect(await run('traced')).toEqual(raw);
    });
  },
);
