/**
 * Stateless depth-first exploration of a checkable scenario's interleavings, with a choice of reduction and an
 * optional preemption bound; counterexample shrinking and replay.
 *
 * Each schedule follows the prefix of choices that leads to the choice point being backtracked. It starts from the
 * deepest machine saved on that prefix — the DFS saves one (Execution.fork) at each node a schedule passes that still
 * has candidates left, and the node's last candidate takes it — or else from the machine at the start of the
 * concurrent phase (a copy of the one built first, or a fresh build: machineCopy.ts), and replays the rest.
 * At every choice point the candidates are the choosable agents (execution.ts: the enabled ones, minus spin-looping
 * pollers). `search: 'stateful'` hands the whole search to stateful.ts (each state keyed and explored once).
 *
 * Reductions (`reduction`):
 * - 'dpor' (default): source-set DPOR with sleep sets (dpor.ts). A node explores its first choice; races found in
 *   the executed schedules add backtrack points. Sound for the unbounded search: every Mazurkiewicz trace (order up
 *   to swapping adjacent independent steps) of the scenario reaches an explored equivalent, so every end state and
 *   every violation an invariant can see is found.
 * - 'sleep': every awake candidate is a backtrack point; sleep sets (Godefroid) only. After exploring agent p at a
 *   node, p sleeps for the node's other branches and stays asleep down a branch while the steps taken are
 *   independent of p's step (its effective touch set from this very node, so exact). A run in which every
 *   candidate is asleep is cut: it is equivalent to one already explored.
 * - 'none': plain enumeration of every choosable order.
 *
 * Preemption bound (CHESS): choosing an agent other than the one that just ran, while that one is still choosable,
 * costs one preemption (firing a hardware event while the running CPU could go on counts too). Choices beyond the
 * bound are not explored; the result then says "bounded", and only when the bound actually cut a choice. A bounded
 * reduced search is evidence, not a proof even for the bound: a schedule a sleep set or DPOR skipped may have had
 * its only equivalents beyond the bound (dpor.ts adds conservative backtrack points to narrow this). An exhaustive
 * pass (no bound, or the bound never cut) is complete for the scenario.
 *
 * Splitting (workers.ts): the first `splitDepth` choice points of a path that have more than one candidate
 * enumerate every awake candidate (sleep-set reduction), so DPOR
 * below never needs a backtrack point above it; a `delegate` hands each node at the split depth out as a subtree
 * task, and a `root` task explores one subtree.
 */

import { ModelError } from '../sim/errors.js';
import { AgentIndex, analyseEvent, type PathNode, preemptionCost } from './dpor.js';
import {
  type Choosable,
  type Chooser,
  completeFairly,
  defaultChoice,
  Execution,
  type ExecutionOptions,
  FAIR_RUN,
  independent,
  PrefixChooser,
  type RunResult,
  runSchedule,
  type Touch,
} from './execution.js';
import type { Violation } from './invariants.js';
import { isUncopyableGenerator, startingMachine, startsFromCopy } from './machineCopy.js';
import type { CheckableScenario } from './model.js';
import { exploreStateful } from './stateful.js';

export type Reduction = 'dpor' | 'sleep' | 'none';
export const REDUCTIONS: readonly Reduction[] = ['dpor', 'sleep', 'none'];

/** stateless: every schedule from the start (a copy or a build) and a replayed prefix; stateful: stateful.ts. */
export type Search = 'stateless' | 'stateful';
export const SEARCHES: readonly Search[] = ['stateless', 'stateful'];

/**
 * The search that finishes unbounded: stateful (each state keyed and explored once: sleep sets with state caching) when
 * the scenario's machine can be copied — the stateless DPOR does not finish on check-assign-race, the stateful search
 * does (docs/PERFORMANCE.md) — else the stateless DPOR, which needs no copy. Builds the machine (once per scenario,
 * kept for the search) to see whether it can be copied.
 */
