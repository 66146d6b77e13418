import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ExploreOptions, explore } from './explore.js';
import { bypassRaceScenario, type CheckableScenario, raceScenario } from './model.js';
import { scenarioFromYaml } from './scenarioCheck.js';
import { stateKey } from './stateKey.js';

/**
 * The stateful search reaches the end states and the verdict of the stateless plain enumeration at `bound` (bounded
 * DPOR is no reference: at assign-race bound 1 it reaches 22 of the 29 end states, telling them apart by everything
 * the key holds — the invariants' view, dporScenario.test.ts, is the same) — or refuses a machine that cannot be copied yet (a task
 * body that is still a generator, a closure in state: its states can be neither copied nor keyed).
 */
function sameAsEnumeration(make: () => CheckableScenario, bound: number): ReturnType<typeof ends> | null {
  let stateful: ReturnType<typeof ends>;
  try {
    stateful = ends(make(), { bound, search: 'stateful' });
  } catch (err) {
    expect(String(err)).toMatch(/stateful search: the machine of .* cannot be copied/);
    return null;
  }
  const plain = ends(make(), { bound, reduction: 'none' });
  expect(stateful.verdict).toBe(plain.verdict);
  expect(stateful.keys).toEqual(plain.keys);
  return stateful;
}

/** A search's verdict and the keys of every end state it reached (taken before the end-of-run checks). */
function ends(scenario: CheckableScenario, opts: ExploreOptions) {
  const keys = new Set<string>();
  const r = explore(scenario, { ...opts, shrink: false, onEnd: (ex) => keys.add(stateKey(ex, false)) });
  const verdict = r.counterexample === null ? 'pass' : r.counterexample.violations[0]!.invariant;
  return { verdict, keys: [...keys].sort(), stats: r.stats };
}

describe('stateful search against the stateless search', () => {
  it('assign-race, bound 1: the end states and verdict of plain enumeration, each distinct end state judged once', () => {
    const r = sameAsEnumeration(() => raceScenario(), 1)!;
    expect(r.verdict).toBe('pass');
    // judged states: one per key (the key holds the bound's state: last agent, preemptions)
    expect(r.stats.complete).toBeLessThanOrEqual(r.stats.distinct);
    expect(r.stats.revisits).toBeGreaterThan(0);
  });

  it('bypass-race, bound 1: the end states and verdict of plain enumeration', () => {
    sameAsEnumeration(() => bypassRaceScenario({}), 1);
  });

  it('the naive variant: both searches find a violation of the same invariant, and it shrinks', () => {
    const stateless = explore(raceScenario({ variant: 'naive' }), { bound: 1, shrink: false });
    const stateful = explore(raceScenario({ variant: 'naive' }), { bound: 1, search: 'stateful' });
    expect(stateful.search).toBe('stateful');
    expect(stateful.counterexample!.violations[0]!.invariant).toBe(stateless.counterexample!.violations[0]!.invariant);
    expect(stateful.counterexample!.schedule.length).toBeLessThan(stateful.counterexample!.found.length);
  });
});

const SHIPPED = [
  'check-enomem',
  'check-deassign-unassigned',
  'check-closed-fd',
  'check-bad-gsi',
  'check-assign-before-vcpu',
];

describe('stateful search on the shipped check-*.yaml files (bound 1)', () => {
  for (const name of SHIPPED) {
    it(`${name}: the end states and verdict of plain enumeration, or a refusal while the machine cannot be copied`, () => {
      const text = readFileSync(new URL(`../../scenarios/${name}.yaml`, import.meta.url), 'utf8');
      sameAsEnumeration(() => scenarioFromYaml(text, name, {}), 1);
    });
  }
});
