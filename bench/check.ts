/**
 * The checker's exploration on the canonical race (assign-race): schedules/s and states/s of the systematic search,
 * the reduction of DPOR against sleep sets alone and plain enumeration on the same scenario and bound, the protocol
 * at preemption bound 2 — stateless (each schedule from a copy of the start, its prefix replayed) and stateful (each
 * state once, forking at choice points) side by side — and the naive variant's time to the first violation.
 * Wall-clock and CPU figures with the load average at each row; the schedule and state counts are deterministic.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { explore, type Reduction, type Search } from '../src/check/explore.js';
import { startsFromCopy } from '../src/check/machineCopy.js';
import { type CheckableScenario, raceScenario, type Variant } from '../src/check/model.js';
import { scenarioFromYaml } from '../src/check/scenarioCheck.js';

export interface CheckBenchRow {
  readonly name: string;
  readonly variant: Variant;
  readonly bound: number;
  readonly reduction: Reduction;
  readonly verdict: string;
  readonly schedules: number;
  readonly complete: number;
  readonly states: number;
  /** Stateful: distinct states (0 for the stateless search). */
  readonly distinct: number;
  readonly steps: number;
  readonly seconds: number;
  /** CPU time of the search (user + system). */
  readonly cpuSeconds: number;
  /** 1-minute load average when the row ended (2 shared cores: wall figures are noisy). */
  readonly load: number;
  readonly schedulesPerSecond: number;
  readonly statesPerSecond: number;
  /** The shrunk counterexample's choices (violations only). */
  readonly counterexample?: number;
}

function row(
  variant: Variant,
  bound: number,
  reduction: Reduction,
  shrink = true,
  copyMachine = true,
  search: Search = 'stateless',
  /** A shipped scenario file instead of the built-in assign-race. */
  file?: string,
): CheckBenchRow {
  const scenario: CheckableScenario =
    file === undefined
      ? raceScenario({ variant })
      : scenarioFromYaml(readFileSync(new URL(`../scenarios/${file}.yaml`, import.meta.url), 'utf8'), file, {
          variant,
        });
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = explore(scenario, { bound, reduction, shrink, copyMachine, search });
  const c1 = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  const s = r.stats;
  const cx = r.counterexample;
  const start = !copyMachine ? 'rebuilt' : startsFromCopy(scenario) ? 'copied' : 'rebuilt: not copyable yet';
  const how = search === 'stateful' ? 'stateful, forked at choice points' : `machine ${start} per schedule`;
  return {
    name: `check ${file ?? 'assign-race'} ${variant} bound ${Number.isFinite(bound) ? bound : 'none'} ${search === 'stateful' ? 'stateful' : reduction} (${how})`,
    variant,
    bound,
    reduction,
    verdict: cx === null ? `pass (${r.completeness})` : `violation ${cx.violations[0]!.invariant}`,
    schedules: s.schedules,
    complete: s.complete,
    states: s.states,
    distinct: s.distinct,
    steps: s.steps,
    seconds,
    cpuSeconds: (c1.user + c1.system) / 1e6,
    load: os.loadavg()[0]!,
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

/** `full`: also bound 2 with sleep sets and plain enumeration, and unbounded check-deassign-unassigned (minutes). */
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
  // side by side at bound 2: every schedule from a fresh build (round 1), from a copy of the machine built once, and
  // the stateful search (plain enumeration within the bound, each state once)
  if (!full)
    rows.push(
      row('protocol', 2, 'dpor', true, false),
      row('protocol', 2, 'dpor'),
      row('protocol', 2, 'none', true, true, 'stateful'),
    );
  // unbounded, side by side, on the smallest shipped file whose unbounded search finishes either way: the stateless
  // DPOR and the stateful search (sleep sets + state caching; docs/PERFORMANCE.md)
  if (full) {
    const none = Number.POSITIVE_INFINITY;
    rows.push(
      row('protocol', none, 'dpor', true, true, 'stateless', 'check-deassign-unassigned'),
      row('protocol', none, 'sleep', true, true, 'stateful', 'check-deassign-unassigned'),
    );
  }
  rows.push(row('naive', 1, 'dpor', false), row('naive', 1, 'dpor'));
  return { rows, reduction };
}
