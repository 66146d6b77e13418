import { describe, expect, it } from 'vitest';
import { bootRig, makeRig, type RigVgic } from '../../test/fixtures/guestRig.js';
import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_WFx } from '../hw/esr.js';
import { Gic } from '../hw/gic/gic.js';
import { LrState, makeLr } from '../hw/gic/listRegister.js';
import type { GuestFactory } from '../kvm/guest.js';
import { Vgic, type VgicCpu } from '../kvm/vgic/vgic.js';
import { VGIC_CONFIG_EDGE, VGIC_CONFIG_LEVEL } from '../kvm/vgic/vgicIrq.js';
import { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { guestWorkCost } from './deviceDriver.js';
import { createGuestKernel } from './guestKernel.js';

function realVgic(acks: number[]) {
  return (engine: Engine, _gic: Gic, nrVcpus = 2): RigVgic => {
    const vgic = new Vgic(engine, {
      hostIrqOps: {
        getIrqchipState: () => false,
        setIrqchipState: () => {},
        hwIntidOf: () => -1,
        observeActive: () => false,
      },
    });
    const vcpus: VgicCpu[] = [];
    for (let i = 0; i < nrVcpus; i++) vcpus.push(vgic.kvmVgicVcpuInit());
    vgic.kvmVgicSetNrIrqs(128);
    vgic.vgicInit();
    // the irqfd resampler: lower the virtual line on ack
    const onAck = (intid: number) => {
      acks.push(intid);
      vgic.kvmVgicInjectIrq(null, intid, false);
    };
    return { vgic, vcpus, onAck };
  };
}

const lines = [
  { intid: 40, trigger: 'level' as const },
  { intid: 41, trigger: 'edge' as const },
];

describe('guest kernel against the real vGIC distributor emulation', () => {
  it('boot programs the vGIC: level/edge, priority 0xa0, targets, enables, distributor on', () => {
    const acks: number[] = [];
    const r = makeRig({ vcpus: 2, lines, deviceOpts: [{}, { target: 1 }], makeVgic: realVgic(acks) });
    bootRig(r);
    const vgic = r.vgic!.vgic;
    expect(vgic.enabled).toBe(true);
    const i40 = vgic.vgicGetIrq(40)!;
    const i41 = vgic.vgicGetIrq(41)!;
    expect([i40.config, i40.priority, i40.targets, i40.enabled]).toEqual([VGIC_CONFIG_LEVEL, 0xa0, 1, true]);
    expect([i41.config, i41.priority, i41.targets, i41.enabled]).toEqual([VGIC_CONFIG_EDGE, 0xa0, 2, true]);
    expect(i41.targetVcpuIdx).toBe(1);
    expect(vgic.vgicGetIrq(42)!.enabled).toBe(false);
    // every distributor access was a DABT exit; vCPU 1 made none
    expect(r.exits.filter((e) => e.reason === ESR_ELx_EC_DABT_LOW)).toHaveLength(14);
    expect(r.gicd.every((a) => a.vcpu === 0)).toBe(true);
  });

  it('a level vIRQ injected as an irqfd would is handled, the device silenced, and the EOI maintenance acks it', () => {
    const acks: number[] = [];
    const r = makeRig({ vcpus: 2, lines, makeVgic: realVgic(acks) });
    bootRig(r);
    r.dev.assert(0);
    expect(r.vgic!.vgic.kvmVgicInjectIrq(null, 40, true)).toBe(1);
    r.engine.runUntil(() => acks.length === 1, 'ack notification');
    expect(acks).toEqual([40]);
    expect(r.dev.isAsserted(0)).toBe(false);
    expect(r.kernel.driver.kstatIrqsCpu(40, 0)).toBe(1);
    expect(r.kernel.vcpus[0]!.stats.irqs).toBe(1);
    const irq = r.vgic!.vgic.vgicGetIrq(40)!;
    expect([irq.lineLevel, irq.active, irq.pendingLatch]).toEqual([false, false, false]);
  });

  it('scheduled retargeting writes ITARGETSR at its time; the next injection lands on the new vCPU', () => {
    const acks: number[] = [];
    const r = makeRig({
      vcpus: 2,
      lines,
      makeVgic: realVgic(acks),
      kernel: { retarget: [{ at: 200_000, intid: 40, target: 1 }] },
    });
    r.engine.runUntil(() => r.kernel.stats().retargets === 1, 'retarget');
    const w = r.gicd.at(-1)!;
    expect(w).toMatchObject({ vcpu: 0, write: true, offset: 0x800 + 40, len: 1, data: 2 });
    expect(w.at).toBeGreaterThanOrEqual(200_000);
    expect(r.kernel.vcpus[0]!.stats.idlePolls).toBeGreaterThan(0); // vCPU 0 waited for the action running
    expect(r.kernel.vcpus[0]!.stats.wfis).toBe(0);
    expect(r.vgic!.vgic.vgicGetIrq(40)!.targetVcpuIdx).toBe(1);
    r.engine.runUntil(() => r.kernel.vcpus[0]!.stats.wfis === 1, 'vCPU 0 idles once the action is done');
    r.dev.assert(0);
    r.vgic!.vgic.kvmVgicInjectIrq(null, 40, true);
    r.engine.runUntil(() => acks.length === 1, 'ack');
    expect([0, 1].map((v) => r.kernel.driver.kstatIrqsCpu(40, v))).toEqual([0, 1]);
    expect(r.kernel.vcpus.map((v) => v.stats.irqs)).toEqual([0, 1]);
  });
});

describe('guest kernel: thread, workload, counters', () => {
  it('idle: one WFI trap after boot, and one more after each interrupt', () => {
    const r = makeRig();
    bootRig(r);
    expect(r.kernel.vcpus[0]!.stats.wfis).toBe(1);
    for (let n = 1; n <= 3; n++) {
      r.dev.assert(0);
      r.gic
        .vif(0)
        .writeLr(
          0,
          makeLr({ vintid: 40, hw: false, eoi: false, state: LrState.Pending, priority: 0xa0, group1: false }),
        );
      r.engine.runUntil(() => r.kernel.vcpus[0]!.stats.wfis === n + 1, `WFI ${n + 1}`);
    }
    r.engine.run(1000);
    const s = r.kernel.stats();
    expect(s.handledByIntid.get(40)).toBe(3);
    expect(s.irqsPerVcpu).toEqual([3]);
    expect(s.wfisPerVcpu).toEqual([4]);
    expect(r.exits.filter((e) => e.reason === ESR_ELx_EC_WFx)).toHaveLength(4);
    expect(s.spurious).toBe(0);
  });

  it('a CPU-bound workload runs its steps back to back, then the vCPU idles', () => {
    const r = makeRig({ kernel: { workload: { stepCycles: 5000, totalSteps: 20 } } });
    bootRig(r);
    const v = r.kernel.vcpus[0]!;
    expect(v.stats.computeSteps).toBe(20);
    expect(v.stats.wfis).toBe(1);
    expect(r.engine.now).toBeGreaterThanOrEqual(20 * 5000);
    expect(r.engine.costs.byName('guest_work_5000')).toBe(5000);
  });

  it('stepsPerWake: a burst of work after each wake-up, until totalSteps', () => {
    const r = makeRig({ kernel: { workload: { stepCycles: 100, stepsPerWake: 5, totalSteps: 12 } } });
    bootRig(r);
    const v = r.kernel.vcpus[0]!;
    expect([v.stats.computeSteps, v.stats.wfis]).toEqual([5, 1]);
    for (let n = 1; n <= 2; n++) {
      r.dev.assert(0);
      r.gic
        .vif(0)
        .writeLr(
          0,
          makeLr({ vintid: 40, hw: false, eoi: false, state: LrState.Pending, priority: 0xa0, group1: false }),
        );
      r.engine.runUntil(() => v.stats.wfis === n + 1, 'WFI');
    }
    expect(v.stats.computeSteps).toBe(12);
  });

  it('createGuestCpu hands the engine the two guest tasks; options are validated', () => {
    const engine = new Engine({ cpus: 1 });
    const gic = new Gic({ nrCpus: 1, nrIrqs: 64 });
    const k = createGuestKernel({ engine, gic, vcpus: 2 });
    const host = engine.spawn('vcpu0', 0, null);
    const g = k.createGuestCpu(0, host);
    expect(g.thread.kind).toBe('guest');
    expect(g.irqTask.kind).toBe('guest-irq');
    expect(k.vcpus[0]!.guestCpu).toBe(g);
    expect(() => k.createGuestCpu(0, host)).toThrow(ModelError);
    expect(() => k.scheduleRetarget({ at: 0, intid: 40, target: 2 })).toThrow(ModelError);
    expect(() => createGuestKernel({ engine, gic, vcpus: 9 })).toThrow(ModelError);
    expect(() => guestWorkCost(1.5)).toThrow(ModelError);
    expect(() => createGuestKernel({ engine, gic, vcpus: 1, workload: { stepCycles: 10, stepsPerWake: 0 } })).toThrow(
      ModelError,
    );
  });

  it('plugs into KVM as its GuestFactory: createGuest(env) hands out vCPU env.vcpu.idx once', () => {
    const engine = new Engine({ cpus: 1 });
    const gic = new Gic({ nrCpus: 1, nrIrqs: 64 });
    const k = createGuestKernel({ engine, gic, vcpus: 2 });
    const factory: GuestFactory = k; // the structural contract with src/kvm/guest.ts
    expect(factory).toBe(k);
    const env = { vcpu: { idx: 1 }, distBase: () => 0x08000000 };
    const gens = k.createGuest(env);
    expect(gens.thread).toBe(k.vcpus[1]!.thread);
    expect(gens.irqVector).toBe(k.vcpus[1]!.irqVector);
    expect(() => k.createGuest(env)).toThrow(ModelError);
    expect(() => k.createGuest({ vcpu: { idx: 0 }, distBase: () => 0x2c001000 })).toThrow(/GICD is at 0x2c001000/);
    expect(() => k.createGuest({ vcpu: { idx: 2 } })).toThrow(ModelError);
  });

  it('retarget actions run in time order per vCPU, whatever order they were given in', () => {
    const r = makeRig({
      vcpus: 2,
      lines,
      kernel: {
        retarget: [
          { at: 300_000, intid: 41, target: 0 },
          { at: 100_000, intid: 40, target: 1 },
        ],
      },
    });
    r.engine.runUntil(() => r.kernel.stats().retargets === 2, 'retargets');
    const writes = r.gicd.filter((a) => a.offset >= 0x800 && a.offset < 0xc00).slice(-2);
    expect(writes.map((a) => [a.offset - 0x800, a.data])).toEqual([
      [40, 2],
      [41, 1],
    ]);
    expect(writes[0]!.at).toBeGreaterThanOrEqual(100_000);
    expect(writes[1]!.at).toBeGreaterThanOrEqual(300_000);
  });
});
