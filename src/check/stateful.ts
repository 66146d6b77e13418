/**
 * Stateful depth-first search (`search: 'stateful'`): every state reached is recognised by its key (stateKey.ts) and
 * explored once; a schedule costs only its new suffix, because the search forks the machine at each choice point
 * (Execution.fork: a copy) instead of rebuilding it and replaying the prefix.
 *
 * Reduction: sleep sets with state caching, the combination Godefroid, Holzmann and Pirottin prove sound ("State-space
 * caching revisited", CAV 1992; Formal Methods in System Design 7(3), 1995): a visited state stores the sleep set it
 * was explored with; reached again with a sleep set Z, the search explores only the agents that were asleep then and
 * are awake now, and stores the intersection — it cuts only when the stored set is a subset of Z. Every reachable
 * state is then visited and every transition out of it is either taken or equivalent to one taken, so every
 * quiescent end state, every step that throws and every livelock state is seen: end-of-run and teardown checks run
 * once per distinct end state. DPOR is not combined with the cache: cutting a subtree at a visited state hides the
 * races its steps would have with the current path, so a stateless DPOR backtrack set would be incomplete there
 * (stateful DPOR needs a summary of the subtree's steps: Yang, Chen, Gopalakrishnan, Kirby, "Efficient stateful
 * dynamic partial order reduction", SPIN 2008, and its cycle fix by Trimananda, Luo, Demsky, Xu, VMCAI 2022) —
 * `reduction: 'none'` turns the sleep sets off too.
 *
 * Under a preemption bound the key holds the last agent, and each key keeps the fewest preemptions it was explored
 * with: reached again with no fewer, it is cut (every continuation the bound leaves now, it left then); with fewer,
 * it is explored again. Sleep sets are off there: a schedule a sleep set skips may have had its only
 * equivalents beyond the bound (at assign-race bound 1 they lost 7 of 29 end states). The bounded stateful search
 * therefore reaches exactly the end states of plain enumeration within the bound.
 */
import { ModelError } from '../sim/errors.js';
import {
  completeFairly,
  Execution,
  FAIR_RUN,
  independent,
  modelErrorViolation,
  type RunResult,
  type Touch,
} from './execution.js';
import { type CheckResult, type ExploreOptions, newStats, resultOf, shrink } from './explore.js';
import { startsFromCopy } from './machineCopy.js';
import type { CheckableScenario } from './model.js';
import { stateKey } from './stateKey.js';

/** The stateful search was asked to explore a machine it cannot copy or key. */
export class UncopyableMachineError extends Error {}

/** One state on the search path and what is left to explore from it. */
interface Visit {
  /** The state (handed to the last candidate's branch, which needs no copy). */
  ex: Execution;
  readonly choosable: readonly number[];
  /** Agents to take from here, in order. */
  readonly cands: readonly number[];
  next: number;
  /** Asleep here: the sleep set it was reached with, plus the candidates explored so far, with their touch sets. */
  readonly sleep: Map<number, Touch>;
  /** Unkeyed states in a row up to this one (0: this one is keyed). */
  readonly forced: number;
}

/**
 * Forced states followed in a row before one is keyed anyway: a cycle of states that each leave one agent to take (a
 * task spinning alone) is recognised within this many steps, instead of running to the step budget.
 */
const MAX_FORCED = 8;

