/**
 * Stateless depth-first exploration of a checkable scenario's interleavings, with sleep sets and an optional
 * preemption bound; counterexample shrinking and replay.
 *
 * Each schedule re-runs the scenario's builder and replays the prefix of choices that leads to the choice point
 * being backtracked (the model is not clonable). At every choice point the candidates are the choosable agents
 * (execution.ts: the enabled ones, minus spin-looping pollers).
 *
 * Reduction: sleep sets (Godefroid). After exploring agent p at a node, p is put to sleep for the node's other
 * branches, and stays asleep down a branch as long as the steps taken are independent of p's step (its effective
 * touch set, recorded when p's branch ran from this very node, so it is exact). A run in which every candidate is
 * asleep is cut: it is equivalent to one already explored. Not done yet: DPOR backtrack (source) sets — every
 * awake candidate is a backtrack point, so the reduction comes from sleep sets alone.
 *
 * Preemption bound (CHESS): choosing an agent other than the one that just ran, while that one is still choosable,
 * costs one preemption (firing a hardware event while the running CPU could go on counts too). Choices beyond the
 * bound are not explored; the result then says "bounded", and only when the bound actually cut a choice. As with
 * any bounded POR, a schedule a sleep set skipped may have had only equivalents beyond the bound: a bounded pass is
 * evidence, not a proof; an exhaustive pass (no bound, or the bound never cut) is complete for the scenario.
 */

import {
  type Chooser,
  defaultChoice,
  Execution,
  type ExecutionOptions,
  independent,
  PrefixChooser,
  type RunResult,
  runSchedule,
  type Touch,
} from './execution.js';
import type { Violation } from './invariants.js';
import type { CheckableScenario } from './model.js';

export interface ExploreOptions extends ExecutionOptions {
  /** Maximum preemptions per schedule (undefined: unbounded). */
  bound?: number;
  /** Stop after this many schedules (undefined: no limit); the result is then "cut". */
  maxSchedules?: number;
  /** Shrink the first counterexample (default true). */
  shrink?: boolean;
  /** Called every `progressEvery` schedules. */
  onProgress?: (s: ExploreStats) => void;
  progressEvery?: number;
}

export interface ExploreStats {
  /** Schedules run (each a fresh build + replay). */
  schedules: number;
  /** Runs that reached quiescence and were judged. */
  complete: number;
  /** Runs cut because every candidate was asleep (equivalent to an explored one). */
  sleepBlocked: number;
  /** Runs cut because every awake candidate was beyond the preemption bound. */
  boundBlocked: number;
  /** Runs that exhausted the step budget. */
  budgetHit: number;
  /** Steps executed, including prefix replays. */
  steps: number;
  /** New choice points (states) visited, excluding replayed prefixes. */
  states: number;
  /** Choices the preemption bound cut. */
  boundCuts: number;
  /** Longest schedule. */
  maxDepth: number;
}

export interface Counterexample {
  readonly violations: readonly Violation[];
  /** The schedule as found (every step). */
  readonly found: readonly number[];
  /** The shrunk choice prefix: replaying it, then the default order, reproduces the first violation. */
  readonly schedule: readonly number[];
}

export type Completeness = 'exhaustive' | 'bounded' | 'cut' | 'sampled';

export interface CheckResult {
  readonly scenario: string;
  readonly variant: string;
  readonly completeness: Completeness;
  /** What bounded or cut the search, in words (empty when exhaustive). */
  readonly limits: string;
  readonly stats: ExploreStats;
  readonly counterexample: Counterexample | null;
}

interface Node {
  choosable: number[];
  last: number;
  /** Preemptions taken before this node's choice. */
  preemptions: number;
  sleep: Map<number, Touch>;
  done: Map<number, Touch>;
  chosen: number;
}

/** Zeroed statistics (shared by the DFS and PCT). */
export function newStats(): ExploreStats {
  return {
    schedules: 0,
    complete: 0,
    sleepBlocked: 0,
    boundBlocked: 0,
    budgetHit: 0,
    steps: 0,
    states: 0,
    boundCuts: 0,
    maxDepth: 0,
  };
}

