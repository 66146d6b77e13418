import { describe, expect, it } from 'vitest';
import { C_NONE } from '../sim/costs.js';
import { ModelError } from '../sim/errors.js';
import { cpuRelax, type TaskGen } from '../sim/task.js';
import { independent } from './execution.js';
import { explore, replay } from './explore.js';
import { type CheckableScenario, raceScenario } from './model.js';
import { pct } from './pct.js';
import { formatReplayFile, parseReplayFile, replayFile, replayFileOf } from './replay.js';

describe('independence', () => {
  // footprint entries as footprintSet gives them: oid * 2 + 1 written, oid * 2 only read
  const w = (oid: number) => oid * 2 + 1;
  const r = (oid: number) => oid * 2;

  it('disjoint touch sets commute; a global step (null) commutes with nothing', () => {
    expect(independent([w(1), w(3), w(5)], [w(2), w(4)])).toBe(true);
    expect(independent([w(1), w(3), w(5)], [w(0), w(5)])).toBe(false);
    expect(independent(null, [w(2)])).toBe(false);
    expect(independent([], null)).toBe(false);
  });

  it('two reads of one object commute; a read and a write, or two writes, do not', () => {
    expect(independent([r(1), w(2)], [r(1), w(3)])).toBe(true);
    expect(independent([r(1)], [w(1)])).toBe(false);
    expect(independent([w(1)], [r(1)])).toBe(false);
    expect(independent([r(0), w(1)], [w(1)])).toBe(false);
  });
});

describe('the canonical race (ASSIGN then DEASSIGN while the device fires and the vCPU runs)', () => {
  it('naive: found at preemption bound 1, INTID left active, shrunk below 40 choices, replay reproduces it', () => {
    const sc = raceScenario({ variant: 'naive' });
    const r = explore(sc, { bound: 1 });
    const cx = r.counterexample;
    expect(cx).not.toBeNull();
    expect(cx!.violations.map((v) => v.invariant)).toContain('no-irq-left-active');
    expect(cx!.violations[0]!.invariant).toBe('no-irq-left-active');
    expect(cx!.schedule.length).toBeLessThan(40);
    expect(cx!.schedule.length).toBeLessThanOrEqual(cx!.found.length);
    const again = replay(sc, cx!.schedule);
    expect(again.violations).toEqual(cx!.violations);
    // the replay is exact: twice the same steps
    expect(replay(sc, cx!.schedule).schedule).toEqual(again.schedule);
  });

  it('a replay file round-trips and reproduces the violation from a fresh scenario', () => {
    const sc = raceScenario({ variant: 'naive' });
    const cx = explore(sc, { bound: 1 }).counterexample!;
    const f = parseReplayFile(formatReplayFile(replayFileOf(sc, cx.violations[0]!.invariant, cx.schedule)));
    expect(f).toMatchObject({ scenario: 'assign-race', variant: 'naive', seed: 1, schedule: [...cx.schedule] });
    expect(replayFile(f).violations[0]!.invariant).toBe(f.invariant);
  });

  it('a schedule that names a disabled agent diverges loudly', () => {
    expect(() => replay(raceScenario({ variant: 'naive' }), [57])).toThrow(ModelError);
  });

  it('protocol: every schedule within preemption bound 1 satisfies every invariant (bounded, not exhaustive)', () => {
    const r = explore(raceScenario({ variant: 'protocol' }), { bound: 1 });
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('bounded');
    expect(r.limits).toBe('preemption bound 1');
    expect(r.reduction).toBe('dpor');
    expect(r.stats.complete).toBe(48);
    expect(r.stats.sleepBlocked).toBeGreaterThan(0); // sleep sets pruned equivalent schedules
    expect(r.stats.budgetHit).toBe(0);
  });

  it('protocol at preemption bound 2 passes too (DPOR: 499 schedules; the documented bound of the design)', () => {
    const r = explore(raceScenario({ variant: 'protocol' }), { bound: 2 });
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('bounded');
    expect(r.limits).toBe('preemption bound 2');
    expect(r.stats.complete).toBe(494);
    expect(r.stats.schedules).toBe(499);
    expect(r.stats.budgetHit).toBe(0);
  });

  it('reductions: DPOR runs fewer schedules than sleep sets, sleep sets fewer than plain enumeration; same verdicts', () => {
    const n = (reduction: 'dpor' | 'sleep' | 'none') => {
      const r = explore(raceScenario({ variant: 'protocol' }), { bound: 1, reduction });
      expect(r.counterexample).toBeNull();
      expect(r.reduction).toBe(reduction);
      return r.stats;
    };
    const [d, s, none] = [n('dpor'), n('sleep'), n('none')];
    expect(d.schedules).toBe(60);
    expect(s.schedules).toBe(141); // 144 and 261 before the forwarded IRQ's direct call dropped the eventfd steps
    expect(none.schedules).toBe(258);
    expect(none.sleepBlocked).toBe(0);
    expect(d.races).toBeGreaterThan(0);
    expect(s.races).toBe(0);
    const naive = explore(raceScenario({ variant: 'naive' }), { bound: 1, reduction: 'none' });
    expect(naive.counterexample!.violations[0]!.invariant).toBe('no-irq-left-active');
  });

  it('protocol at bound 0 and naive at bound 0: the non-preemptive orders pass (the race needs a preemption)', () => {
    for (const variant of ['protocol', 'naive'] as const) {
      const r = explore(raceScenario({ variant }), { bound: 0 });
      expect(r.counterexample).toBeNull();
    }
  });

  it('rfc-v1: the Linux IRQ number used as the physical INTID ends in a ModelError (HW LR with pINTID 3)', () => {
    const r = explore(raceScenario({ variant: 'rfc-v1' }), { bound: 1 });
    const v = r.counterexample!.violations[0]!;
    expect(v.invariant).toBe('no-model-error');
    expect(v.message).toMatch(/pINTID 3/);
  });
});

