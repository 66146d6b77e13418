import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../scenario/loader.js';
import { Execution } from './execution.js';
import { type CheckResult, type ExploreOptions, explore } from './explore.js';
import { startsFromCopy } from './machineCopy.js';
import { bypassRaceScenario, type CheckableScenario, raceScenario } from './model.js';
import { scenarioFromYaml, uncheckable } from './scenarioCheck.js';
import { stateKey } from './stateKey.js';

const DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
const CHECKABLE = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -5))
  .filter((f) => uncheckable(loadScenario(readFileSync(`${DIR}${f}.yaml`, 'utf8'), f)) === null)
  .sort();

/** The search with `fork` on or off, and the key of every end state it judged (in order). */
function search(sc: CheckableScenario, fork: boolean, o: ExploreOptions): { r: CheckResult; ends: string[] } {
  const ends: string[] = [];
  const r = explore(sc, { ...o, fork, onEnd: (ex) => ends.push(stateKey(ex, false)) });
  return { r, ends };
}

/** Forked and replayed searches agree on everything but the steps replayed; the steps each executed. */
function same(make: () => CheckableScenario, o: ExploreOptions): { replayed: number; forked: number } {
  const a = search(make(), false, o);
  const b = search(make(), true, o);
  const { steps: sa, ...ra } = a.r.stats;
  const { steps: sb, ...rb } = b.r.stats;
  expect(rb).toEqual(ra);
  expect(sb).toBeLessThanOrEqual(sa);
  expect(b.r.completeness).toBe(a.r.completeness);
  expect(b.r.counterexample).toEqual(a.r.counterexample);
  expect(b.ends).toEqual(a.ends);
  return { replayed: sa, forked: sb };
}

describe('the stateless search forked at choice points = the search that replays each prefix from the start', () => {
  it('shipped checkable scenarios are found', () => {
    expect(CHECKABLE).toContain('check-assign-race');
    expect(CHECKABLE.length).toBeGreaterThanOrEqual(16);
  });

  // schedule for schedule: the same statistics, verdict, counterexample and end states (each end state's key, in
  // the order the runs reached them) — bound 1, the first 12 schedules of each file
  for (const f of CHECKABLE) {
    it(`${f}, protocol`, () => {
      same(() => scenarioFromYaml(readFileSync(`${DIR}${f}.yaml`, 'utf8'), f), { bound: 1, maxSchedules: 12 });
    });
  }

  it('check-retarget, rfc-v1 legacy: the same violation in the same schedule (defect 11)', () => {
    const text = readFileSync(`${DIR}check-retarget.yaml`, 'utf8');
    same(() => scenarioFromYaml(text, 'check-retarget', { variant: 'rfc-v1', irqNumbering: 'legacy' }), {
      bound: 1,
      shrink: false,
    });
  });

  it('bypass-race: forked through the concurrent phase (irqbypass and vfio_set_trigger are frames)', () => {
    const { replayed, forked } = same(() => bypassRaceScenario({ variant: 'bypass' }), { bound: 1, maxSchedules: 30 });
    expect(forked).toBeLessThan(replayed);
  });

  it('assign-race at bound 2, the first 60 schedules: a third fewer steps executed', () => {
    const { replayed, forked } = same(() => raceScenario({}), { bound: 2, maxSchedules: 60 });
    expect(forked).toBeLessThan(replayed * 0.75);
  });
});

/**
 * Walks `a` and its copy `b` side by side: every object's copy has the same prototype and own keys in the same order
 * (the state key walks them in that order), and two paths to one object in `a` lead to one object in `b`.
 */
function sameLayout(a: unknown, b: unknown, pairs = new Map<object, unknown>()): void {
  if (a === null || typeof a !== 'object') return;
  const seen = pairs.get(a);
  if (seen !== undefined) {
    expect(b).toBe(seen);
    return;
  }
  pairs.set(a, b);
  const o = b as Record<string, unknown>;
  expect(Object.getPrototypeOf(o)).toBe(Object.getPrototypeOf(a));
  if (ArrayBuffer.isView(a)) return;
  if (a instanceof Map) {
    const bm = [...(o as unknown as Map<unknown, unknown>)];
    let i = 0;
    for (const [k, x] of a) {
      sameLayout(k, bm[i]![0], pairs);
      sameLayout(x, bm[i++]![1], pairs);
    }
    return;
  }
  if (a instanceof Set) {
    const bs = [...(o as unknown as Set<unknown>)];
    let i = 0;
    for (const x of a) sameLayout(x, bs[i++], pairs);
    return;
  }
  const keys = Object.keys(a);
  expect(Object.keys(o)).toEqual(keys);
  for (const k of keys) sameLayout((a as Record<string, unknown>)[k], o[k], pairs);
}

describe('a fork is the same state: sim/snapshot.ts copyState on every shipped checkable machine', () => {
  // after 0 and 9 default steps: equal state keys, each object's own keys in the original's order, aliasing kept
  for (const f of CHECKABLE) {
    it(f, () => {
      const sc = scenarioFromYaml(readFileSync(`${DIR}${f}.yaml`, 'utf8'), f);
      const a = new Execution(sc, {});
      if (!startsFromCopy(sc)) return;
      for (let n = 0; n < 2; n++) {
        const b = a.fork();
        expect(stateKey(b, true)).toBe(stateKey(a, true));
        sameLayout(a.inst, b.inst);
        for (let i = 0; i < 9; i++) {
          const ch = a.choosable();
          if (ch.length === 0) break;
          a.step(ch[0]!, ch);
        }
      }
    });
  }
});
