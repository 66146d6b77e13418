import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KVM_IRQ_ROUTING_MSI } from '../abi/kvm.js';
import { type KvmKernelIrqRoutingEntry, kvmSetIrqRouting } from '../kvm/irqRouting.js';
import { Engine } from '../sim/engine.js';
import { stateHash } from '../sim/snapshot.js';
import { statisticsOf } from '../sim/statistics.js';
import { Execution } from './execution.js';
import { raceScenario } from './model.js';
import { msiRaceScenario } from './msiRace.js';
import { stateKey, untimedStateHash } from './stateKey.js';

/** Pick among the choosable agents by the next value of `picks` (then the lowest). */
function choose(ex: Execution, picks: readonly number[], i: number): number[] {
  const ch = ex.choosable();
  if (ch.length === 0) return [];
  return [ch[(picks[i] ?? 0) % ch.length]!, ...ch];
}

/** assign-race after `at` steps picked by `picks`. */
function reach(picks: readonly number[], at: number): Execution {
  const a = new Execution(raceScenario(), {});
  for (let i = 0; i < at; i++) {
    const [x, ...ch] = choose(a, picks, i);
    if (x === undefined) break;
    a.step(x, ch);
  }
  return a;
}

/**
 * `b` (a changed copy of `a`'s state) keys as `a` does now and after every step of the same continuation (picked by
 * `picks` from step `at`), with the same choosable agents and footprints, and ends with the same verdict.
 */
function expectSameContinuation(a: Execution, b: Execution, picks: readonly number[], at: number): void {
  expect(stateKey(b, true)).toBe(stateKey(a, true));
  for (let i = at; ; i++) {
    const ca = a.choosable();
    expect(b.choosable()).toEqual(ca);
    if (ca.length === 0) break;
    const x = ca[(picks[i] ?? 0) % ca.length]!;
    expect(b.step(x, ca)).toEqual(a.step(x, ca));
    expect(stateKey(b, true)).toBe(stateKey(a, true));
  }
  expect(b.finish()).toEqual(a.finish());
}

/**
 * What the key leaves out: clocks (now, every CPU's readyAt, the heap's time keys), the heap's layout, the step
 * counters and the object ids' names. Shift them all in a copy of a reachable state, re-lay the heap, rename the ids,
 * and run the same continuation on both.
 */
function perturb(ex: Execution, shift: number): void {
  const e = ex.engine;
  const agents: number[] = [];
  for (let i = 0; i < e.heap.size; i++) agents.push(e.heap.at(i));
  e.now += shift;
  e.steps += 7;
  for (const c of e.cpus) {
    c.readyAt += shift + c.id * 13;
    c.steps += 3;
  }
  for (const a of agents) e.heap.remove(a);
  for (const a of agents.reverse()) e.heap.push(a, e.now + ((a * 31) % 5));
  // names are for reports only (Engine.oidName)
  const names = (e as unknown as { oidNames: string[] }).oidNames;
  for (let i = 0; i < names.length; i++) names[i] = `renamed ${i}`;
}

describe('stateKey: clocks, the heap layout, step counters and object-id names decide nothing', () => {
  it('a state with shifted clocks, a re-laid heap and other counts has the same choices, footprints, keys and verdict at every step of the same continuation', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(5), { minLength: 120, maxLength: 120 }),
        fc.nat(40),
        fc.integer({ min: 1, max: 1e9 }),
        (picks, at, shift) => {
          const a = reach(picks, at);
          const b = a.fork();
          perturb(b, shift);
          expectSameContinuation(a, b, picks, at);
        },
      ),
      { numRuns: 8, seed: 13 },
    );
  });
});

/**
 * Change every field the model declared a statistic (sim/statistics.ts) in the machine reachable from `ex` — each
 * listed field of a class, every field of an object that is statistics only: a number goes `by` down (below zero, so
 * a count some check compared would now fail it), a boolean flips, a typed array is filled with `by`.
 */
function scrambleStatistics(ex: Execution, by: number): number {
  const seen = new Set<object>();
  let changed = 0;
  const bump = (o: Record<string, unknown>, k: string): void => {
    const v = o[k];
    if (typeof v === 'number') o[k] = v - by;
    else if (typeof v === 'boolean') o[k] = !v;
    else if (v instanceof Uint32Array || v instanceof Int32Array) v.fill(by);
    else return;
    changed++;
  };
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v) || ArrayBuffer.isView(v)) return;
    seen.add(v);
    if (v instanceof Map) {
      for (const [k, x] of v) {
        walk(k);
        walk(x);
      }
      return;
    }
    if (v instanceof Set) {
      for (const x of v) walk(x);
      return;
    }
    const o = v as Record<string, unknown>;
    const proto = Object.getPrototypeOf(o) as object | null;
    const stats = proto === null ? undefined : statisticsOf(proto);
    if (stats === 'all') for (const k of Object.keys(o)) bump(o, k);
    else if (stats !== undefined) for (const k of stats) bump(o, k);
    for (const k of Object.keys(o)) walk(o[k]);
  };
  walk(ex.inst);
  return changed;
}

