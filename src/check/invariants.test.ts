import { describe, expect, it } from 'vitest';
import { KObject } from '../host/kref.js';
import { C_NONE } from '../sim/costs.js';
import { ModelError, UseAfterFreeError } from '../sim/errors.js';
import { Spinlock, spinLock } from '../sim/locks.js';
import { cpuRelax, op, type TaskGen } from '../sim/task.js';
import { Completion, waitForCompletion } from '../sim/waitqueue.js';
import { Execution, runSchedule } from './execution.js';
import { explore } from './explore.js';
import {
  checkAtEnd,
  INVARIANTS,
  type InvariantName,
  modelErrorInvariant,
  teardownInvariant,
  type Violation,
} from './invariants.js';
import { type CheckableScenario, type CheckInstance, raceScenario } from './model.js';

/** The race's machine after its set-up, with no concurrent phase: every invariant holds there. */
function quiet(): CheckInstance {
  return raceScenario({ variant: 'protocol', raises: 0, ops: [] }).build();
}

const names = (vs: readonly Violation[]): InvariantName[] => [...new Set(vs.map((v) => v.invariant))].sort();

/** A scenario that adds `extra` to the quiet machine's build (a task, a broken state...). */
function withBuild(extra: (inst: CheckInstance) => CheckInstance | undefined): CheckableScenario {
  const base = raceScenario({ variant: 'protocol', raises: 0, ops: [] });
  return {
    ...base,
    build() {
      const inst = base.build();
      return extra(inst) ?? inst;
    },
  };
}

function firstViolation(sc: CheckableScenario): Violation {
  const r = runSchedule(new Execution(sc, { budget: 5000 }), { choose: (c) => c.at(0) });
  expect(r.end).toBe('violation');
  return r.violations[0]!;
}