/** Explore every state of the scenario once (stops at the first violation). */
export function exploreStateful(scenario: CheckableScenario, opts: ExploreOptions = {}): CheckResult {
  const bound = opts.bound ?? Number.POSITIVE_INFINITY;
  const bounded = bound !== Number.POSITIVE_INFINITY;
  // under a bound a sleeping agent's only equivalent may lie beyond it (assign-race bound 1: 22 of 29 end states)
  const sleepSets = opts.reduction !== 'none' && !bounded;
  const stats = newStats();
  const every = opts.progressEvery ?? 100;
  /** Unbounded: state key → the agents asleep when it was (last) explored. */
  const visited = new Map<string, number[]>();
  /** Under a bound: state key (with the last agent) → the fewest preemptions it was explored with. */
  const cheapest = new Map<string, number>();
  const stack: Visit[] = [];
  let found: RunResult | null = null;
  let cutBy = '';

  const leaf = (): void => {
    stats.schedules++;
    if (opts.onProgress && stats.schedules % every === 0) opts.onProgress(stats);
  };

  /** An end state reached for the first time: the end-of-run and teardown checks. */
  const judge = (ex: Execution): void => {
    const r = ex.finish();
    if (r.end === 'violation') found = r;
    else stats.complete++;
  };

  /**
   * Enter the state `ex` is in, reached with sleep set `sleep` after `forced` unkeyed states in a row: judge it, or push
   * it to explore its candidates.
   */
  const enter = (ex: Execution, sleep: Map<number, Touch>, forced: number): void => {
    stats.states++;
    if (ex.steps > stats.maxDepth) stats.maxDepth = ex.steps;
    const choosable = ex.choosable();
    if (choosable.length > 0 && ex.budgetLeft <= 0) {
      // a run the budget cut: its states are all new (else it would have met a known one), so no other path says how
      // it ends — continued in the default order, which is fair, its end is judged; the search stays incomplete
      const end = completeFairly(ex, FAIR_RUN + ex.budgetUsed);
      if (end !== null && end.end === 'violation') found = end;
      stats.budgetHit++;
      leaf();
      return;
    }
    const awake = bounded ? choosable : choosable.filter((a) => !sleep.has(a));
    if (!bounded && choosable.length > 0 && awake.length <= 1 && forced < MAX_FORCED) {
      // At most one agent to take (the others asleep): the state decides nothing, its successor is keyed instead (a
      // chain of forced steps is keyed at its end, as SPIN merges statements). Not caching a state is a cache policy
      // the sleep-set theorem allows (Godefroid et al.: a state may be dropped from the cache at will); reached again,
      // it is explored as a new state would be, so nothing a cached search explores is left out.
      stats.forced++;
      if (awake.length === 0) {
        stats.sleepBlocked++;
        leaf();
        return;
      }
      stack.push({ ex, choosable, cands: awake, next: 0, sleep, forced: forced + 1 });
      return;
    }
    const key = stateKey(ex, bounded);
    let cands: number[];
    let asleep = sleep;
    if (bounded) {
      // reached before with no more preemptions taken: every continuation left now was left then
      const fewest = cheapest.get(key);
      if (fewest !== undefined && fewest <= ex.preemptions) {
        stats.revisits++;
        leaf();
        return;
      }
      cheapest.set(key, ex.preemptions);
      if (fewest !== undefined) stats.revisits++;
      else stats.distinct++;
      if (choosable.length === 0) {
        if (fewest === undefined) judge(ex);
        leaf();
        return;
      }
      cands = [...choosable];
    } else {
      const stored = visited.get(key);
      if (stored === undefined) {
        stats.distinct++;
        visited.set(key, [...sleep.keys()]);
        if (choosable.length === 0) {
          judge(ex);
          leaf();
          return;
        }
        cands = awake;
      } else {
        stats.revisits++;
        // explored before with `stored` asleep: what slept then and is awake now is all that is new
        cands = stored.filter((a) => !sleep.has(a) && choosable.includes(a));
        const both = stored.filter((a) => sleep.has(a));
        visited.set(key, both);
        asleep = new Map([...sleep].filter(([a]) => both.includes(a)));
        if (cands.length === 0) {
          leaf();
          return;
        }
      }
    }
    const within = cands.filter((a) => ex.preemptions + (ex.preempts(a, choosable) ? 1 : 0) <= bound);
    stats.boundCuts += cands.length - within.length;
    if (within.length === 0) {
      if (cands.length > 0) stats.boundBlocked++;
      else stats.sleepBlocked++;
      leaf();
      return;
    }
    // the default order's choice first, as the stateless search does
    const d = ex.last >= 0 && within.includes(ex.last) ? ex.last : within[0]!;
    stack.push({ ex, choosable, cands: [d, ...within.filter((a) => a !== d)], next: 0, sleep: asleep, forced: 0 });
  };

  /** The depth-first loop: take each state's next candidate on a fork (the last one on the state itself). */
  const search = (root: Execution): void => {
    enter(root, new Map(), 0);
    while (stack.length > 0 && found === null) {
      if (opts.maxSchedules !== undefined && stats.schedules >= opts.maxSchedules) {
        cutBy = `schedule limit ${opts.maxSchedules}`;
        return;
      }
      if (opts.cancelled?.()) {
        cutBy = 'cancelled';
        return;
      }
      const v = stack[stack.length - 1]!;
      if (v.next >= v.cands.length) {
        stack.pop();
        continue;
      }
      const a = v.cands[v.next++]!;
      const ex = v.next === v.cands.length ? v.ex : v.ex.fork();
      let touch: Touch;
      try {
        touch = ex.step(a, v.choosable);
      } catch (err) {
        found = ex.result('violation', [modelErrorViolation(err)]);
        leaf();
        return;
      }
      stats.steps++;
      const next = new Map<number, Touch>();
      if (sleepSets) {
        for (const [b, t] of v.sleep) if (b !== a && independent(t, touch)) next.set(b, t);
        v.sleep.set(a, touch);
      }
      enter(ex, next, v.forced);
    }
  };

  const root = new Execution(scenario, opts);
  if (!startsFromCopy(scenario))
    throw new UncopyableMachineError(
      `stateful search: the machine of ${scenario.name} cannot be copied (a closure or a generator in its state: findUncopyable)`,
    );
  try {
    search(root);
  } catch (err) {
    // a task body that is still a generator, reached in the concurrent phase: neither copied nor keyed
    if (err instanceof ModelError && /suspended generator/.test(err.message))
      throw new UncopyableMachineError(
        `stateful search: the machine of ${scenario.name} cannot be copied: ${err.message}`,
      );
    throw err;
  }
  if (opts.onProgress) opts.onProgress(stats);
  const r = found as RunResult | null;
  const counterexample =
    r === null
      ? null
      : {
          violations: r.violations,
          found: [...r.schedule],
          schedule: opts.shrink === false ? [...r.schedule] : shrink(scenario, r, opts),
        };
  return resultOf(scenario, sleepSets ? 'sleep' : 'none', 1, bound, stats, cutBy, counterexample, 'stateful');
}