/** The exploration's chooser for one schedule: replays the stack's prefix, then extends it with new nodes. */
class DfsChooser implements Chooser {
  depth = 0;
  lastBlock: 'sleep' | 'bound' | null = null;
  constructor(
    private readonly nodes: Node[],
    private readonly bound: number,
    private readonly stats: ExploreStats,
  ) {}

  choose(ex: Execution, choosable: readonly number[]): number {
    const i = this.depth;
    if (i < this.nodes.length) return this.nodes[i]!.chosen;
    // A new node: its sleep set was left by the parent's stepped().
    const node: Node = {
      choosable: [...choosable],
      last: ex.last,
      preemptions: ex.preemptions,
      sleep: this.pendingSleep,
      done: new Map(),
      chosen: -1,
    };
    let pick = -1;
    const d = defaultChoice(ex, choosable);
    const candidates = [d, ...choosable.filter((a) => a !== d)];
    let cut = false;
    for (const a of candidates) {
      if (node.sleep.has(a)) continue;
      if (node.preemptions + (ex.preempts(a, choosable) ? 1 : 0) > this.bound) {
        cut = true;
        continue;
      }
      pick = a;
      break;
    }
    if (pick < 0) {
      this.lastBlock = cut ? 'bound' : 'sleep';
      return -1;
    }
    node.chosen = pick;
    this.nodes.push(node);
    this.stats.states++;
    return pick;
  }

  private pendingSleep = new Map<number, Touch>();

  stepped(_ex: Execution, agent: number, touch: Touch): void {
    const node = this.nodes[this.depth]!;
    this.depth++;
    if (this.depth >= this.nodes.length) {
      // the node's branch was (re-)run: record the step, compute the child's sleep set
      node.done.set(agent, touch);
      const next = new Map<number, Touch>();
      for (const [a, t] of node.sleep) if (a !== agent && independent(t, touch)) next.set(a, t);
      for (const [a, t] of node.done) if (a !== agent && independent(t, touch)) next.set(a, t);
      this.pendingSleep = next;
    }
  }
}

