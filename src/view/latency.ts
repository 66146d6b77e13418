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

/** One pass over the chains with name ids, not strings: the page computes it at load, for every IRQ of every run. */
export function latencyOf(d: TimelineData): Latency {
  const nNames = d.names.length;
  const delivered = d.names.indexOf(DELIVERED);
  const seen = new Int32Array(nNames); // occurrences of each event name in the current chain
  const nameSeen = new Uint8Array(nNames);
  const nameOrder: number[] = [];
  const keyIndex = new Map<number, number>(); // k * nNames + name id → stage index
  const keys: { key: string; name: string }[] = [];
  const runs = d.runs.map(() => ({
    chainOfSeq: new Map<number, number>(),
    delivery: [] as number[],
    total: [] as number[],
    sums: [] as number[],
  }));
  for (let c = 0; c + 1 < d.flowFirst.length; c++) {
    const a = d.flowFirst[c]!;
    const b = d.flowFirst[c + 1]!;
    const first = d.flowItems[a]!;
    const t0 = d.itemStart[first]!;
    const run = runs[d.lanes[d.itemLane[first]!]!.run]!;
    run.chainOfSeq.set(d.itemSeq[first]!, c);
    let delivery = Number.NaN;
    let prev = t0;
    for (let j = a + 1; j < b; j++) {
      const i = d.flowItems[j]!;
      const id = d.itemName[i]!;
      const k = ++seen[id]!;
      let idx = keyIndex.get(k * nNames + id);
      if (idx === undefined) {
        idx = keys.length;
        keyIndex.set(k * nNames + id, idx);
        const name = d.names[id]!;
        keys.push({ key: k > 1 ? `${name} #${k}` : name, name });
      }
      while (run.sums.length <= idx) run.sums.push(Number.NaN);
      run.sums[idx] = (Number.isNaN(run.sums[idx]!) ? 0 : run.sums[idx]!) + d.itemStart[i]! - prev;
      prev = d.itemStart[i]!;
      if (id === delivered && Number.isNaN(delivery)) delivery = prev - t0;
      if (nameSeen[id] === 0) {
        nameSeen[id] = 1;
        nameOrder.push(id);
      }
    }
    for (let j = a + 1; j < b; j++) seen[d.itemName[d.flowItems[j]!]!] = 0;
    run.delivery.push(delivery);
    run.total.push(prev - t0);
  }
  const out: RunLatency[] = runs.map((r, run) => {
    const irqs = r.total.length;
    const mean: Stage[] = [];
    r.sums.forEach((sum, idx) => {
      if (!Number.isNaN(sum)) mean.push({ ...keys[idx]!, ns: sum / irqs });
    });
    return { run, chainOfSeq: r.chainOfSeq, irqs, delivery: r.delivery, total: r.total, mean };
  });
  return {
    runs: out,
    delivery: histogram(out.map((x) => x.delivery)),
    total: histogram(out.map((x) => x.total)),
    names: nameOrder.map((id) => d.names[id]!),
  };
}
