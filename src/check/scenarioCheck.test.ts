import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expandPaths, loadScenario } from '../scenario/loader.js';
import { findUncopyable } from '../sim/snapshot.js';
import { explore, replay } from './explore.js';
import type { InvariantName } from './invariants.js';
import { startsFromCopy } from './machineCopy.js';
import { raceScenario } from './model.js';
import { pct } from './pct.js';
import { formatReplayFile, parseReplayFile, replayFile, replayFileOf } from './replay.js';
import { ScenarioCheckError, scenarioFromYaml, uncheckable } from './scenarioCheck.js';

const DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
const text = (name: string): string => readFileSync(`${DIR}${name}.yaml`, 'utf8');

/** The shipped scenarios the checker can run (docs/CLI.md), and why the others cannot be. */
const CHECKABLE = [
  'assign-deassign-inflight',
  'check-assign-before-vcpu',
  'check-assign-race',
  'check-bad-gsi',
  'check-closed-fd',
  'check-deassign-unassigned',
  'check-enomem',
  'check-retarget',
  'check-two-vms',
  'default',
  'edge',
  'gicv3-default',
  'lr-overflow',
  'multi-vcpu-retarget',
  'teardown-inflight',
  'virq-completion',
] as const;
const UNCHECKABLE: Readonly<Record<string, RegExp>> = {
  hypercall: /trap loop/,
  'io-latency-in': /via: eventfd/,
  'io-latency-out': /trap loop/,
  'rate-sweep': /a sweep/,
  'compare-paths': /compare paths: check one path/,
};

