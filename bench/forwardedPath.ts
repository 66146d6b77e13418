/**
 * Forwarded-path benchmarks (issue 6 item 5): one level SPI passed through with irqfd + resamplefd and forwarded
 * (KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ) to a one-vCPU VM, X-Gene costs, guest handler 1,000 cycles, one IRQ every 10 µs,
 * built through the public machine and the VMM's ioctls (bench/fwdMachine.ts). Two guests: idle (WFI between IRQs:
 * the IRQ wakes the halted vCPU) and running (`busy`, 200-cycle compute steps: the IRQ exits a running vCPU).
 * Reports simulated forwarded IRQs per wall-second, simulated/wall time, and the heap retained per IRQ over a long
 * run (warm-up, forced GC, run, forced GC: what the run kept).
 */
import type { BenchResult } from './engine.js';
import { buildFwdMachine } from './fwdMachine.js';

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
}

export interface ForwardedPathResult extends BenchResult {
  /** Simulated seconds per wall second. */
  simPerWall: number;
  /** Heap retained after a forced GC, per IRQ (bytes); NaN without --expose-gc. */
  retainedPerIrq: number;
}

export function forwardedPathBenchmark(busy: boolean, count: number): ForwardedPathResult {
  const m = buildFwdMachine({ lines: 1, vcpus: 1, busy });
  m.run(Math.min(count, 20_000)); // warm-up on the same machine (JIT, pools, ring buffers at their steady size)
  gc();
  const before = process.memoryUsage().heapUsed;
  const sim0 = m.host.engine.now;
  const t0 = performance.now();
  m.run(count);
  const seconds = (performance.now() - t0) / 1000;
  const sim = m.host.engine.now - sim0;
  const growth = process.memoryUsage().heapUsed - before;
  gc();
  const retained = process.memoryUsage().heapUsed - before;
  const st = m.host.kvm.vms[0]!.vcpus[0]!.stat;
  if (st.maintenanceExits !== 0) throw new Error('forwarded bench took maintenance exits: not forwarded');
  return {
    name: `forwarded path (${busy ? 'running vCPU' : 'idle vCPU, WFI'}, xgene)`,
    unit: 'IRQs',
    count,
    seconds,
    perSecond: count / seconds,
    heapGrowthBytes: growth,
    bytesPerUnit: growth / count,
    simPerWall: sim / 2e9 / seconds, // createHost's default clock: 2 GHz
    retainedPerIrq: (globalThis as { gc?: unknown }).gc ? retained / count : Number.NaN,
  };
}

export function forwardedPathBenchmarks(longRun = 1_000_000): ForwardedPathResult[] {
  return [forwardedPathBenchmark(false, longRun), forwardedPathBenchmark(true, 100_000)];
}
