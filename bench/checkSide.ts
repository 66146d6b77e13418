/**
 * One checker run for bench/checkCompare.ts, in whichever transpiled tree this file was copied into:
 * `node checkSide.js WAY SCENARIO.yaml` prints a JSON row. WAY: rebuilt | copied | forked (stateless DPOR at bound 2,
 * each schedule from a fresh build, from a copy with its prefix replayed, or forked at choice points), stateful
 * (bound 2, every order within the bound, each state once) or unbounded (the stateful search with sleep sets, no
 * bound, on check-deassign-unassigned: what `--bound none` runs).
 */
import { readFileSync } from 'node:fs';
import { explore } from '../src/check/explore.js';
import { raceScenario } from '../src/check/model.js';
import { scenarioFromYaml } from '../src/check/scenarioCheck.js';

const [way = 'forked', file = 'scenarios/check-assign-race.yaml'] = process.argv.slice(2);
explore(raceScenario({ variant: 'protocol' }), { bound: 0, reduction: 'dpor', shrink: true }); // warm-up
const unbounded = way === 'unbounded';
const stateful = way === 'stateful' || unbounded;
const scenario =
  way === 'stateful'
    ? raceScenario({ variant: 'protocol' })
    : scenarioFromYaml(readFileSync(file, 'utf8'), file, { variant: 'protocol' });
const c0 = process.cpuUsage();
const r = explore(scenario, {
  ...(unbounded ? {} : { bound: 2 }),
  reduction: unbounded ? 'sleep' : stateful ? 'none' : 'dpor',
  shrink: true,
  copyMachine: way !== 'rebuilt',
  fork: way === 'forked' || stateful,
  search: stateful ? 'stateful' : 'stateless',
});
const c1 = process.cpuUsage(c0);
const s = r.stats;
console.log(
  JSON.stringify({
    schedules: s.schedules,
    states: s.states,
    distinct: s.distinct ?? null,
    verdict: r.completeness,
    violations: r.counterexample?.violations.length ?? 0,
    cpu: (c1.user + c1.system) / 1e6,
  }),
);