export function unboundedSearch(scenario: CheckableScenario): Search {
  startingMachine(scenario);
  return startsFromCopy(scenario) ? 'stateful' : 'stateless';
}

/** A subtree of the search: the choices that lead to its root and the sleep set at the root. */
export interface SubtreeTask {
  readonly prefix: readonly number[];
  readonly sleep: readonly (readonly [number, Touch])[];
}

export interface ExploreOptions extends ExecutionOptions {
  /** Default 'stateless'. */
  search?: Search;
  /** Maximum preemptions per schedule (undefined: unbounded). */
  bound?: number;
  /** Default 'dpor'. */
  reduction?: Reduction;
  /** Stop after this many schedules (undefined: no limit); the result is then "cut". */
  maxSchedules?: number;
  /** Shrink the first counterexample (default true). */
  shrink?: boolean;
  /** Called every `progressEvery` schedules. */
  onProgress?: (s: ExploreStats) => void;
  progressEvery?: number;
  /** Choice points with more than one candidate, counted from the root, that enumerate every awake candidate. */
  splitDepth?: number;
  /** Hand each new choice point below the first `splitDepth` ones to this instead of exploring it. */
  delegate?: (task: SubtreeTask) => void;
  /** Explore only this subtree. */
  root?: SubtreeTask;
  /** Polled after every schedule: true stops the search (the result is then "cut"). */
  cancelled?: () => boolean;
  /**
   * Stateless: start a schedule from a copy of the machine saved at a choice point on its prefix (default true where
   * the machine can be copied) instead of replaying the prefix from the start. Same schedules, states and verdicts.
   */
  fork?: boolean;
}

export interface ExploreStats {
  /** Schedules run (stateless: each from the start; stateful: each path that ended, at a known state or an end). */
  schedules: number;
  /** Runs that reached quiescence and were judged. */
  complete: number;
  /** Runs cut because every candidate was asleep (equivalent to an explored one). */
  sleepBlocked: number;
  /** Runs cut because every awake candidate was beyond the preemption bound. */
  boundBlocked: number;
  /** Runs that exhausted the step budget. */
  budgetHit: number;
  /** Steps executed, including prefix replays (a forked schedule replays from its saved choice point). */
  steps: number;
  /** New choice points (states) visited, excluding replayed prefixes (stateful: every state entered). */
  states: number;
  /** Stateful: distinct states (keys), and states reached again (cut, or explored only for what slept before). */
  distinct: number;
  revisits: number;
  /**
   * Stateful, unbounded: states with at most one agent to take (one enabled, or the others asleep), followed without
   * a key (counted in `states`, not `distinct`).
   */
  forced: number;
  /** Choices the preemption bound cut. */
  boundCuts: number;
  /** Longest schedule. */
  maxDepth: number;
  /** DPOR: races found, and backtrack points they added. */
  races: number;
  backtracks: number;
  /** Runs stopped at the split depth and handed out as subtree tasks. */
  delegated: number;
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
  /** The reduction of a systematic search (absent for sampling). */
  readonly reduction?: Reduction;
  /** Stateless or stateful (absent for sampling). */
  readonly search?: Search;
  /** Worker threads that shared the search (1: this thread only). */
  readonly workers?: number;
  readonly stats: ExploreStats;
  readonly counterexample: Counterexample | null;
}

/** Which candidates a node explores: none (a task's fixed prefix), all awake ones, or its DPOR backtrack set. */
type Alternatives = 'none' | 'all' | 'backtrack';

interface Node extends PathNode {
  readonly alts: Alternatives;
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
    distinct: 0,
    revisits: 0,
    forced: 0,
    boundCuts: 0,
    maxDepth: 0,
    races: 0,
    backtracks: 0,
    delegated: 0,
  };
}

