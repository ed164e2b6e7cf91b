import { describe, expect, it } from 'vitest';
import { loadSuites } from '../brokers/registry.ts';
import {
  detailTable,
  evaluateTarget,
  overheadRatio,
  type SuiteMeasurements,
  soakVerdict,
  summaryRows,
  summaryTable,
  tally,
} from '../brokers/report.ts';
import type { Measurement, Scenario } from '../brokers/types.ts';
import { VARIANTS, variantKey } from '../brokers/variants.ts';
import { replaceSection } from '../lib/readme.ts';

const scenario = (targetOn?: number): Scenario => ({
  id: 's',
  label: 'scenario',
  settings: {},
  ...(targetOn === undefined ? {} : { targetOn }),
});

/** One measurement of 1,000 messages at `micros` CPU µs per message. */
const m = (micros: number): Measurement => ({
  scenario: 's',
  n: 1000,
  elapsedMs: 100,
  cpuMicros: micros * 1000,
  peakHeap: 1,
  heapAfterGc: 1,
  spans: 0,
  exportedBytes: 0,
  carried: 1000,
});

describe('evaluateTarget', () => {
  const cpu = { raw: 10, floor: 15 };
  it('sampling off: met at the floor + 3 µs, missed above', () => {
    expect(evaluateTarget('off', scenario(), { ...cpu, hoptrace: 18, incumbent: 40 }).met).toBe(true);
    expect(evaluateTarget('off', scenario(), { ...cpu, hoptrace: 18.1, incumbent: 40 }).met).toBe(false);
  });
  it('10% sampling: hoptrace above the floor at most half the incumbent above the floor', () => {
    expect(evaluateTarget('ratio', scenario(), { ...cpu, hoptrace: 20, incumbent: 25 }).met).toBe(true);
    expect(evaluateTarget('ratio', scenario(), { ...cpu, hoptrace: 21, incumbent: 25 }).met).toBe(false);
  });
  it('10% sampling with the incumbent at the floor: met only at the floor', () => {
    expect(evaluateTarget('ratio', scenario(), { ...cpu, hoptrace: 15, incumbent: 14 }).met).toBe(true);
    expect(evaluateTarget('ratio', scenario(), { ...cpu, hoptrace: 16, incumbent: 14 }).met).toBe(false);
  });
  it("full sampling: the scenario's target on the overhead above raw, none without one", () => {
    expect(evaluateTarget('on', scenario(0.6), { ...cpu, hoptrace: 16, incumbent: 20 }).met).toBe(true);
    expect(evaluateTarget('on', scenario(0.6), { ...cpu, hoptrace: 16.1, incumbent: 20 }).met).toBe(false);
    expect(evaluateTarget('on', scenario(), { ...cpu, hoptrace: 99, incumbent: 20 })).toEqual({
      target: undefined,
      met: undefined,
    });
  });
});

describe('overheadRatio', () => {
  it('divides the overheads above the base; NaN when the incumbent is not above it', () => {
    expect(overheadRatio(15, 20, 10)).toBe(0.5);
    expect(overheadRatio(15, 10, 10)).toBeNaN();
  });
});

describe('summaryRows', () => {
  const cpuOf: Record<string, number> = {
    raw: 10,
    'raw+header': 15,
    'hoptrace/on': 25,
    'incumbent/on': 40,
    'hoptrace/ratio': 17,
    'incumbent/ratio': 25,
    'hoptrace/off': 20,
    'incumbent/off': 22,
  };
  const full: SuiteMeasurements = {
    s: Object.fromEntries(VARIANTS.map((v) => [variantKey(v), [m(cpuOf[variantKey(v)] ?? 0)]])),
  };
  const suite = { title: 'Suite', incumbent: 'inc', scenarios: [scenario(0.6)] };

  it('gives one row per sampler with the medians and the verdicts', () => {
    const rows = summaryRows(suite, full);
    expect(rows.map((r) => [r.sampler, r.hoptrace, r.incumbent, r.met])).toEqual([
      ['on', 25, 40, true], // (25 - 10) / (40 - 10) = 0.5 <= 0.6
      ['ratio', 17, 25, true], // (17 - 15) / (25 - 15) = 0.2 <= 0.5
      ['off', 20, 22, false], // 20 - 15 = 5 > 3
    ]);
    expect(tally(rows)).toEqual({ met: 2, missed: 1, none: 0 });
    const table = summaryTable(rows).join('\n');
    expect(table).toContain('| Suite: scenario | AlwaysOn | 10.0 | +5.0 | +10.0 | +25.0 | 0.50x | 0.40x |');
    expect(table).toContain('✗ missed');
  });

  it('flags a variant whose messages arrived without a traceparent in the detail table', () => {
    const lossy: SuiteMeasurements = { s: { ...full.s, 'hoptrace/off': [{ ...m(20), carried: 999 }] } };
    const lines = detailTable(suite, lossy);
    expect(lines.filter((l) => l.includes('(messages without a traceparent!)'))).toHaveLength(1);
    expect(lines.find((l) => l.includes('| hoptrace/off'))).toContain('| 99.9% |');
  });

  it('skips a scenario whose variants were not all measured (--variants=)', () => {
    const partial: SuiteMeasurements = { s: { raw: [m(10)], 'hoptrace/on': [m(20)] } };
    expect(summaryRows(suite, partial)).toEqual([]);
  });
});

describe('soakVerdict', () => {
  const samples = (bytesPerMessage: number): Array<[number, number]> =>
    Array.from({ length: 20 }, (_, i) => [(i + 1) * 50_000, 10e6 + (i + 1) * 50_000 * bytesPerMessage]);
  it('is flat for a level heap and not for one growing 2 bytes per message', () => {
    expect(soakVerdict(samples(0)).flat).toBe(true);
    const growing = soakVerdict(samples(2));
    expect(growing.slopeAll).toBeCloseTo(2000);
    expect(growing.flat).toBe(false);
  });
  it('is not flat with too few samples to tell', () => {
    expect(soakVerdict([[1, 1]]).flat).toBe(false);
  });
});

describe('replaceSection', () => {
  const text = 'a\n<!-- bench:x:start -->\nold\n<!-- bench:x:end -->\nb\n';
  it('replaces only what lies between the markers', () => {
    expect(replaceSection(text, 'x', 'new')).toBe(
      'a\n<!-- bench:x:start -->\nnew\n<!-- bench:x:end -->\nb\n',
    );
  });
  it('throws when the markers are missing', () => {
    expect(() => replaceSection(text, 'y', 'new')).toThrow(/markers/);
  });
});

describe('suites', () => {
  it('registers kafka, amqp and bullmq in order, each with its soak scenario and unique scenario ids', async () => {
    const suites = await loadSuites();
    expect(suites.slice(0, 3).map((s) => s.name)).toEqual(['kafka', 'amqp', 'bullmq']);
    for (const suite of suites) {
      const ids = suite.scenarios().map((s) => s.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toContain(suite.soakScenario);
    }
  });
  it('has the Kafka batch-mode scenario with its 0.35x target', async () => {
    const kafka = (await loadSuites()).find((s) => s.name === 'kafka');
    expect(kafka?.scenarios().find((s) => s.settings.batchSpans === 'batch')?.targetOn).toBe(0.35);
  });
  it('runs eight variants: raw, the header floor, hoptrace and the incumbent under three samplers', () => {
    expect(VARIANTS.map(variantKey)).toEqual([
      'raw',
      'raw+header',
      'hoptrace/on',
      'incumbent/on',
      'hoptrace/ratio',
      'incumbent/ratio',
      'hoptrace/off',
      'incumbent/off',
    ]);
  });
});
