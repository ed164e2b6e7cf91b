// The variants every suite runs, and their keys in results (`raw`, `raw+header`, `hoptrace/on`, ...).
import type { Variant } from './types.ts';

/** Traced samplers in table order. */
export const SAMPLERS = ['on', 'ratio', 'off'] as const;

/** A traced sampler. */
export type TracedSampling = (typeof SAMPLERS)[number];

/** How the tables name a sampler. */
export const SAMPLER_LABEL: Record<TracedSampling, string> = {
  on: 'AlwaysOn',
  ratio: 'ParentBased(TraceIdRatioBased(0.1))',
  off: 'AlwaysOff',
};

/** Every variant, in the order of the first repetition (later ones rotate it). */
export const VARIANTS: readonly Variant[] = [
  { library: 'raw', sampling: 'none' },
  { library: 'raw+header', sampling: 'none' },
  ...SAMPLERS.flatMap((sampling): Variant[] => [
    { library: 'hoptrace', sampling },
    { library: 'incumbent', sampling },
  ]),
];

/** A variant's key in the results, e.g. `hoptrace/ratio`. */
export function variantKey(v: Variant): string {
  return v.sampling === 'none' ? v.library : `${v.library}/${v.sampling}`;
}
