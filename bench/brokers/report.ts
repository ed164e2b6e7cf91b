// The broker benchmark's tables, from measurements: the detail table per suite, the summary per
// scenario and sampler (hoptrace against the incumbent measured in the same run, both above the
// header floor) with issue 16's targets marked met or missed, and the soak's heap verdict. Pure
// functions, so bench/test/report.test.ts checks them on made-up figures.
import { type Stat, stat } from '../lib/measure.ts';
import { fmt } from '../lib/report.ts';
import type { Measurement, Scenario } from './types.ts';
import { SAMPLER_LABEL, SAMPLERS, type TracedSampling, VARIANTS, variantKey } from './variants.ts';

/** Sampling off: hoptrace at most this many CPU µs/msg above the header floor. */
export const OFF_MAX_ABOVE_FLOOR_MICROS = 3;
/** 10% ParentBased: hoptrace's CPU above the floor at most this multiple of the incumbent's. */
export const RATIO_MAX_VS_INCUMBENT = 0.5;
/** Soak: heap is flat when it grows less than this many bytes per 1,000 messages (1 MiB per 1M). */
export const SOAK_FLAT_BYTES_PER_1K = 1024;

/** Measurements of one suite: scenario id -> variant key -> one per repetition. */
export type SuiteMeasurements = Record<string, Record<string, Measurement[]>>;

/** What the tables need to know of a suite. */
export interface SuiteInfo {
  title: string;
  incumbent: string;
  scenarios: Scenario[];
}

/** Medians and ranges of one variant in one scenario. */
export interface Figures {
  msgPerSec: Stat;
  cpuMicrosPerMsg: Stat;
  peakHeapMb: Stat;
  heapAfterGcMb: Stat;
  spansPerMsg: Stat;
  kbExportedPerMsg: Stat;
  /** Share of messages that arrived with a traceparent, 0-1. */
  carried: Stat;
}

/** The figures of a variant's repetitions. */
export function figures(ms: Measurement[]): Figures {
  const mb = (b: number) => b / 2 ** 20;
  return {
    msgPerSec: stat(ms.map((m) => (m.n / m.elapsedMs) * 1000)),
    cpuMicrosPerMsg: stat(ms.map((m) => m.cpuMicros / m.n)),
    peakHeapMb: stat(ms.map((m) => mb(m.peakHeap))),
    heapAfterGcMb: stat(ms.map((m) => mb(m.heapAfterGc))),
    spansPerMsg: stat(ms.map((m) => m.spans / m.n)),
    kbExportedPerMsg: stat(ms.map((m) => m.exportedBytes / m.n / 1024)),
    carried: stat(ms.map((m) => (m.carried ?? 0) / m.n)),
  };
}

/** One row of the summary: one scenario under one sampler, CPU µs/msg medians. */
export interface SummaryRow {
  suite: string;
  scenario: string;
  sampler: TracedSampling;
  raw: number;
  floor: number;
  hoptrace: number;
  incumbent: number;
  /** The target's wording, or undefined when issue 16 sets none for this row. */
  target: string | undefined;
  /** Whether the target is met (undefined: no target). */
  met: boolean | undefined;
}

/** (hoptrace − base) / (incumbent − base), NaN when the incumbent is not above the base. */
export function overheadRatio(hoptrace: number, incumbent: number, base: number): number {
  const inc = incumbent - base;
  return inc > 0 ? (hoptrace - base) / inc : Number.NaN;
}

/**
 * Issue 16's target for a row: sampling off, at most the floor plus 3 µs/msg; 10% ParentBased,
 * hoptrace above the floor at most 0.5x the incumbent above the floor; full sampling, hoptrace's
 * overhead above raw at most `scenario.targetOn` times the incumbent's (where the issue sets one).
 */
export function evaluateTarget(
  sampler: TracedSampling,
  scenario: Scenario,
  cpu: { raw: number; floor: number; hoptrace: number; incumbent: number },
): { target: string | undefined; met: boolean | undefined } {
  if (sampler === 'off') {
    return {
      target: `≤ floor + ${OFF_MAX_ABOVE_FLOOR_MICROS} µs`,
      met: cpu.hoptrace - cpu.floor <= OFF_MAX_ABOVE_FLOOR_MICROS,
    };
  }
  if (sampler === 'ratio') {
    const ratio = overheadRatio(cpu.hoptrace, cpu.incumbent, cpu.floor);
    return {
      target: `≤ ${RATIO_MAX_VS_INCUMBENT}x incumbent above floor`,
      met: Number.isNaN(ratio) ? cpu.hoptrace <= cpu.floor : ratio <= RATIO_MAX_VS_INCUMBENT,
    };
  }
  if (scenario.targetOn === undefined) return { target: undefined, met: undefined };
  const ratio = overheadRatio(cpu.hoptrace, cpu.incumbent, cpu.raw);
  return {
    target: `≤ ${scenario.targetOn}x incumbent overhead`,
    met: !Number.isNaN(ratio) && ratio <= scenario.targetOn,
  };
}

/** Whether every variant of the scenario has at least one measurement (a full run, not --variants=). */
function complete(row: Record<string, Measurement[]> | undefined): row is Record<string, Measurement[]> {
  return !!row && VARIANTS.every((v) => (row[variantKey(v)]?.length ?? 0) > 0);
}

const median = (ms: Measurement[] | undefined): number =>
  stat((ms ?? []).map((m) => m.cpuMicros / m.n)).median;