/** Adds `b` into `a` (maxDepth: the larger). */
export function addStats(a: ExploreStats, b: ExploreStats): void {
  for (const k of Object.keys(a) as (keyof ExploreStats)[]) {
    a[k] = k === 'maxDepth' ? Math.max(a[k], b[k]) : a[k] + b[k];
  }
}

const NO_SLEEP: ReadonlyMap<number, Touch> = new Map();

/** The exploration's chooser for one schedule: replays the stack's prefix, then extends it with new nodes. */
class DfsChooser implements Chooser {
  depth = 0;
  lastBlock: 'sleep' | 'bound' | 'delegated' | null = null;
  /** Choice points with more than one candidate on the path so far. */
  private branching = 0;
  private pendingSleep: Map<number, Touch>;
  private readonly rootLen: number;
  private readonly rootSleep: Map<number, Touch>;

  constructor(
    private readonly nodes: Node[],
    private readonly agents: AgentIndex,
    private readonly bound: number,
    private readonly stats: ExploreStats,
    private readonly o: ExploreOptions,
    /** The machine saved at each choice point of the path that a schedule may start from (null: not saved). */
    private readonly saved: Saved,
    /** The depth the execution starts at (a saved machine's; 0: the start of the concurrent phase). */
    start: number,
  ) {
    this.rootLen = o.root?.prefix.length ?? 0;
    this.rootSleep = new Map(o.root?.sleep ?? []);
    this.pendingSleep = this.rootLen === 0 ? new Map(this.rootSleep) : new Map();
    this.depth = start;
    for (let i = 0; i < start; i++) if (nodes[i]!.choosable.length > 1) this.branching++;
  }

