/**
 * The checker's exploration on the canonical race (assign-race): schedules/s and states/s of the systematic search,
 * the reduction of DPOR against sleep sets alone and plain enumeration on the same scenario and bound, the protocol
 * at preemption bound 2 — stateless (each schedule rebuilt, or from a copy of the start with its prefix replayed, or
 * forked at choice points) and stateful (each state once) side by side — and the naive variant's time to the first
 * violation. Wall-clock and CPU figures with the load average at each row; the schedule and state counts are
 * deterministic.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { explore, type Reduction, type Search } from '../src/check/explore.js';
import { startsFromCopy } from '../src/check/machineCopy.js';
import { type CheckableScenario, raceScenario, type Variant } from '../src/check/model.js';
import { scenarioFromYaml } from '../src/check/scenarioCheck.js';

/**
 * Where a stateless schedule starts: a fresh build (issue 13's baseline), a copy of the start with the prefix
 * replayed (the default before forking), or the machine saved at the deepest choice point of its prefix (default).
 */
export type Start = 'rebuilt' | 'copied' | 'forked';

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
  readonly schedulesPerCpuSecond: number;
  readonly statesPerSecond: number;
  /** The shrunk counterexample's choices (violations only). */
  readonly counterexample?: number;
}

function row(
  variant: Variant,
  bound: number,
  reduction: Reduction,
  shrink = true,
  start: Start = 'forked',
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
  const r = explore(scenario, {
    bound,
    reduction,
    shrink,
    copyMachine: start !== 'rebuilt',
    fork: start === 'forked',
    search,
  });
  const c1 = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  const s = r.stats;
  const cx = r.counterexample;
  const how =
    search === 'stateful'
      ? 'stateful, forked at choice points'
      : start !== 'rebuilt' && !startsFromCopy(scenario)
        ? 'machine rebuilt per schedule: not copyable yet'
        : start === 'rebuilt'
          ? 'machine rebuilt per schedule'
          : start === 'copied'
            ? 'machine copied per schedule, prefix replayed'
            : 'forked at choice points';
  const name = file === undefined ? 'assign-race' : `scenarios/${file}.yaml`;
  return {
    name: `check ${name} ${variant} bound ${Number.isFinite(bound) ? bound : 'none'} ${search === 'stateful' ? 'stateful' : reduction} (${how})`,
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
    schedulesPerCpuSecond: (s.schedules * 1e6) / (c1.user + c1.system),
    statesPerSecond: s.states / seconds,
    ...(cx !== null ? { counterexample: cx.schedule.length } : {}),
  };
}

/** The file's bound-2 search each way, alternated `reps` times: each way's run with the least CPU time. */
export interface SideBySide {
  readonly reps: number;
  readonly rows: readonly CheckBenchRow[];
  /** Schedules per CPU-second of the forked search / of the rebuilt one (issue 13's baseline), / of the copied one. */
  readonly vsRebuilt: number;
  readonly vsCopied: number;
}

export function sideBySide(reps = 3): SideBySide {
  const ways: Start[] = ['rebuilt', 'copied', 'forked'];
  const best = new Map<Start, CheckBenchRow>();
  for (let i = 0; i < reps; i++) {
    for (const w of i % 2 === 0 ? ways : [...ways].reverse()) {
      const r = row('protocol', 2, 'dpor', true, w, 'stateless', 'check-assign-race');
      const b = best.get(w);
      if (b === undefined || r.cpuSeconds < b.cpuSeconds) best.set(w, r);
    }
  }
  const rows = ways.map((w) => best.get(w)!);
  const rate = (w: Start) => best.get(w)!.schedulesPerCpuSecond;
  return { reps, rows, vsRebuilt: rate('forked') / rate('rebuilt'), vsCopied: rate('forked') / rate('copied') };
}

export interface CheckBench {
  readonly rows: readonly CheckBenchRow[];
  readonly sideBySide?: SideBySide;
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
  // the stateful search at bound 2 (plain enumeration within the bound, each state once); the stateless ways side by
  // side follow (sideBySide)
  if (!full) rows.push(row('protocol', 2, 'none', true, 'forked', 'stateful'));
  // unbounded, side by side, on the smallest shipped file whose unbounded search finishes either way: the stateless
  // DPOR and the stateful search (sleep sets + state caching; docs/PERFORMANCE.md)
  if (full) {
    const none = Number.POSITIVE_INFINITY;
    rows.push(
      row('protocol', none, 'dpor', true, 'forked', 'stateless', 'check-deassign-unassigned'),
      row('protocol', none, 'sleep', true, 'forked', 'stateful', 'check-deassign-unassigned'),
    );
  }
  rows.push(row('naive', 1, 'dpor', false), row('naive', 1, 'dpor'));
  return { rows, reduction, ...(full ? {} : { sideBySide: sideBySide() }) };
}
