/**
 * One case of the scale benchmark (bench/scale.ts, bench/scaleCompare.ts), measured in a process of its own: the
 * forwarded-IRQ machine of bench/fwdMachine.ts built, warmed up (every line at least once), then `reps` runs of
 * `count` IRQs timed in CPU and wall time, with the heap the machine retains (forced GC before and after building
 * it; needs --expose-gc) and what the runs retain. Only imports ./fwdMachine.js, so bench/scaleCompare.ts can run it
 * against an older tree's model.
 *
 * As a child: `node --expose-gc [--import tsx] scaleCase.(ts|js) --scale-case '<CaseSpec JSON>'` prints the ScaleCase.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildFwdMachine, type FwdSetupTimes } from './fwdMachine.js';

export const LINES_PER_DEVICE = 4;

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
}

const hasGc = (): boolean => (globalThis as { gc?: unknown }).gc !== undefined;

/** One case's machine: devices × 4 lines, `vcpus` in VMs of `vcpusPerVm`, on `cpus` pCPUs (default min(8, vcpus + 1)). */
export interface CaseSpec {
  name: string;
  gic: 'v2' | 'v3';
  devices: number;
  vcpus: number;
  vcpusPerVm: number;
  cpus?: number;
  count: number;
  reps: number;
}

export interface ScaleCase {
  name: string;
  gic: 'v2' | 'v3';
  devices: number;
  forwarded: number;
  vms: number;
  vcpus: number;
  cpus: number;
  /** Wall nanoseconds per forwarded IRQ: best and median of the repetitions. */
  nsPerIrqBest: number;
  nsPerIrqMedian: number;
  /** CPU (user + system) nanoseconds per forwarded IRQ, best of the repetitions: less sensitive to a loaded host. */
  cpuNsPerIrqBest: number;
  /** Heap the built, booted machine retains per forwarded IRQ (bytes; NaN without --expose-gc). */
  machineBytesPerIrq: number;
  /** Heap retained by the measured IRQ runs per IRQ (bytes; NaN without --expose-gc). */
  runBytesPerIrq: number;
  /** IRQs raised in the measured runs (all handled: the run throws otherwise). */
  irqs: number;
  setup: FwdSetupTimes;
  /** 1-minute load average when the case started and when it ended. */
  loadAverage: [number, number];
  /** The simulated state the runs ended in (engine steps and cycle): the same for old and new code (scaleCompare). */
  steps: number;
  cycle: number;
}

export function measureCase(c: CaseSpec): ScaleCase {
  const load0 = os.loadavg()[0]!;
  const { count, reps } = c;
  const forwarded = c.devices * LINES_PER_DEVICE;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const m = buildFwdMachine({
    lines: forwarded,
    vcpus: c.vcpus,
    gic: c.gic,
    vcpusPerVm: c.vcpusPerVm,
    cpus: c.cpus,
    linesPerDevice: LINES_PER_DEVICE,
  });
  gc();
  const machineBytes = process.memoryUsage().heapUsed - heap0;
  m.run(Math.min(count, 5_000) + forwarded); // warm-up: every line at least once
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  const ns: number[] = [];
  const cpuNs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    m.run(count); // throws unless all `count` IRQs were handled by the guests' drivers
    ns.push(((performance.now() - t0) * 1e6) / count);
    const u = process.cpuUsage(c0);
    cpuNs.push(((u.user + u.system) * 1e3) / count);
  }
  cpuNs.sort((a, b) => a - b);
  gc();
  const runBytes = process.memoryUsage().heapUsed - heap1;
  ns.sort((a, b) => a - b);
  for (const vm of m.host.kvm.vms) {
    for (const v of vm.vcpus) {
      if (v.stat.maintenanceExits !== 0) throw new Error(`${c.name}: maintenance exits — an IRQ was not forwarded`);
    }
  }
  return {
    name: c.name,
    gic: c.gic,
    devices: c.devices,
    forwarded,
    vms: m.host.kvm.vms.length,
    vcpus: c.vcpus,
    cpus: m.host.engine.cpus.length,
    nsPerIrqBest: ns[0]!,
    nsPerIrqMedian: ns[ns.length >> 1]!,
    cpuNsPerIrqBest: cpuNs[0]!,
    machineBytesPerIrq: hasGc() ? machineBytes / forwarded : Number.NaN,
    runBytesPerIrq: hasGc() ? runBytes / (count * reps) : Number.NaN,
    irqs: count * reps,
    setup: m.setup,
    loadAverage: [load0, os.loadavg()[0]!],
    steps: m.host.engine.steps,
    cycle: m.host.engine.now,
  };
}

/** Run one case in a child `node args… --scale-case <spec>` (a fresh heap and JIT state) and parse its result. */
export function runScaleCase(node: string, args: string[], c: CaseSpec): ScaleCase {
  const out = execFileSync(node, [...args, '--scale-case', JSON.stringify(c)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out) as ScaleCase;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--scale-case');
  process.stdout.write(JSON.stringify(measureCase(JSON.parse(process.argv[i + 1]!) as CaseSpec)));
}
