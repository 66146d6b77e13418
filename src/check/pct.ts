/**
 * Randomized PCT (probabilistic concurrency testing, Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010):
 * each agent gets a random distinct priority when first seen (all above d), the highest-priority choosable agent
 * always runs, and at d−1 random steps in [1, k] the agent about to run drops to priority d−1−j, below every initial
 * one. A bug of depth d is found per run with probability ≥ 1/(n·k^(d−1)) (n agents, k steps). Seeded: a run is a
 * pure function of (scenario, seed, runs, depth). Sound for violations, never a proof: the verdict says "sampled".
 */
import { Prng } from '../sim/prng.js';
import { type Choosable, type Chooser, Execution, type ExecutionOptions, runSchedule } from './execution.js';
import { type CheckResult, type ExploreStats, newStats, shrink } from './explore.js';
import type { CheckableScenario } from './model.js';

export interface PctOptions extends ExecutionOptions {
  runs: number;
  /** Bug depth d ≥ 1 (d−1 priority change points per run). */
  depth: number;
  seed: number;
  /** Shrink the first counterexample (default true). */
  shrink?: boolean;
  onProgress?: (s: ExploreStats) => void;
  progressEvery?: number;
}

class PctChooser implements Chooser {
  private readonly prio = new Map<number, number>();
  private step = 0;

  constructor(
    private readonly rng: Prng,
    private readonly depth: number,
    /** Step numbers (1-based) at which the running agent's priority drops, ascending by index j. */
    private readonly changes: readonly number[],
  ) {}

  private priority(a: number): number {
    let p = this.prio.get(a);
    if (p === undefined) {
      // distinct with overwhelming probability; ties break by agent id below
      p = this.depth + 1 + this.rng.below(1 << 30);
      this.prio.set(a, p);
    }
    return p;
  }

  private best(choosable: readonly number[]): number {
    let best = -1;
    let bp = -1;
    for (const a of choosable) {
      const p = this.priority(a);
      if (p > bp || (p === bp && a < best)) {
        best = a;
        bp = p;
      }
    }
    return best;
  }

  choose(c: Choosable): number {
    const choosable = c.list;
    this.step++;
    const j = this.changes.indexOf(this.step);
    if (j >= 0) this.prio.set(this.best(choosable), this.depth - 1 - j);
    return this.best(choosable);
  }
}

/** Run PCT; stops at the first violation (shrunk). */
export function pct(scenario: CheckableScenario, opts: PctOptions): CheckResult {
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new RangeError(`runs must be ≥ 1, got ${opts.runs}`);
  if (!Number.isInteger(opts.depth) || opts.depth < 1) throw new RangeError(`depth must be ≥ 1, got ${opts.depth}`);
  const rng = new Prng(opts.seed);
  const stats = newStats();
  // k: the longest run so far (the first run's estimate: a run in the default order).
  let k = 0;
  let counterexample: CheckResult['counterexample'] = null;
  const every = opts.progressEvery ?? 100;
  for (let run = 0; run < opts.runs; run++) {
    const kk = Math.max(k, 1);
    const changes: number[] = [];
    for (let j = 0; j < opts.depth - 1; j++) changes.push(1 + rng.below(kk));
    const r = runSchedule(new Execution(scenario, opts), new PctChooser(rng, opts.depth, changes));
    stats.schedules++;
    stats.steps += r.schedule.length;
    stats.states += r.schedule.length;
    if (r.schedule.length > k) k = r.schedule.length;
    stats.maxDepth = k;
    if (r.end === 'quiescent') stats.complete++;
    else if (r.end === 'budget') stats.budgetHit++;
    if (opts.onProgress && stats.schedules % every === 0) opts.onProgress(stats);
    if (r.end === 'violation') {
      counterexample = {
        violations: r.violations,
        found: [...r.schedule],
        schedule: opts.shrink === false ? [...r.schedule] : shrink(scenario, r, opts),
      };
      break;
    }
  }
  if (opts.onProgress) opts.onProgress(stats);
  return {
    scenario: scenario.name,
    variant: scenario.variant,
    completeness: 'sampled',
    limits: `PCT depth ${opts.depth}, ${stats.schedules} of ${opts.runs} run(s), seed ${opts.seed}`,
    stats,
    counterexample,
  };
}