describe('stateKey: the fields the model declares statistics decide nothing', () => {
  it('a state whose statistics (kvm_vcpu_stat, vGIC flush/fold counts, VFIO unmasks, CPU exits) were all changed has the same choices, footprints, keys and verdict at every step of the same continuation', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(5), { minLength: 120, maxLength: 120 }), fc.nat(60), (picks, at) => {
        const a = reach(picks, at);
        const b = a.fork();
        expect(scrambleStatistics(b, 1000)).toBeGreaterThan(20);
        expectSameContinuation(a, b, picks, at);
      }),
      { numRuns: 8, seed: 29 },
    );
  });

  it('the state-key view is what leaves them out: the full fingerprint of the scrambled state differs', () => {
    const a = new Execution(raceScenario(), {});
    const b = a.fork();
    scrambleStatistics(b, 1);
    expect(stateHash(b.inst)).not.toBe(stateHash(a.inst));
    expect(stateKey(b, false)).toBe(stateKey(a, false));
  });
});

describe('untimedStateHash', () => {
  it('leaves out the clock, the CPUs’ ready times and the queue’s keys, not which agents are enabled', () => {
    const a = new Engine({ cpus: 2 });
    const b = new Engine({ cpus: 2 });
    b.now = 500;
    b.cpus[1]!.readyAt = 900;
    expect(stateHash(a)).not.toBe(stateHash(b));
    expect(untimedStateHash(a, a)).toBe(untimedStateHash(b, b));
    expect(b.now).toBe(500); // the machine itself is left as it was
    b.cpus[0]!.needResched = true;
    expect(untimedStateHash(a, a)).not.toBe(untimedStateHash(b, b));
  });
});

describe('stateKey: the vGIC-v4 host-call queue is state (vgicV4Ops.ts)', () => {
  it('two states that differ only in a queued op, or in whether a path is running the queue, have different keys; a copy carries both', () => {
    const a = new Execution(msiRaceScenario(), {});
    const vgicOf = (ex: Execution) => ex.inst.host.kvm.vms[0]!.vgic!;
    expect(vgicOf(a).v4Ops).toEqual([]);
    const b = a.fork();
    expect(stateKey(b, true)).toBe(stateKey(a, true));
    vgicOf(b).v4Ops.push({ kind: 'pending', hostIrq: 5, pending: true });
    expect(stateKey(b, true)).not.toBe(stateKey(a, true));
    const c = a.fork();
    vgicOf(c).v4Ops.push({ kind: 'pending', hostIrq: 5, pending: false }); // the same queue but for one member
    expect(stateKey(c, true)).not.toBe(stateKey(b, true));
    const d = a.fork();
    vgicOf(d).v4OpsRunning = true;
    expect(stateKey(d, true)).not.toBe(stateKey(a, true));
    const e = b.fork();
    expect(vgicOf(e).v4Ops).toEqual([{ kind: 'pending', hostIrq: 5, pending: true }]);
    expect(stateKey(e, true)).toBe(stateKey(b, true));
    vgicOf(e).v4Ops.length = 0; // the copy's queue is its own
    expect(vgicOf(b).v4Ops).toHaveLength(1);
    expect(stateKey(e, true)).toBe(stateKey(a, true));
  });
});

describe('stateKey: the GSI routing table, published immutable (kvm_set_irq_routing → rcu_assign_pointer)', () => {
  /** KVM_SET_GSI_ROUTING with the MSI entries of the table, the data of each plus `dataDelta`. */
  const reroute = (ex: Execution, dataDelta: number) => {
    const vm = ex.inst.host.kvm.vms[0]!;
    const entries = vm.irqRouting!.map.flat().map((e: KvmKernelIrqRoutingEntry) => {
      expect(e.type).toBe(KVM_IRQ_ROUTING_MSI);
      const m = e.msi!;
      const u = [m.addressLo, m.addressHi, m.data + dataDelta, m.devid];
      return { gsi: e.gsi, type: e.type, flags: m.flags, pad: 0, u0: u[0]!, u1: u[1]!, u2: u[2]!, u3: u[3]!, upad: [] };
    });
    kvmSetIrqRouting(vm, entries);
  };

  it('copies share the table; a new table of equal content keys equal, one with another MSI data keys different', () => {
    const a = new Execution(msiRaceScenario(), {});
    const tableOf = (ex: Execution) => ex.inst.host.kvm.vms[0]!.irqRouting;
    const b = a.fork();
    expect(tableOf(b)).toBe(tableOf(a));
    reroute(b, 0);
    expect(tableOf(b)).not.toBe(tableOf(a));
    expect(stateKey(b, true)).toBe(stateKey(a, true));
    const c = a.fork();
    reroute(c, 1);
    expect(stateKey(c, true)).not.toBe(stateKey(a, true));
    expect(tableOf(a)!.map.flat()[0]!.msi!.data + 1).toBe(tableOf(c)!.map.flat()[0]!.msi!.data);
  });
});