describe('scenario files under the checker', () => {
  it('the shipped scenarios that can be checked build; the others say why not', () => {
    for (const f of CHECKABLE) expect(uncheckable(loadScenario(text(f), f))).toBeNull();
    for (const [f, why] of Object.entries(UNCHECKABLE)) {
      expect(uncheckable(loadScenario(text(f), f))).toMatch(why);
      expect(() => scenarioFromYaml(text(f), f)).toThrow(ScenarioCheckError);
    }
    // compare-paths' vlpi-v41 column on its own: a PCI function's MSIs are not the checker's (yet)
    const msi = expandPaths(loadScenario(text('compare-paths'), 'compare-paths'))[3]!.scenario;
    expect(uncheckable(msi)).toMatch(/PCI function's MSIs \(bus: pci\)/);
  });

  it('check-assign-race.yaml is the built-in race: same search, same counterexample (naive)', () => {
    const file = explore(scenarioFromYaml(text('check-assign-race'), 'check-assign-race', { variant: 'naive' }), {
      bound: 1,
    });
    const builtin = explore(raceScenario({ variant: 'naive' }), { bound: 1 });
    expect(file.stats.schedules).toBe(builtin.stats.schedules);
    expect(file.counterexample!.violations.map((v) => v.invariant)).toEqual(['no-irq-left-active']);
    expect(file.counterexample!.schedule).toEqual(builtin.counterexample!.schedule);
  });

  it('a replay file of a scenario file carries its text and reproduces without reading the file', () => {
    const sc = scenarioFromYaml(text('assign-deassign-inflight'), 'scenarios/assign-deassign-inflight.yaml', {
      variant: 'naive',
    });
    const cx = explore(sc, { bound: 1 }).counterexample!;
    const f = parseReplayFile(formatReplayFile(replayFileOf(sc, cx.violations[0]!.invariant, cx.schedule)));
    expect(f.options.file).toBe('scenarios/assign-deassign-inflight.yaml');
    expect(f.options.yaml).toBe(text('assign-deassign-inflight'));
    expect(replayFile(f).violations.map((v) => v.invariant)).toEqual(cx.violations.map((v) => v.invariant));
  });

  it('protocol: the default order of every checkable shipped scenario satisfies every invariant', () => {
    for (const f of CHECKABLE) expect(replay(scenarioFromYaml(text(f), f), []).violations).toEqual([]);
  });

  it('every checkable shipped scenario holds no closure: its schedules start from copies of one build', () => {
    for (const f of CHECKABLE) {
      const sc = scenarioFromYaml(text(f), f);
      expect(findUncopyable(sc.build()), f).toEqual([]);
      // two schedules: the first builds, both run on copies; the second still judges the lines by its own outcomes
      expect(replay(sc, []).violations).toEqual([]);
      expect(replay(sc, []).violations).toEqual([]);
      expect(startsFromCopy(sc), f).toBe(true);
    }
  });
});

/**
 * rfc-v1 over the shipped checkable scenarios (docs/CHECKER.md has the defect table): the invariant each one's
 * default order violates first, with the host's Linux IRQ numbers linear (today's arm64) and legacy (= INTID).
 */
describe('rfc-v1 (the seed) under the checker', () => {
  const first = (numbering: 'linear' | 'legacy'): Record<string, InvariantName | 'none'> => {
    const out: Record<string, InvariantName | 'none'> = {};
    for (const f of CHECKABLE) {
      const sc = scenarioFromYaml(text(f), f, { variant: 'rfc-v1', irqNumbering: numbering });
      out[f] = replay(sc, []).violations[0]?.invariant ?? 'none';
    }
    return out;
  };

  it('linear numbering: the Linux IRQ number as the HW INTID crashes the first forwarded delivery', () => {
    expect(first('linear')).toEqual({
      'assign-deassign-inflight': 'no-model-error',
      'check-assign-before-vcpu': 'no-model-error',
      'check-assign-race': 'none',
      'check-bad-gsi': 'no-model-error',
      'check-closed-fd': 'no-model-error',
      'check-deassign-unassigned': 'no-model-error',
      'check-enomem': 'no-model-error',
      'check-retarget': 'none',
      'check-two-vms': 'no-gic-unpredictable',
      default: 'no-model-error',
      edge: 'no-model-error',
      // a GICv3 LR takes the small Linux IRQ number as pINTID: the guest's EOI deactivates that one, not the line's
      'gicv3-default': 'no-irq-left-active',
      'lr-overflow': 'no-model-error',
      'multi-vcpu-retarget': 'no-model-error',
      'teardown-inflight': 'no-irq-left-forwarded',
      'virq-completion': 'no-model-error',
    });
  });

  it('legacy numbering: the blind GICC_DIR of CLEANUP at teardown; the forwarded state outlives VFIO’s trigger', () => {
    expect(first('legacy')).toEqual({
      'assign-deassign-inflight': 'no-gic-unpredictable',
      'check-assign-before-vcpu': 'no-model-error',
      'check-assign-race': 'none',
      'check-bad-gsi': 'no-model-error',
      'check-closed-fd': 'no-model-error',
      'check-deassign-unassigned': 'no-model-error',
      'check-enomem': 'no-irq-left-forwarded',
      'check-retarget': 'none',
      'check-two-vms': 'no-gic-unpredictable',
      default: 'no-gic-unpredictable',
      edge: 'no-gic-unpredictable',
      'gicv3-default': 'no-gic-unpredictable',
      'lr-overflow': 'no-gic-unpredictable',
      'multi-vcpu-retarget': 'no-gic-unpredictable',
      'teardown-inflight': 'no-irq-left-forwarded',
      'virq-completion': 'no-gic-unpredictable',
    });
  });

  it('the race file at preemption bound 1: ASSIGN inside the VFIO handler leaves the automask (legacy numbering)', () => {
    const sc = scenarioFromYaml(text('check-assign-race'), 'check-assign-race', {
      variant: 'rfc-v1',
      irqNumbering: 'legacy',
    });
    const cx = explore(sc, { bound: 1 }).counterexample!;
    expect(cx.violations.map((v) => v.invariant)).toContain('no-irq-left-disabled');
  });

  it('disable_irq in DEASSIGN spins while the guest holds the forwarded INTID active: a livelock, spinner named', () => {
    // the race file with a guest that never deactivates (scenario `guest.eoi: never`)
    const yaml = text('check-assign-race').replace('workload: idle }', 'workload: idle, eoi: never }');
    const sc = scenarioFromYaml(yaml, 'no-eoi', { variant: 'rfc-v1', irqNumbering: 'legacy' });
    const r = pct(sc, { runs: 200, depth: 2, seed: 1 });
    const v = r.counterexample!.violations[0]!;
    expect(v.invariant).toBe('no-livelock');
    expect(v.message).toMatch(/cpu0\(ctl-\d+\) polling irq_desc\.lock/);
    expect(r.stats.budgetHit).toBe(0);
    expect(pct(scenarioFromYaml(yaml, 'no-eoi'), { runs: 50, depth: 2, seed: 1 }).counterexample).toBeNull();
  });
});