/** Summary rows of one suite (scenarios with every variant measured). */
export function summaryRows(suite: SuiteInfo, measured: SuiteMeasurements): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const scenario of suite.scenarios) {
    const row = measured[scenario.id];
    if (!complete(row)) continue;
    const raw = median(row.raw);
    const floor = median(row['raw+header']);
    for (const sampler of SAMPLERS) {
      const cpu = {
        raw,
        floor,
        hoptrace: median(row[`hoptrace/${sampler}`]),
        incumbent: median(row[`incumbent/${sampler}`]),
      };
      rows.push({
        suite: suite.title,
        scenario: scenario.label,
        sampler,
        ...cpu,
        ...evaluateTarget(sampler, scenario, cpu),
      });
    }
  }
  return rows;
}

const x = (r: number) => (Number.isNaN(r) ? '–' : `${fmt(r, 2)}x`);
const signed = (n: number) => `${n >= 0 ? '+' : ''}${fmt(n, 1)}`;

/** The summary table (one line per scenario and sampler). */
export function summaryTable(rows: SummaryRow[]): string[] {
  return [
    '| scenario | sampler | raw CPU µs/msg | header floor µs/msg above raw | hoptrace µs/msg above floor | incumbent µs/msg above floor | hoptrace ÷ incumbent, overhead above raw | hoptrace ÷ incumbent, above floor | issue 16 target | met |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|:---:|',
    ...rows.map(
      (r) =>
        `| ${r.suite}: ${r.scenario} | ${SAMPLER_LABEL[r.sampler]} | ${fmt(r.raw, 1)} | ${signed(r.floor - r.raw)} | ${signed(
          r.hoptrace - r.floor,
        )} | ${signed(r.incumbent - r.floor)} | ${x(overheadRatio(r.hoptrace, r.incumbent, r.raw))} | ${x(
          overheadRatio(r.hoptrace, r.incumbent, r.floor),
        )} | ${r.target ?? '(none)'} | ${r.met === undefined ? '' : r.met ? '✓ met' : '✗ missed'} |`,
    ),
  ];
}

/** Met / missed / without target counts of the summary. */
export function tally(rows: SummaryRow[]): { met: number; missed: number; none: number } {
  return {
    met: rows.filter((r) => r.met === true).length,
    missed: rows.filter((r) => r.met === false).length,
    none: rows.filter((r) => r.met === undefined).length,
  };
}

/** A share as a percentage: `100%` and `0%` exactly, else one decimal (so 99.9% never reads 100%). */
const percentOf = (share: number) =>
  share === 1 ? '100%' : share === 0 ? '0%' : `${fmt(Math.min(share * 100, 99.9), 1)}%`;
const range = (s: Stat, d: number) => `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
const pct = (a: number, b: number) => (b > 0 ? `${fmt((a / b) * 100, 0)}%` : '–');

/** The detail table of one suite: every variant's figures per scenario (median, min–max). */
export function detailTable(suite: SuiteInfo, measured: SuiteMeasurements): string[] {
  const lines = [
    '| scenario | variant | msg/s | vs raw | CPU µs/msg | above raw | above floor | peak heap MB | heap after GC MB | spans/msg | OTLP KB/msg | with traceparent |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const scenario of suite.scenarios) {
    const row = measured[scenario.id];
    if (!row) continue;
    const raw = row.raw?.length ? figures(row.raw) : undefined;
    const floor = row['raw+header']?.length ? figures(row['raw+header']) : undefined;
    for (const v of VARIANTS) {
      const key = variantKey(v);
      const ms = row[key];
      if (!ms?.length) continue;
      const f = figures(ms);
      const cpu = f.cpuMicrosPerMsg.median;
      const name = v.library === 'incumbent' ? key.replace('incumbent', suite.incumbent) : key;
      const noSpans = v.library === 'incumbent' && v.sampling === 'on' && f.spansPerMsg.median === 0;
      // Every variant but raw must deliver a traceparent with every message.
      const lost = v.library !== 'raw' && f.carried.min < 1;
      const flags = `${noSpans ? ' **(recorded no spans!)**' : ''}${lost ? ' **(messages without a traceparent!)**' : ''}`;
      lines.push(
        `| ${scenario.label} | ${name}${flags} | ${range(f.msgPerSec, 0)} | ${
          raw && key !== 'raw' ? pct(f.msgPerSec.median, raw.msgPerSec.median) : ''
        } | ${range(f.cpuMicrosPerMsg, 1)} | ${raw && key !== 'raw' ? signed(cpu - raw.cpuMicrosPerMsg.median) : ''} | ${
          floor && v.sampling !== 'none' ? signed(cpu - floor.cpuMicrosPerMsg.median) : ''
        } | ${range(f.peakHeapMb, 1)} | ${range(f.heapAfterGcMb, 1)} | ${fmt(f.spansPerMsg.median, 2)} | ${fmt(
          f.kbExportedPerMsg.median,
          2,
        )} | ${percentOf(f.carried.min)} |`,
      );
    }
  }
  return lines;
}

/** Least-squares slope of y over x (NaN for fewer than two points). */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [px, py] of points) {
    num += (px - mx) * (py - my);
    den += (px - mx) ** 2;
  }
  return den > 0 ? num / den : Number.NaN;
}

/**
 * The soak's heap slopes in bytes per 1,000 messages, over all samples but the first (taken while
 * warming up) and over the second half, and whether the heap is flat: both below
 * {@link SOAK_FLAT_BYTES_PER_1K} (NaN, too few samples, is not flat).
 */
export function soakVerdict(samples: Array<[number, number]>): {
  slopeAll: number;
  slopeSecondHalf: number;
  flat: boolean;
} {
  const slopeAll = slope(samples.slice(1)) * 1000;
  const slopeSecondHalf = slope(samples.slice(Math.floor(samples.length / 2))) * 1000;
  return {
    slopeAll,
    slopeSecondHalf,
    flat: slopeAll < SOAK_FLAT_BYTES_PER_1K && slopeSecondHalf < SOAK_FLAT_BYTES_PER_1K,
  };
}