  choose(c: Choosable): number {
    const ex = c.ex;
    const choosable = c.list;
    const i = this.depth;
    if (i < this.nodes.length) {
      const n = this.nodes[i]!;
      if (n.choosable.length > 1) this.branching++;
      // a later schedule starts here: save the machine before the step (the last one to start here takes it)
      if (this.saved.on && this.saved.at[i] == null && pending(n, this.bound, i === this.nodes.length - 1))
        this.save(ex, i);
      return n.chosen;
    }
    if (i < this.rootLen) {
      const a = this.o.root!.prefix[i]!;
      if (!choosable.includes(a))
        throw new ModelError(`subtree prefix diverged at step ${i}: agent ${a} not choosable`);
      this.nodes.push(newNode(ex, choosable, new Map(), 'none', a));
      return a;
    }
    const split = this.o.splitDepth ?? 0;
    // Under a bound, the subtree of the schedule with no preemption yet holds most of the tree: the lead follows that
    // path to its end and hands out what branches off it.
    const lead = this.o.delegate !== undefined && ex.preemptions === 0 && this.bound !== Number.POSITIVE_INFINITY;
    const here = lead ? Number.POSITIVE_INFINITY : split;
    if (this.o.delegate !== undefined && this.branching >= here && choosable.length > 1) {
      this.o.delegate({ prefix: this.nodes.map((n) => n.chosen), sleep: [...this.pendingSleep] });
      this.lastBlock = 'delegated';
      return -1;
    }
    const reduction = this.o.reduction ?? 'dpor';
    const alts: Alternatives = reduction === 'dpor' && this.branching >= here ? 'backtrack' : 'all';
    let pick = -1;
    let cut = false;
    const sleep = this.pendingSleep;
    const d = defaultChoice(c);
    for (let k = -1; k < choosable.length; k++) {
      const a = k < 0 ? d : choosable[k]!;
      if (k >= 0 && a === d) continue;
      if (sleep.has(a)) continue;
      if (ex.preemptions + (ex.preempts(a, choosable) ? 1 : 0) > this.bound) {
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
    this.nodes.push(newNode(ex, choosable, sleep, alts, pick));
    if (choosable.length > 1) this.branching++;
    this.stats.states++;
    return pick;
  }

  private save(ex: Execution, i: number): void {
    try {
      this.saved.at[i] = ex.fork();
    } catch (err) {
      // a task body that is still a generator, reached in the concurrent phase: from here on, prefixes are replayed
      if (!isUncopyableGenerator(err)) throw err;
      this.saved.on = false;
    }
  }

  replaying(): boolean {
    return this.depth < this.nodes.length - 1;
  }

  stepped(_ex: Execution, agent: number, touch: Touch): void {
    const node = this.nodes[this.depth]!;
    this.depth++;
    if (this.depth < this.nodes.length) return;
    // the node's branch was (re-)run: record the step, compute the child's sleep set and the step's races
    node.touch = touch;
    node.done.set(agent, touch);
    const reduction = this.o.reduction ?? 'dpor';
    if (reduction === 'dpor') analyseEvent(this.nodes, this.agents, this.depth - 1, this.bound, this.stats);
    if (this.depth === this.rootLen) {
      this.pendingSleep = new Map(this.rootSleep);
      return;
    }
    const next = new Map<number, Touch>();
    if (reduction !== 'none') {
      for (const [a, t] of node.sleep) if (a !== agent && independent(t, touch)) next.set(a, t);
      for (const [a, t] of node.done) if (a !== agent && independent(t, touch)) next.set(a, t);
    }
    this.pendingSleep = next;
  }
}

/** The machines saved along the current path, by depth (forking on). */
interface Saved {
  on: boolean;
  readonly at: (Execution | null)[];
}

/**
 * Whether node `n` has a candidate left to explore after the one on the current path (`fresh`: that one has not run
 * from here yet, so it is not in `done`).
 */
function pending(n: Node, bound: number, fresh: boolean): boolean {
  if (n.alts === 'none') return false;
  const cands = n.alts === 'all' ? n.choosable : n.backtrack;
  for (let k = 0; k < cands.length; k++) {
    const a = cands[k]!;
    if (n.done.has(a) || n.sleep.has(a) || (fresh && a === n.chosen)) continue;
    if (n.preemptions + preemptionCost(n, a) <= bound) return true;
  }
  return false;
}

function newNode(
  ex: Execution,
  choosable: readonly number[],
  sleep: ReadonlyMap<number, Touch>,
  alts: Alternatives,
  chosen: number,
): Node {
  return {
    choosable: [...choosable],
    last: ex.last,
    preemptions: ex.preemptions,
    sleep: sleep === NO_SLEEP ? new Map() : (sleep as Map<number, Touch>),
    done: new Map(),
    backtrack: [chosen],
    chosen,
    fixed: alts !== 'backtrack',
    alts,
    touch: null,
    vc: [],
    local: 0,
  };
}

/** Explore the scenario depth-first; stops at the first violation. */
export function explore(scenario: CheckableScenario, opts: ExploreOptions = {}): CheckResult {
  if (opts.search === 'stateful') return exploreStateful(scenario, opts);
  const bound = opts.bound ?? Number.POSITIVE_INFINITY;
  const reduction = opts.reduction ?? 'dpor';
  const stats = newStats();
  const nodes: Node[] = [];
  const agents = new AgentIndex();
  const rootLen = opts.root?.prefix.length ?? 0;
  let counterexample: Counterexample | null = null;
  let cutBy = '';
  const every = opts.progressEvery ?? 100;
  let saved: Saved = { on: false, at: [] };
  for (;;) {
    if (opts.maxSchedules !== undefined && stats.schedules >= opts.maxSchedules) {
      cutBy = `schedule limit ${opts.maxSchedules}`;
      break;
    }
    // the deepest machine saved on the path to the node being backtracked; the node's last candidate takes its own
    let start = Math.min(saved.at.length, nodes.length) - 1;
    while (start >= 0 && saved.at[start] == null) start--;
    let ex: Execution;
    if (start < 0) {
      start = 0;
      ex = new Execution(scenario, opts);
      if (stats.schedules === 0) saved = { on: opts.fork !== false && startsFromCopy(scenario), at: [] };
    } else if (start === nodes.length - 1 && !pending(nodes[start]!, bound, true)) {
      ex = saved.at[start]!;
      saved.at[start] = null;
    } else ex = saved.at[start]!.fork();
    const chooser = new DfsChooser(nodes, agents, bound, stats, opts, saved, start);
    let r = runSchedule(ex, chooser);
    stats.schedules++;
    stats.steps += r.schedule.length - start;
    if (r.schedule.length > stats.maxDepth) stats.maxDepth = r.schedule.length;
    if (r.end === 'quiescent') stats.complete++;
    else if (r.end === 'budget') {
      stats.budgetHit++;
      // no schedule of the search goes past the budget: how this one ends, continued in the fair default order, is judged
      const end = completeFairly(ex, FAIR_RUN + ex.budgetUsed);
      if (end !== null && end.end === 'violation') r = end;
    } else if (r.end === 'pruned') {
      if (chooser.lastBlock === 'bound') stats.boundBlocked++;
      else if (chooser.lastBlock === 'delegated') stats.delegated++;
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
    if (opts.cancelled?.()) {
      cutBy = 'cancelled';
      break;
    }
    if (!backtrack(nodes, Math.min(nodes.length, r.schedule.length + 1), rootLen, bound, stats)) break;
    // what was saved below the node backtracked to lies on the abandoned branch
    if (saved.at.length > nodes.length) saved.at.length = nodes.length;
  }
  if (opts.onProgress) opts.onProgress(stats);
  return resultOf(scenario, reduction, 1, bound, stats, cutBy, counterexample);
}

/** The result of a systematic search: how complete it was follows from the statistics and what stopped it. */
export function resultOf(
  scenario: CheckableScenario,
  reduction: Reduction,
  workers: number,
  bound: number,
  stats: ExploreStats,
  cutBy: string,
  counterexample: Counterexample | null,
  search: Search = 'stateless',
): CheckResult {
  const limits: string[] = [];
  if (stats.boundCuts > 0 || stats.boundBlocked > 0) limits.push(`preemption bound ${bound}`);
  if (stats.budgetHit > 0) limits.push(`step budget (${stats.budgetHit} run(s) truncated)`);
  if (cutBy !== '') limits.push(cutBy);
  return {
    scenario: scenario.name,
    variant: scenario.variant,
    // with a counterexample, how far the search went is moot; otherwise: what limited it
    completeness: cutBy !== '' || stats.budgetHit > 0 ? 'cut' : limits.length > 0 ? 'bounded' : 'exhaustive',
    limits: limits.join(', '),
    reduction,
    search,
    workers,
    stats,
    counterexample,
  };
}

/**
 * Move to the deepest node (below `from`) with an unexplored, awake candidate within the bound; false when none is
 * left. A node left behind (popped) has its candidates beyond the bound counted as cut.
 */
function backtrack(nodes: Node[], from: number, rootLen: number, bound: number, stats: ExploreStats): boolean {
  for (let i = from - 1; i >= rootLen; i--) {
    const n = nodes[i]!;
    if (n.alts === 'none') continue;
    const cands = n.alts === 'all' ? n.choosable : n.backtrack;
    let cuts = 0;
    for (let k = 0; k < cands.length; k++) {
      const a = cands[k]!;
      if (n.done.has(a) || n.sleep.has(a)) continue;
      if (n.preemptions + preemptionCost(n, a) > bound) {
        cuts++;
        continue;
      }
      nodes.length = i + 1;
      n.chosen = a;
      if (!n.backtrack.includes(a)) n.backtrack.push(a);
      return true;
    }
    stats.boundCuts += cuts;
  }
  return false;
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
    choose: (c) => {
      const explicit = ch.consumed < prefix.length;
      const a = ch.choose(c);
      if (explicit) consumedAt = c.ex.steps + 1;
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