describe('invariants: each a named predicate', () => {
  it('the issue’s invariants all exist under a name', () => {
    const have = new Set<string>(INVARIANTS.map((i) => i.name));
    for (const n of [
      'no-lost-irq',
      'no-irq-left-active',
      'no-irq-left-pending',
      'no-irq-left-disabled',
      'balanced-disable-depth',
      'no-leak-after-teardown',
      'no-use-after-free',
      'no-lockdep-report',
    ])
      expect(have.has(n)).toBe(true);
  });

  it('a quiet machine satisfies every end-of-run invariant', () => {
    expect(checkAtEnd(quiet())).toEqual([]);
  });

  it('no-lost-irq and no-irq-left-pending: a requested line left asserted and pending at quiescence', () => {
    const inst = quiet();
    inst.device!.hw.assert(0);
    const v = checkAtEnd(inst);
    expect(names(v)).toEqual(['no-irq-left-pending', 'no-lost-irq']);
    expect(v.find((x) => x.invariant === 'no-irq-left-pending')!.message).toMatch(/INTID 80 pending forever/);
  });

  it('no-irq-left-active: the INTID active at quiescence', () => {
    const inst = quiet();
    inst.host.irq.gic.distributor.setActive(80, true);
    expect(names(checkAtEnd(inst))).toEqual(['no-irq-left-active']);
  });

  it('no-irq-left-disabled and balanced-disable-depth: VFIO masked while genirq has the IRQ enabled', () => {
    const inst = quiet();
    inst.device!.vdev.irqs[0]!.masked = true;
    const v = checkAtEnd(inst);
    expect(names(v)).toEqual(['balanced-disable-depth', 'no-irq-left-disabled']);
    expect(v.find((x) => x.invariant === 'balanced-disable-depth')!.message).toMatch(/VFIO masked but .* depth 0/);
  });

  it('no-irq-left-disabled is not violated while the guest holds the vIRQ active (the normal path keeps it masked)', () => {
    const inst = quiet();
    const desc = inst.device!.descs[0]!;
    desc.depth = 1;
    inst.device!.vdev.irqs[0]!.masked = true;
    inst.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.active = true;
    expect(names(checkAtEnd(inst))).toEqual([]);
  });

  it('no-duplicate-irq: the guest driver ran more often than VFIO signalled', () => {
    const inst = quiet();
    inst.guest.devices[0]!.handled = inst.device!.vdev.irqs[0]!.signals + 1;
    expect(names(checkAtEnd(inst))).toEqual(['no-duplicate-irq']);
  });

  it('no-irq-left-forwarded: forwarded after the scenario’s DEASSIGN', () => {
    const inst = raceScenario({ variant: 'protocol', raises: 0, ops: ['deassign'] }).build();
    inst.device!.descs[0]!.forwardedToVcpu = true;
    const v = checkAtEnd(inst);
    expect(names(v)).toEqual(['no-irq-left-forwarded']);
    expect(v[0]!.message).toMatch(/still forwarded after DEASSIGN/);
  });

  it('no-genirq-warn and no-gic-unpredictable: an IRQ taken with no descriptor, a GIC access out of spec', () => {
    const inst = quiet();
    inst.host.irq.genirq.badIrqs.push('INTID 99');
    expect(names(checkAtEnd(inst))).toEqual(['no-genirq-warn']);
    const inst2 = quiet();
    inst2.host.irq.gic.cpu(0).unpredictableCount++;
    expect(names(checkAtEnd(inst2))).toEqual(['no-gic-unpredictable']);
  });

  it('hw-lr-names-active-intid: a HW=1 list register loaded while its physical INTID was inactive (VgicV2.restoreState)', () => {
    const inst = quiet();
    const vgic = inst.host.kvm.vms[0]!.vgic!;
    vgic.hwLrInactive = 1;
    vgic.hwLrInactiveFirst = 'vcpu0 LR0 vINTID 80 → inactive INTID 80';
    const v = checkAtEnd(inst);
    expect(names(v)).toEqual(['hw-lr-names-active-intid']);
    expect(v[0]!.message).toMatch(/vGIC: 1 HW=1 list register\(s\) named an inactive physical INTID/);
    expect(inst.host.findings().map((f) => f.kind)).toEqual(['vgic-hw-lr-inactive']);
  });

  it('teardown findings are named by the kind of host check that made them, not by their text', () => {
    expect(teardownInvariant('leak')).toBe('no-leak-after-teardown');
    expect(teardownInvariant('gic-unpredictable')).toBe('no-gic-unpredictable');
    expect(teardownInvariant('left-active')).toBe('no-irq-left-active');
    expect(teardownInvariant('still-forwarded')).toBe('no-irq-left-forwarded');
    expect(teardownInvariant('genirq-warn')).toBe('no-genirq-warn');
  });

  it('no-use-after-free: a task using a freed (poisoned) kernel object', () => {
    const sc = withBuild((inst) => {
      const obj = new KObject(null, 'test_obj', 'x');
      obj.markFreed();
      function* user(): TaskGen<void> {
        yield op(C_NONE);
        obj.get();
      }
      inst.host.engine.spawn('user', 0, user());
      return inst;
    });
    const v = firstViolation(sc);
    expect(v.invariant).toBe('no-use-after-free');
    expect(v.message).toMatch(/use-after-free: get on freed test_obj x/);
    // named by the error's class, itself or as the cause of a failed syscall's error, not by its text
    const uaf = new UseAfterFreeError('double free of file x');
    expect(modelErrorInvariant(new ModelError('vmm on ctl-1 failed', { cause: uaf }))).toBe('no-use-after-free');
    expect(modelErrorInvariant(new ModelError('LR HW=1 with pINTID 3 (not a use-after-free)'))).toBe('no-model-error');
  });

  it('no-deadlock: the VMM’s call never returns although the machine is quiescent', () => {
    const sc = withBuild((inst) => {
      const never = new Completion(inst.host.engine, 'never');
      const p = inst.host.process();
      function* stuck(): TaskGen<number> {
        yield* waitForCompletion(never);
        return 0;
      }
      const handle = p.thread('stuck', 0).submit('wait_for_completion', stuck());
      return Object.assign(inst, { control: [{ what: 'wait_for_completion', handle }] });
    });
    const v = firstViolation(sc);
    expect(v.invariant).toBe('no-deadlock');
    expect(v.message).toMatch(/VMM's wait_for_completion never returned/);
  });

  it('no-lockdep-report: two locks taken in both orders (ABBA)', () => {
    const sc = withBuild((inst) => {
      const e = inst.host.engine;
      const a = new Spinlock(e, 'test.a');
      const b = new Spinlock(e, 'test.b');
      function* abba(): TaskGen<void> {
        yield* spinLock(a);
        yield* spinLock(b);
        b.unlock();
        a.unlock();
        yield* spinLock(b);
        yield* spinLock(a);
        a.unlock();
        b.unlock();
      }
      e.spawn('abba', 0, abba());
      return inst;
    });
    const r = runSchedule(new Execution(sc, { budget: 5000, teardown: false }), { choose: (c) => c.at(0) });
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]!.invariant).toBe('no-lockdep-report');
    expect(r.violations[0]!.message).toMatch(/lockdep ABBA: .* acquires test\.a while holding test\.b/);
  });
});

describe('spin loops', () => {
  it('a poll loop with steps of its own in between (lock, re-check, unlock) is a livelock, named, not a budget overrun', () => {
    const sc = withBuild((inst) => {
      const e = inst.host.engine;
      const lock = new Spinlock(e, 'test.desc_lock');
      const flag = e.newOid('never.set');
      // the shape of __synchronize_hardirq with the chip check: poll, then re-check under a lock, forever
      function* sync(): TaskGen {
        for (;;) {
          yield cpuRelax(C_NONE, flag);
          yield* spinLock(lock);
          yield op(C_NONE, flag);
          lock.unlock();
        }
      }
      e.spawn('syncer', 0, sync());
      return inst;
    });
    const r = explore(sc, { bound: 0, budget: 5000 });
    expect(r.stats.budgetHit).toBe(0);
    const v = r.counterexample!.violations[0]!;
    expect(v.invariant).toBe('no-livelock');
    expect(v.message).toMatch(/\(spin loop\): cpu0\(syncer-\d+\) polling never\.set/);
  });
});
