/**
 * How long a run will take on the wall clock, estimated before it starts from what the scenario asks for, so that a
 * scenario of hours says so instead of looking hung. Wall time goes into IRQs that reach the guest (each one a few
 * hundred model steps) and, far less, into raises that merge into one already pending.
 */
import type { Mode, Scenario, ScenarioWorkload } from '../scenario/schema.js';

/**
 * Wall milliseconds per delivered IRQ per mode, measured with `irqfwd run` on the default scenario (1000 IRQs × 2
 * modes: 0.78 s untraced, 1.41 s traced, less 0.28 s of start-up; Node 20, one core of a shared 2-core machine).
 */
export const WALL_MS_PER_IRQ = { untraced: 0.25, traced: 0.56 } as const;
/** Wall milliseconds per raise merged into a pending one (fault-irq-storm: 80,000 raises in 0.41 s). */
export const WALL_MS_PER_MERGED_RAISE = 0.005;
/**
 * No line delivers faster than one IRQ per forwarded round trip (host cycles per IRQ forwarded, X-Gene: 7,400):
 * raises beyond that merge.
 */
const MIN_CYCLES_PER_DELIVERY = 7400;

/** Events a workload raises over the run (its count, else its window over its rate). */
export function workloadRaises(w: ScenarioWorkload, duration: number, hz: number): number {
  const end = Math.min(w.until ?? duration, duration);
  const window = Math.max(0, end - w.start);
  let n: number;
  if (w.kind === 'periodic') n = w.period > 0 ? Math.floor(window / w.period) + 1 : 0;
  else if (w.kind === 'poisson') n = w.rate !== undefined ? (window / hz) * w.rate : window / (w.meanInterval ?? 1);
  else n = w.every > 0 ? (Math.floor(window / w.every) + 1) * w.size : w.size;
  return Math.min(n, w.count ?? Number.POSITIVE_INFINITY);
}

/** Estimated wall milliseconds of running `s` in `modes`. */
export function estimateWallMs(s: Scenario, modes: readonly Mode[], traced: boolean): number {
  const perIrq = traced ? WALL_MS_PER_IRQ.traced : WALL_MS_PER_IRQ.untraced;
  const maxDeliveries = s.duration / MIN_CYCLES_PER_DELIVERY;
  let ms = 0;
  for (const w of s.workloads) {
    const raises = workloadRaises(w, s.duration, s.host.hz);
    const delivered = Math.min(raises, maxDeliveries);
    ms += delivered * perIrq + (raises - delivered) * WALL_MS_PER_MERGED_RAISE;
  }
  return ms * modes.length;
}

/** Runs estimated above this get a warning on stderr before they start. */
export const LONG_RUN_MS = 10 * 60_000;

/** "about 3.2 h" / "about 25 min". */
export function formatWall(ms: number): string {
  const min = ms / 60_000;
  return min >= 90 ? `about ${(min / 60).toFixed(1)} h` : `about ${Math.round(min)} min`;
}
