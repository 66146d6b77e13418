/**
 * Normal-path benchmark (issue 4): the default scenario's machine — a level SPI passed through with irqfd +
 * resamplefd to a one-vCPU VM whose guest computes — driven by the scenario runner with a periodic workload. Reports
 * simulated IRQs per wall-second and the ratio of simulated to wall time (how much faster than real time the model
 * runs; < 1 means slower than the silicon).
 */
import { loadScenario } from '../src/scenario/loader.js';
import { runScenario } from '../src/scenario/runner.js';
import type { BenchResult } from './engine.js';

function scenario(count: number): string {
  return `
name: bench-normal
duration: ${Math.ceil(count * 10 + 20)}us
mode: normal
host: { cpus: 2, costProfile: xgene }
devices:
  - { name: fff51000.ethernet, iommuGroup: 7, irqs: [{ intid: 80 }] }
vms:
  - { vcpus: 1, pinning: [1], guest: { workload: busy, handlerCycles: 1000 } }
workloads:
  - { device: fff51000.ethernet, kind: periodic, period: 10us, start: 5us, count: ${count} }
`;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
}

export interface NormalPathResult extends BenchResult {
  /** Simulated seconds per wall second. */
  simPerWall: number;
}

export function normalPathBenchmark(count = 20_000): NormalPathResult {
  runScenario(loadScenario(scenario(2000), 'bench'), { modes: ['normal'] }); // warm-up
  const s = loadScenario(scenario(count), 'bench');
  gc();
  const before = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const r = runScenario(s, { modes: ['normal'] });
  const seconds = (performance.now() - t0) / 1000;
  const growth = process.memoryUsage().heapUsed - before;
  const m = r.runs[0]!.metrics;
  if (m.irqs.delivered !== count || m.irqs.lost !== 0)
    throw new Error(`bench run delivered ${m.irqs.delivered}/${count}`);
  return {
    name: 'normal path (runner, busy vCPU, xgene)',
    unit: 'IRQs',
    count,
    seconds,
    perSecond: count / seconds,
    heapGrowthBytes: growth,
    bytesPerUnit: growth / count,
    simPerWall: m.simulated.ns / 1e9 / seconds,
  };
}
