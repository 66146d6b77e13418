/**
 * Source-set dynamic partial-order reduction (Abdulla, Aronis, Jonsson, Sagonas, "Optimal Dynamic Partial Order
 * Reduction", POPL 2014, Algorithm 1 "Source-DPOR"), over the path of choice points the explorer keeps.
 *
 * Events are the steps of the current schedule, one per choice point. Dependence: two steps of the same agent
 * (program order), or two steps of different agents whose effective touch sets are not independent (execution.ts:
 * a global step — a timer other than a device event, a poll, guest entry/exit — is dependent with every step). Happens-before is the
 * transitive closure, kept as one vector clock per event (indexed by a compact agent number).
 *
 * A race is a pair (e, e') of dependent steps of different agents with e →hb e' and no event in between ordered
 * after e and before e' (e is an immediate HB-predecessor of e'). Reversing it: at the node of e, the sequence
 * v = (the steps after e not ordered after it) followed by e' is a different Mazurkiewicz trace; a source set
 * needs one of v's weak initials (agents whose first step in v has no HB-predecessor in v). If none of them is
 * already explored, scheduled, or asleep at that node, one is added to its backtrack set.
 */
import { independent, type Touch } from './execution.js';

/** One choice point of the current path and the step taken from it. */
export interface PathNode {
  /** Choosable agents here (ascending). */
  readonly choosable: readonly number[];
  /** The agent that ran before this node (-1 at the root). */
  readonly last: number;
  /** Preemptions taken before this node's choice. */
  readonly preemptions: number;
  /** Asleep here: agent → its touch set when it ran from the node where it was put to sleep. */
  sleep: Map<number, Touch>;
  /** Explored from this node (or being explored): agent → the touch set of its step from here. */
  readonly done: Map<number, Touch>;
  /** DPOR backtrack set: agents still to explore from this node, plus the explored ones (insertion order). */
  readonly backtrack: number[];
  /** The agent chosen on the current path. */
  chosen: number;
  /**
   * Nodes whose alternatives someone else explores (a worker's root prefix) or that enumerate every awake agent
   * (above the split depth): a race never adds backtrack points here.
   */
  readonly fixed: boolean;
  /** The executed step on the current path: its touch set, vector clock and index among its agent's steps (1-based). */
  touch: Touch;
  vc: number[];
  local: number;
}

/** Agent id → compact index for vector clocks; agents appear in first-step order, which is deterministic. */
export class AgentIndex {
  private readonly idx: number[] = [];
  private n = 0;
  of(agent: number): number {
    let i = this.idx[agent];
    if (i === undefined) {
      i = this.n++;
      this.idx[agent] = i;
    }
    return i;
  }
}

/** Whether event `j` (at path index) happens before event `k` (j < k). */
function hb(path: readonly PathNode[], agents: AgentIndex, j: number, k: number): boolean {
  const e = path[j]!;
  return (path[k]!.vc[agents.of(e.chosen)] ?? 0) >= e.local;
}

/** The cost in preemptions of choosing `agent` at `n`. */
export function preemptionCost(n: PathNode, agent: number): number {
  return n.last >= 0 && agent !== n.last && n.choosable.includes(n.last) ? 1 : 0;
}

export interface RaceStats {
  races: number;
  backtracks: number;
}

/**
 * Compute event `i`'s vector clock (its touch set and agent are set on the node) and, for each race (j, i), add a
 * backtrack point at node j. `bound`: with a preemption bound, an initial that costs too much at j is also offered
 * at the start of the run of steps that contains j (conservative backtracking in the spirit of Coons, Musuvathi,
 * McKinley, "Bounded partial-order reduction", OOPSLA 2013); bounded DPOR stays incomplete and the verdict says so.
 */
export function analyseEvent(
  path: readonly PathNode[],
  agents: AgentIndex,
  i: number,
  bound: number,
  stats: RaceStats,
): void {
  const ev = path[i]!;
  const me = agents.of(ev.chosen);
  let acc: number[] = [];
  let local = 1;
  let sameSeen = false;
  for (let j = i - 1; j >= 0; j--) {
    const e = path[j]!;
    if (e.chosen === ev.chosen) {
      if (!sameSeen) {
        sameSeen = true;
        local = e.local + 1;
      }
      join(acc, e.vc);
      continue;
    }
    if (independent(e.touch, ev.touch)) continue;
    const ej = agents.of(e.chosen);
    if ((acc[ej] ?? 0) >= e.local) continue; // ordered through a later event: not an immediate race
    stats.races++;
    if (!e.fixed) reverse(path, agents, j, i, bound, stats);
    join(acc, e.vc);
  }
  if (acc.length <= me) acc = padTo(acc, me + 1);
  acc[me] = local;
  ev.vc = acc;
  ev.local = local;
}

function join(into: number[], from: readonly number[]): void {
  for (let k = 0; k < from.length; k++) {
    const x = from[k] ?? 0;
    if ((into[k] ?? 0) < x) into[k] = x;
  }
  for (let k = 0; k < into.length; k++) if (into[k] === undefined) into[k] = 0;
}

function padTo(a: number[], n: number): number[] {
  while (a.length < n) a.push(0);
  return a;
}

/** The race (j, i): make sure node j explores one weak initial of notdep(j).i. */
function reverse(path: readonly PathNode[], agents: AgentIndex, j: number, i: number, bound: number, s: RaceStats) {
  const n = path[j]!;
  // v: the events after j not ordered after j, then i.
  const v: number[] = [];
  for (let k = j + 1; k < i; k++) if (!hb(path, agents, j, k)) v.push(k);
  v.push(i);
  const initials: number[] = [];
  for (let x = 0; x < v.length; x++) {
    const k = v[x]!;
    const a = path[k]!.chosen;
    if (initials.includes(a)) continue;
    let first = true;
    for (let y = 0; y < x && first; y++) {
      const m = v[y]!;
      if (path[m]!.chosen === a || hb(path, agents, m, k)) first = false;
    }
    if (first) initials.push(a);
  }
  for (const a of initials) if (n.done.has(a) || n.sleep.has(a) || n.backtrack.includes(a)) return;
  let pick = -1;
  for (const a of initials) {
    if (!n.choosable.includes(a)) continue;
    if (pick < 0 || (preemptionCost(n, pick) > 0 && preemptionCost(n, a) === 0)) pick = a;
  }
  if (pick < 0) return; // no initial is enabled at j: not reversible there
  n.backtrack.push(pick);
  s.backtracks++;
  if (n.preemptions + preemptionCost(n, pick) <= bound) return;
  // Beyond the bound at j: also offer it where the current run of steps began (a context switch is free there).
  for (let k = j - 1; k >= 0; k--) {
    const m = path[k]!;
    if (m.chosen !== path[j]!.chosen) break;
    if (m.last === m.chosen) continue;
    if (m.fixed || !m.choosable.includes(pick)) break;
    if (!(m.done.has(pick) || m.sleep.has(pick) || m.backtrack.includes(pick))) {
      m.backtrack.push(pick);
      s.backtracks++;
    }
    break;
  }
}
