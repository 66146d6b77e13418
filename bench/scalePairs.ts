/**
 * The issue-16 figure made robust to a shared machine (bench/scale.ts, bench/scaleCompare.ts): the 256-device case
 * against the 1-device one measured as pairs — the two cases run back to back, each in a child process of its own,
 * the order alternating from pair to pair — and summarised by the median of the per-pair ratios with its spread.
 * A pair's two runs share the machine's state of the moment (load, which core, how busy the shared cache is), so
 * its ratio cancels most of it; the ratio of two figures taken at different moments, or of two best-ofs, does not.
 */
import type { CaseSpec, ScaleCase } from './scaleCase.js';

export interface PairStats {
  /** Per pair: CPU per IRQ of the big case / the 1-device case − 1 (each the best of its child's repetitions). */
  ratios: number[];
  median: number;
  /** Interquartile range (linear interpolation between order statistics). */
  q1: number;
  q3: number;
  min: number;
  max: number;
  /** 1-minute load average, lowest and highest seen at the start or end of a run of the pairs. */
  load: [number, number];
}

/** The two GICv3.1 cases (bench/scale.ts): 1 device × 4 IRQs on 1 VM × 1 vCPU, 256 devices × 4 IRQs on 4 VMs × 16 vCPUs, both on 8 pCPUs. */
export function v3PairSpecs(count: number, reps: number): { one: CaseSpec; big: CaseSpec } {
  const v3 = (name: string, devices: number, vcpus: number): CaseSpec => ({
    name,
    gic: 'v3',
    devices,
    vcpus,
    vcpusPerVm: 16,
    cpus: 8,
    count,
    reps,
  });
  return {
    one: v3('GICv3.1: 1 device × 4 IRQs, 1 VM × 1 vCPU', 1, 1),
    big: v3('GICv3.1: 256 devices × 4 IRQs (988 SPIs + 36 ESPIs), 4 VMs × 16 vCPUs', 256, 64),
  };
}

function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** Run `one` and `big` back to back (`big` first when asked); the runs are returned in that order of cases. */
export function runPair(
  run: (c: CaseSpec) => ScaleCase,
  one: CaseSpec,
  big: CaseSpec,
  bigFirst: boolean,
): { one: ScaleCase; big: ScaleCase } {
  if (bigFirst) {
    const b = run(big);
    return { one: run(one), big: b };
  }
  const o = run(one);
  return { one: o, big: run(big) };
}

export function pairStats(pairs: readonly { one: ScaleCase; big: ScaleCase }[]): PairStats {
  const ratios = pairs.map((p) => p.big.cpuNsPerIrqBest / p.one.cpuNsPerIrqBest - 1);
  const sorted = [...ratios].sort((a, b) => a - b);
  const loads = pairs.flatMap((p) => [...p.one.loadAverage, ...p.big.loadAverage]);
  return {
    ratios,
    median: quantile(sorted, 0.5),
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
    min: sorted[0]!,
    max: sorted.at(-1)!,
    load: [Math.min(...loads), Math.max(...loads)],
  };
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;

/** "median of N back-to-back pairs +x % (interquartile a … b, min … max; load l … h)". */
export function pairSummary(s: PairStats): string {
  return `median of ${s.ratios.length} back-to-back pairs ${pct(s.median)} (interquartile ${pct(s.q1)} … ${pct(s.q3)}, min ${pct(s.min)} … max ${pct(s.max)}; load ${s.load[0].toFixed(2)} … ${s.load[1].toFixed(2)})`;
}
