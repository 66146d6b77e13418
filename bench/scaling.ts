/**
 * Scaling benchmarks (issue 6 item 5): wall-clock cost per forwarded IRQ as the number of forwarded IRQs grows
 * (1 → 960 level lines, one VM with one idle vCPU; 960 SPIs are the most a vGIC-v2 VM has: NR_IRQS ≤ 992) and as the number
 * of vCPUs grows (1 → 64: VMs of at most 8 vCPUs — VGIC_V2_MAX_CPUS — on at most 8 pCPUs, so from 8 vCPUs on they
 * share pCPUs; 256 lines on 8 devices, dealt to the VMs by device and to the vCPUs round-robin). The raise rate is the same at every point (one IRQ per
 * 10 µs, round-robin over the lines), so a flat per-IRQ cost means nothing in the path scans the lines or the vCPUs.
 * Each point is the best of 3 runs, in wall and in CPU time (the CPU figure is the one the spread is judged on: a
 * shared machine's load inflates wall time unevenly across points).
 */
import { buildFwdMachine, MAX_VM_SPIS } from './fwdMachine.js';

export interface ScalingPoint {
  axis: 'lines' | 'vcpus';
  lines: number;
  vcpus: number;
  /** Wall nanoseconds per forwarded IRQ (best of the repetitions). */
  nsPerIrq: number;
  /** CPU (user + system) nanoseconds per forwarded IRQ (best of the repetitions): steadier on a loaded machine. */
  cpuNsPerIrq: number;
}

export interface ScalingResult {
  points: ScalingPoint[];
  /** Per axis: largest deviation of a point's per-IRQ CPU time from the axis mean (the target is ≤ 0.2). */
  spread: { lines: number; vcpus: number };
  /** The same for wall time. */
  wallSpread: { lines: number; vcpus: number };
}

function point(axis: 'lines' | 'vcpus', lines: number, vcpus: number, count: number, reps: number): ScalingPoint {
  const m = buildFwdMachine({ lines, vcpus });
  m.run(Math.min(count, 5_000) + lines); // warm-up: every line once at least
  let ns = Number.POSITIVE_INFINITY;
  let cpuNs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    m.run(count);
    ns = Math.min(ns, ((performance.now() - t0) * 1e6) / count);
    const c = process.cpuUsage(c0);
    cpuNs = Math.min(cpuNs, ((c.user + c.system) * 1e3) / count);
  }
  return { axis, lines, vcpus, nsPerIrq: ns, cpuNsPerIrq: cpuNs };
}

function spread(ps: ScalingPoint[], key: 'nsPerIrq' | 'cpuNsPerIrq'): number {
  const v = ps.map((p) => p[key]);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.max(...v.map((x) => Math.abs(x - mean) / mean));
}

export function scalingBenchmark(count = 20_000, reps = 3): ScalingResult {
  const points: ScalingPoint[] = [];
  for (const n of [1, 4, 16, 64, 256, 512, MAX_VM_SPIS]) points.push(point('lines', n, 1, count, reps));
  for (const v of [1, 2, 4, 8, 16, 32, 64]) points.push(point('vcpus', 256, v, count, reps));
  const lines = points.filter((p) => p.axis === 'lines');
  const vcpus = points.filter((p) => p.axis === 'vcpus');
  return {
    points,
    spread: { lines: spread(lines, 'cpuNsPerIrq'), vcpus: spread(vcpus, 'cpuNsPerIrq') },
    wallSpread: { lines: spread(lines, 'nsPerIrq'), vcpus: spread(vcpus, 'nsPerIrq') },
  };
}
