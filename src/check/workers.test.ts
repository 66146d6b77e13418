import { describe, expect, it } from 'vitest';
import { explore } from './explore.js';
import { raceScenario } from './model.js';
import { exploreParallel } from './workers.js';

describe('the search shared by worker threads (assign-race, preemption bound 1)', () => {
  it('naive: two workers find the same violation as one thread, shrunk below 40 choices', () => {
    const one = explore(raceScenario({ variant: 'naive' }), { bound: 1 });
    const two = exploreParallel(raceScenario({ variant: 'naive' }), { bound: 1, workers: 2 });
    expect(two.workers).toBe(2);
    expect(two.counterexample!.violations[0]!.invariant).toBe(one.counterexample!.violations[0]!.invariant);
    expect(two.counterexample!.violations[0]!.invariant).toBe('no-irq-left-active');
    expect(two.counterexample!.schedule.length).toBeLessThan(40);
  });

  it('protocol: two workers pass with the same completeness and every subtree was handed out', () => {
    const one = explore(raceScenario({ variant: 'protocol' }), { bound: 1 });
    const two = exploreParallel(raceScenario({ variant: 'protocol' }), { bound: 1, workers: 2 });
    expect(two.counterexample).toBeNull();
    expect(two.completeness).toBe(one.completeness);
    expect(two.limits).toBe(one.limits);
    expect(two.stats.delegated).toBeGreaterThanOrEqual(8);
    // the top is enumerated rather than reduced: at least as many complete schedules as one thread's DPOR
    expect(two.stats.complete).toBeGreaterThanOrEqual(one.stats.complete);
    expect(two.stats.budgetHit).toBe(0);
  });
});
