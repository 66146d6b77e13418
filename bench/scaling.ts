/**
 * Scaling benchmarks (issue 6 item 5): wall-clock cost per forwarded IRQ as the number of forwarded IRQs grows
 * (1 → 988 level lines, one VM with one idle vCPU; 988 is every SPI a GICv2 has, INTIDs 32..1019) and as the number
 * of vCPUs grows (1 → 64: VMs of at most 8 vCPUs — VGIC_V2_MAX_CPUS — on at most 8 pCPUs, so from 8 vCPUs on they
 * share pCPUs; 256 lines on 8 devices, dealt to the VMs by device and to the vCPUs round-robin). The raise rate is the same at every point (one IRQ per
 * 10 µs, round-robin over the lines), so a flat per-IRQ cost means nothing in the path scans the lines or the vCPUs.
 */
import { buildFwdMachine, MAX_SPIS } from './fwdMachine.js';

export interface ScalingPoint {
  axis: 'lines' | 'vcpus';
  lines: number;
  vcpus: number;
  /** Wall nanoseconds per forwarded IRQ. */
  nsPerIrq: number;
}

export interface ScalingResult {
  points: ScalingPoint[];
  /** Per axis: max / min of the per-IRQ cost minus 1 (the target is ≤ 0.2 either side of the mean). */
  spread: { lines: number; vcpus: number };
}

function point(axis: 'lines' | 'vcpus', lines: number, vcpus: number, count: number): ScalingPoint {
  const m = buildFwdMachine({ lines, vcpus });
  m.run(Math.min(count, 5_000) + lines); // warm-up: every line once at least
  const t0 = performance.now();
  m.run(count);
  const ns = ((performance.now() - t0) * 1e6) / count;
  return { axis, lines, vcpus, nsPerIrq: ns };
}

function spread(ps: ScalingPoint[]): number {
  const v = ps.map((p) => p.nsPerIrq);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.max(...v.map((x) => Math.abs(x - mean) / mean));
}

export function scalingBenchmark(count = 40_000): ScalingResult {
  const points: ScalingPoint[] = [];
  for (const n of [1, 4, 16, 64, 256, 512, MAX_SPIS]) points.push(point('lines', n, 1, count));
  for (const v of [1, 2, 4, 8, 16, 32, 64]) points.push(point('vcpus', 256, v, count));
  return {
    points,
    spread: {
      lines: spread(points.filter((p) => p.axis === 'lines')),
      vcpus: spread(points.filter((p) => p.axis === 'vcpus')),
    },
  };
}
