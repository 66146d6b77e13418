/**
 * Old and new model at scale side by side (issue 16): `node --expose-gc --import tsx bench/scaleCompare.ts [ref]
 * [count] [rounds]`. Transpiles git `ref`'s tree (default main) and this working tree (bench/treeCompare.ts) and
 * measures the GICv3.1 cases of bench/scale.ts — 1 device × 4 IRQs (1 VM × 1 vCPU) and 256 devices × 4 IRQs
 * (4 VMs × 16 vCPUs), both on 8 pCPUs — with each tree's own model, through this tree's bench/scaleCase.ts, one child
 * process per case, `rounds` times. Each round runs, per side, the two cases back to back as a pair (bench/scalePairs.ts),
 * the sides and the order within the pairs alternating (old 1 · old 256 · new 1 · new 256, then new 256 · new 1 ·
 * old 256 · old 1, …). Prints the load average, each side's best and median CPU µs per IRQ per case with the
 * 256-device case against the 1-device one, the median of the per-pair ratios with their spread, and the heap per
 * forwarded line; fails unless both sides ended every run in the same simulated state (engine steps and cycle).
 */
import path from 'node:path';
import { type CaseSpec, runScaleCase, type ScaleCase } from './scaleCase.js';
import { pairStats, pairSummary, runPair, v3PairSpecs } from './scalePairs.js';
import { load, withTrees } from './treeCompare.js';

const ref = process.argv[2] ?? 'main';
const count = Number(process.argv[3] ?? 20_000);
const rounds = Number(process.argv[4] ?? 2);

const SPECS = v3PairSpecs(count, 3);

withTrees(ref, 'scaleCase.js', (sides, rev) => {
  console.log(`scale (GICv3.1), old = ${ref} (${rev}) vs new = this working tree; load average at start ${load()}`);
  const best: Record<string, ScaleCase> = {};
  const all: Record<string, number[]> = {};
  const pairs = { old: [] as { one: ScaleCase; big: ScaleCase }[], new: [] as { one: ScaleCase; big: ScaleCase }[] };
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const)) {
      const run = (c: CaseSpec): ScaleCase => {
        const got = runScaleCase(process.execPath, ['--expose-gc', path.join(sides[side], 'bench', 'scaleCase.js')], c);
        const key = `${side} ${c.devices}`;
        const prev = best[key];
        if (prev !== undefined && (prev.steps !== got.steps || prev.cycle !== got.cycle)) {
          throw new Error(`${key}: two runs of the same side simulated differently`);
        }
        if (prev === undefined || got.cpuNsPerIrqBest < prev.cpuNsPerIrqBest) best[key] = got;
        all[key] = [...(all[key] ?? []), got.cpuNsPerIrqBest];
        return got;
      };
      pairs[side].push(runPair(run, SPECS.one, SPECS.big, r % 2 === 1));
    }
  }
  const us = (ns: number) => (ns / 1000).toFixed(2);
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  // per child the best of its 3 runs; across the rounds the best and the median of those
  const median = (key: string) => {
    const v = [...all[key]!].sort((a, b) => a - b);
    return v.length % 2 === 1 ? v[v.length >> 1]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  for (const side of ['old', 'new'] as const) {
    const one = best[`${side} 1`]!.cpuNsPerIrqBest;
    const big = best[`${side} 256`]!.cpuNsPerIrqBest;
    const oneM = median(`${side} 1`);
    const bigM = median(`${side} 256`);
    console.log(
      `${side}: CPU µs/IRQ best ${us(one)} (1 device) / ${us(big)} (256 devices) = ${pct(big / one - 1)}, median ${us(oneM)} / ${us(bigM)} = ${pct(bigM / oneM - 1)}; heap ${(best[`${side} 256`]!.machineBytesPerIrq / 1024).toFixed(1)} KiB per forwarded line (${rounds} rounds × 3 runs of ${count} IRQs)`,
    );
  }
  for (const side of ['old', 'new'] as const) {
    console.log(`${side}: 256 vs 1 device, ${pairSummary(pairStats(pairs[side]))}`);
  }
  for (const c of [SPECS.one, SPECS.big]) {
    const o = best[`old ${c.devices}`]!;
    const n = best[`new ${c.devices}`]!;
    if (o.steps !== n.steps || o.cycle !== n.cycle) {
      throw new Error(
        `${c.name}: old and new simulated differently (steps/cycle ${o.steps}/${o.cycle} vs ${n.steps}/${n.cycle})`,
      );
    }
    console.log(
      `${c.name}: new/old CPU per IRQ ${(n.cpuNsPerIrqBest / o.cpuNsPerIrqBest).toFixed(3)} (same ${n.steps} steps)`,
    );
  }
  console.log(`load average at end ${load()}`);
});
