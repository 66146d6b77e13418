/**
 * The checker's exploration on the canonical race (assign-race): schedules/s and states/s of the systematic search,
 * the reduction of DPOR against sleep sets alone and plain enumeration on the same scenario and bound, the protocol
 * at preemption bound 2, and the naive variant's time to the first violation. Wall-clock figures; the schedule
 * counts are deterministic.
 */
import { explore, type Reduction } from '../src/check/explore.js';
import { startsFromCopy } from '../src/check/machineCopy.js';
import { raceScenario, type Variant } from '../src/check/model.js';

export interface CheckBenchRow {
  readonly name: string;
  readonly variant: Variant;
  readonly bound: number;
  readonly reduction: Reduction;
  readonly verdict: string;
  readonly schedules: number;
  readonly complete: number;
  readonly states: number;
  readonly steps: number;
  readonly seconds: number;
  readonly schedulesPerSecond: number;
  readonly statesPerSecond: number;
  /** The shrunk counterexample's choices (violations only). */
  readonly counterexample?: number;
}

function row(variant: Variant, bound: number, reduction: Reduction, shrink = true, copyMachine = true): CheckBenchRow {
  const scenario = raceScenario({ variant });
  const t0 = performance.now();
  const r = explore(scenario, { bound, reduction, shrink, copyMachine });
  const seconds = (performance.now() - t0) / 1000;
  const s = r.stats;
  const cx = r.counterexample;
  const start = !copyMachine ? 'rebuilt' : startsFromCopy(scenario) ? 'copied' : 'rebuilt: not copyable yet';
  return {
    name: `check assign-race ${variant} bound ${bound} ${reduction} (machine ${start} per schedule)`,
    variant,
    bound,
    reduction,
    verdict: cx === null ? `pass (${r.completeness})` : `violation ${cx.violations[0]!.invariant}`,
    schedules: s.schedules,
    complete: s.complete,
    states: s.states,
    steps: s.steps,
    seconds,
    schedulesPerSecond: s.schedules / seconds,
    statesPerSecond: s.states / seconds,
    ...(cx !== null ? { counterexample: cx.schedule.length } : {}),
  };
}

export interface CheckBench {
  readonly rows: readonly CheckBenchRow[];
  /** Plain enumeration's schedules / DPOR's, at each bound measured. */
  readonly reduction: readonly { bound: number; vsNone: number; vsSleep: number }[];
}

/** `full`: also bound 2 with sleep sets and plain enumeration (about a minute). */
export function checkBenchmark(full = false): CheckBench {
  row('protocol', 0, 'dpor'); // warm-up
  const rows: CheckBenchRow[] = [];
  const bounds = full ? [1, 2] : [1];
  const reduction: { bound: number; vsNone: number; vsSleep: number }[] = [];
  for (const bound of bounds) {
    const [d, s, n] = (['dpor', 'sleep', 'none'] as const).map((red) => row('protocol', bound, red));
    rows.push(d!, s!, n!);
    reduction.push({ bound, vsNone: n!.schedules / d!.schedules, vsSleep: s!.schedules / d!.schedules });
  }
  // side by side: every schedule from a fresh build (round 1) and from a copy of the machine built once
  if (!full) rows.push(row('protocol', 2, 'dpor', true, false), row('protocol', 2, 'dpor'));
  rows.push(row('naive', 1, 'dpor', false), row('naive', 1, 'dpor'));
  return { rows, reduction };
}