/** Explore the scenario depth-first; stops at the first violation. */
export function explore(scenario: CheckableScenario, opts: ExploreOptions = {}): CheckResult {
  const bound = opts.bound ?? Number.POSITIVE_INFINITY;
  const stats = newStats();
  const nodes: Node[] = [];
  let counterexample: Counterexample | null = null;
  let cutByMax = false;
  const every = opts.progressEvery ?? 100;
  for (;;) {
    if (opts.maxSchedules !== undefined && stats.schedules >= opts.maxSchedules) {
      cutByMax = true;
      break;
    }
    const ex = new Execution(scenario, opts);
    const chooser = new DfsChooser(nodes, bound, stats);
    const r = runSchedule(ex, chooser);
    stats.schedules++;
    stats.steps += r.schedule.length;
    if (r.schedule.length > stats.maxDepth) stats.maxDepth = r.schedule.length;
    if (r.end === 'quiescent') stats.complete++;
    else if (r.end === 'budget') stats.budgetHit++;
    else if (r.end === 'pruned') {
      if (chooser.lastBlock === 'bound') stats.boundBlocked++;
      else stats.sleepBlocked++;
    }
    if (opts.onProgress && stats.schedules % every === 0) opts.onProgress(stats);
    if (r.end === 'violation') {
      counterexample = {
        violations: r.violations,
        found: [...r.schedule],
        schedule: opts.shrink === false ? [...r.schedule] : shrink(scenario, r, opts),
      };
      break;
    }
    // Backtrack: the deepest node with an awake, unexplored candidate within the bound. A node left behind
    // (popped) has its candidates beyond the bound counted as cut.
    let next = -1;
    for (let i = Math.min(nodes.length, r.schedule.length + 1) - 1; i >= 0 && next < 0; i--) {
      const n = nodes[i]!;
      let cuts = 0;
      for (const a of n.choosable) {
        if (n.done.has(a) || n.sleep.has(a)) continue;
        const cost = n.last >= 0 && a !== n.last && n.choosable.includes(n.last) ? 1 : 0;
        if (n.preemptions + cost > bound) {
          cuts++;
          continue;
        }
        nodes.length = i + 1;
        n.chosen = a;
        next = i;
        break;
      }
      if (next < 0) stats.boundCuts += cuts;
    }
    if (next < 0) break;
  }
  if (opts.onProgress) opts.onProgress(stats);
  const limits: string[] = [];
  if (stats.boundCuts > 0 || stats.boundBlocked > 0) limits.push(`preemption bound ${bound}`);
  if (stats.budgetHit > 0) limits.push(`step budget (${stats.budgetHit} run(s) truncated)`);
  if (cutByMax) limits.push(`schedule limit ${opts.maxSchedules}`);
  return {
    scenario: scenario.name,
    variant: scenario.variant,
    // with a counterexample, how far the search went is moot; otherwise: what limited it
    completeness: cutByMax || stats.budgetHit > 0 ? 'cut' : limits.length > 0 ? 'bounded' : 'exhaustive',
    limits: limits.join(', '),
    stats,
    counterexample,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Replay and shrinking

/** Replay a choice prefix (strictly), then the default order; the run's result. */
export function replay(
  scenario: CheckableScenario,
  schedule: readonly number[],
  opts: ExecutionOptions = {},
): RunResult {
  return runSchedule(new Execution(scenario, opts), new PrefixChooser(schedule));
}

function violates(
  scenario: CheckableScenario,
  prefix: readonly number[],
  invariant: string,
  opts: ExecutionOptions,
): { ok: boolean; schedule: readonly number[] } {
  const r = runSchedule(new Execution(scenario, opts), new PrefixChooser(prefix, true));
  return { ok: r.violations.some((v) => v.invariant === invariant), schedule: r.schedule };
}

/**
 * Shrink a violating schedule to a short choice prefix that still violates the same (first) invariant: the
 * shortest violating prefix (the default order continues it), then delta debugging (ddmin) over its choices, a
 * lenient replay skipping choices that are no longer choosable; then the result is normalised to the choices the
 * lenient replay actually took, so that a strict replay reproduces it.
 */
export function shrink(scenario: CheckableScenario, found: RunResult, opts: ExecutionOptions = {}): number[] {
  const inv = found.violations[0]!.invariant;
  const o: ExecutionOptions = { ...opts };
  let cur = [...found.schedule];
  // 1. shortest prefix (binary search; violation is not monotone in the prefix length, so verify the result)
  let lo = 0;
  let hi = cur.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (violates(scenario, cur.slice(0, mid), inv, o).ok) hi = mid;
    else lo = mid + 1;
  }
  if (violates(scenario, cur.slice(0, lo), inv, o).ok) cur = cur.slice(0, lo);
  // 2. ddmin: remove chunks
  let n = 2;
  while (cur.length >= 2) {
    const size = Math.ceil(cur.length / n);
    let reduced = false;
    for (let start = 0; start < cur.length; start += size) {
      const cand = [...cur.slice(0, start), ...cur.slice(start + size)];
      if (violates(scenario, cand, inv, o).ok) {
        cur = cand;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  // 3. normalise: the choices actually taken up to the last explicit one, then drop a default-order tail
  return normalise(scenario, cur, inv, o);
}

function normalise(scenario: CheckableScenario, prefix: readonly number[], inv: string, o: ExecutionOptions): number[] {
  const ex = new Execution(scenario, o);
  const ch = new PrefixChooser(prefix, true);
  // the steps taken while the prefix still had explicit choices left
  let consumedAt = 0;
  const counting: Chooser = {
    choose: (e, c) => {
      const explicit = ch.consumed < prefix.length;
      const a = ch.choose(e, c);
      if (explicit) consumedAt = e.steps + 1;
      return a;
    },
  };
  const r = runSchedule(ex, counting);
  let taken = r.schedule.slice(0, consumedAt);
  // drop trailing choices the default order would make anyway
  while (taken.length > 0) {
    const shorter = taken.slice(0, -1);
    const rr = replay(scenario, shorter, o);
    if (!rr.violations.some((v) => v.invariant === inv)) break;
    taken = shorter;
  }
  return taken;
}