describe('PCT', () => {
  it('finds the naive race within 100 runs at depth 3 for seed 1, deterministically', () => {
    const a = pct(raceScenario({ variant: 'naive' }), { runs: 100, depth: 3, seed: 1 });
    const b = pct(raceScenario({ variant: 'naive' }), { runs: 100, depth: 3, seed: 1 });
    expect(a.completeness).toBe('sampled');
    expect(a.counterexample).not.toBeNull();
    expect(a.stats.schedules).toBeLessThanOrEqual(100);
    expect(a.counterexample!.schedule.length).toBeLessThan(40);
    expect(b.stats.schedules).toBe(a.stats.schedules);
    expect(b.counterexample!.schedule).toEqual(a.counterexample!.schedule);
  });

  it('finds nothing in the protocol variant in 50 runs', () => {
    expect(pct(raceScenario({ variant: 'protocol' }), { runs: 50, depth: 2, seed: 7 }).counterexample).toBeNull();
  });
});

describe('spin loops', () => {
  /** The race, plus a host thread on CPU 0 that busy-waits on a flag nobody sets. */
  function spinning(): CheckableScenario {
    const base = raceScenario({ variant: 'protocol', raises: 0, ops: ['assign'] });
    return {
      ...base,
      build() {
        const inst = base.build();
        const e = inst.host.engine;
        const flag = e.newOid('never.set');
        function* spin(): TaskGen {
          for (;;) yield cpuRelax(C_NONE, flag);
        }
        e.spawn('spinner', 0, spin());
        return inst;
      },
    };
  }

  it('a thread that only polls unchanged state is reported as a livelock, not as a budget overrun', () => {
    const r = explore(spinning(), { bound: 0, budget: 5000 });
    expect(r.stats.budgetHit).toBe(0);
    const v = r.counterexample!.violations[0]!;
    expect(v.invariant).toBe('no-livelock');
    expect(v.message).toMatch(/\(spin loop\): cpu0\(spinner-\d+\) polling never\.set/);
  });
});
