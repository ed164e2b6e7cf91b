import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { Session } from 'node:inspector/promises';
import { amqpPathCases } from './amqp-path.ts';
import { consumerPathCases } from './consumer-path.ts';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
);
const want = process.argv[2] ?? 'AlwaysOff';
const c = [...consumerPathCases(), ...amqpPathCases()].find((x) => x.name.includes(want))!;
console.log(c.name);
for (let i = 0; i < 20000; i++) await c.fn();
const s = new Session(); s.connect();
await s.post('HeapProfiler.startSampling', { samplingInterval: 32, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
const N = 50000;
for (let i = 0; i < N; i++) await c.fn();
const { profile } = await s.post('HeapProfiler.stopSampling');
type Node = { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] };
const self = new Map<string, number>();
const walk = (n: Node) => {
  const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*node_modules\//, '').replace(/.*\/packages\//, 'pkg/')}:${n.callFrame.lineNumber + 1}`;
  self.set(k, (self.get(k) ?? 0) + n.selfSize);
  n.children.forEach(walk);
};
walk(profile.head as Node);
const tot = [...self.values()].reduce((a, b) => a + b, 0);
console.log('total B/op', Math.round(tot / N));
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(String(Math.round(v / N)).padStart(6), k);
