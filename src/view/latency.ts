/**
 * Per-interrupt latency from the causal chains: each chain's stages (the time from one chain event to the next,
 * named by the event that ends it), per run the mean time per IRQ in each stage, and histograms of the delivery
 * latency (assertion → the guest's IRQ entry) and of the whole chain (assertion → its last event) on bins shared
 * by the runs, so normal and forwarded compare bin for bin. Pure: bundled into the page and unit-tested in node.
 */
import type { TimelineData } from './timelineData.js';

/** The event that ends delivery: the guest's handler starts. */
export const DELIVERED = 'guest_irq_entry';
export const HIST_BINS = 24;

export interface Stage {
  /** The event that ends the stage, with ` #k` for its k-th occurrence in a chain (k > 1). */
  readonly key: string;
  /** The event name alone (colours are per name). */
  readonly name: string;
  readonly ns: number;
}

export interface Histogram {
  readonly lo: number;
  readonly width: number;
  /** Per run, HIST_BINS counts; run r's counts sum to its IRQ count. */
  readonly counts: readonly number[][];
}

export interface RunLatency {
  readonly run: number;
  /** The run's chains, by interrupt sequence number. */
  readonly chainOfSeq: ReadonlyMap<number, number>;
  readonly irqs: number;
  /** Per chain of the run (in chain order): assertion → delivery, NaN if the chain never reached the guest. */
  readonly delivery: readonly number[];
  readonly total: readonly number[];
  /** Mean ns per IRQ spent in each stage, in chain order (they add up to the mean total). */
  readonly mean: readonly Stage[];
}

export interface Latency {
  readonly runs: readonly RunLatency[];
  readonly delivery: Histogram;
  readonly total: Histogram;
  /** Every stage event name, in order of first appearance (a colour index). */
  readonly names: readonly string[];
}

/** The stages of chain c, in order. */
export function chainStages(d: TimelineData, c: number): Stage[] {
  const out: Stage[] = [];
  const seen = new Map<string, number>();
  const a = d.flowFirst[c]!;
  for (let j = a + 1; j < d.flowFirst[c + 1]!; j++) {
    const i = d.flowItems[j]!;
    const name = d.names[d.itemName[i]!]!;
    const k = (seen.get(name) ?? 0) + 1;
    seen.set(name, k);
    out.push({ key: k > 1 ? `${name} #${k}` : name, name, ns: d.itemStart[i]! - d.itemStart[d.flowItems[j - 1]!]! });
  }
  return out;
}

function deliveryOf(d: TimelineData, c: number): number {
  const a = d.flowFirst[c]!;
  for (let j = a; j < d.flowFirst[c + 1]!; j++) {
    const i = d.flowItems[j]!;
    if (d.names[d.itemName[i]!] === DELIVERED) return d.itemStart[i]! - d.itemStart[d.flowItems[a]!]!;
  }
  return Number.NaN;
}

function histogram(perRun: readonly (readonly number[])[]): Histogram {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const vs of perRun)
    for (const v of vs)
      if (!Number.isNaN(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
  if (lo > hi) {
    lo = 0;
    hi = 1;
  }
  const width = Math.max((hi - lo) / HIST_BINS, 1);
  const counts = perRun.map((vs) => {
    const bins = new Array<number>(HIST_BINS).fill(0);
    for (const v of vs) if (!Number.isNaN(v)) bins[Math.min(HIST_BINS - 1, Math.floor((v - lo) / width))]!++;
    return bins;
  });
  return { lo, width, counts };
}

export function latencyOf(d: TimelineData): Latency {
  const names: string[] = [];
  const runs: RunLatency[] = d.runs.map((_, r) => ({
    run: r,
    chainOfSeq: new Map<number, number>(),
    irqs: 0,
    delivery: [] as number[],
    total: [] as number[],
    mean: [] as Stage[],
  }));
  const sums = d.runs.map(() => new Map<string, { name: string; ns: number }>());
  for (let c = 0; c + 1 < d.flowFirst.length; c++) {
    const first = d.flowItems[d.flowFirst[c]!]!;
    const r = d.lanes[d.itemLane[first]!]!.run;
    const run = runs[r]!;
    (run.chainOfSeq as Map<number, number>).set(d.itemSeq[first]!, c);
    const stages = chainStages(d, c);
    let total = 0;
    for (const s of stages) {
      total += s.ns;
      const acc = sums[r]!.get(s.key);
      if (acc === undefined) sums[r]!.set(s.key, { name: s.name, ns: s.ns });
      else acc.ns += s.ns;
      if (!names.includes(s.name)) names.push(s.name);
    }
    (run.delivery as number[]).push(deliveryOf(d, c));
    (run.total as number[]).push(total);
  }
  const out = runs.map((run, r) => {
    const irqs = run.total.length;
    const mean = [...sums[r]!].map(([key, s]) => ({ key, name: s.name, ns: s.ns / irqs }));
    return { ...run, irqs, mean };
  });
  return {
    runs: out,
    delivery: histogram(out.map((x) => x.delivery)),
    total: histogram(out.map((x) => x.total)),
    names,
  };
}
