// Issue 4, "Done when": the normal (irqfd + resamplefd) path end to end, set up only through ioctls the way QEMU
// sets up a vfio-platform IRQ on arm64 virt (src/scenario/vmm.ts).
import { describe, expect, it } from 'vitest';
import { KVM_RUN } from '../../src/abi/kvm.js';
import { GuestKernel } from '../../src/guest/guestKernel.js';
import { DefaultGuest } from '../../src/kvm/guest.js';
import { createHost, type Host } from '../../src/machine.js';
import {
  createQemuVm,
  kvmIrqfd,
  openVfioDevice,
  type QemuVm,
  signalThread,
  wireIrqfd,
  writeEventfd,
} from '../../src/scenario/vmm.js';
import { costDefs } from '../../src/sim/costs.js';
import { resolveCosts } from '../../src/sim/profiles.js';

const DEV = 'fff51000.ethernet';
const INTID = 80;
const GSI = INTID - 32;

interface Rig {
  busy: boolean;
  host: Host;
  guest: GuestKernel;
  vm: QemuVm;
  irqIndexState: () => { signals: number; unmasks: number };
}

/** A 2-CPU host (X-Gene costs), the device's SPI routed to CPU 1, a 1-vCPU VM pinned on CPU 1, the IRQ wired. */
function rig(trigger: 'level' | 'edge', busy: boolean): Rig {
  const known = new Set(costDefs().map((d) => d.name));
  const host = createHost({
    cpus: 2,
    hz: 2.4e9,
    costs: resolveCosts('xgene', {}, (n) => known.has(n)).costs,
    devices: [{ name: DEV, iommuGroup: 7, irqs: [{ intid: INTID, trigger }] }],
  });
  host.irq.gic.distributor.setTargets(INTID, 1 << 1);
  const guest = new GuestKernel({
    engine: host.engine,
    gic: host.irq.gic,
    vcpus: 1,
    devices: [{ device: host.device(DEV), line: 0, intid: INTID, handlerCycles: 1000 }],
    workload: busy ? { stepCycles: 200 } : undefined,
  });
  host.kvm.guestFactory = guest;
  const p = host.process();
  const vm = createQemuVm(p, { vcpus: 1, nrIrqs: 256 });
  const h = openVfioDevice(p, 7, DEV);
  wireIrqfd(p, vm.vm, h.device, 0, GSI, trigger === 'level');
  p.thread('CPU 0/KVM', 1).ioctlAsync(vm.vcpus[0]!, KVM_RUN, 0);
  host.engine.runUntil(() => guest.booted, 'guest boot');
  const vc = host.kvm.vms[0]!.vcpus[0]!;
  if (!busy) host.engine.runUntil(() => vc.wfiSleeping, 'the vCPU to sleep in WFI');
  const irq = host.devices[0]!.vdev.irqs[0]!;
  return { busy, host, guest, vm, irqIndexState: () => ({ signals: irq.signals, unmasks: irq.unmasks }) };
}

/** Raise the line n times, each after the previous one was fully handled (for level: the host line unmasked). */
function raiseHandled(r: Rig, n: number, level: boolean): void {
  const hw = r.host.device(DEV);
  const drv = r.guest.devices[0]!;
  const base = drv.handled;
  const unmasks0 = r.irqIndexState().unmasks;
  for (let i = 1; i <= n; i++) {
    hw.assert(0);
    r.host.engine.runUntil(
      () => drv.handled === base + i && (!level || r.irqIndexState().unmasks === unmasks0 + i),
      `delivery ${i}`,
    );
    // before the next raise: a running vCPU computes on; an idle one reaches kvm_vcpu_block again
    if (!r.busy) {
      const vc = r.host.kvm.vms[0]!.vcpus[0]!;
      r.host.engine.runUntil(() => vc.wfiSleeping, 'the vCPU to sleep in WFI');
    } else r.host.run(2000);
  }
}

function stats(r: Rig) {
  const vc = r.host.kvm.vms[0]!.vcpus[0]!;
  const resampler = r.host.kvm.vms[0]!.irqfds.resamplers[0];
  return {
    physicalIrqExits: vc.stat.irqExits - vc.stat.maintenanceExits,
    maintenanceExits: vc.stat.maintenanceExits,
    wfxExits: vc.stat.wfxExits,
    resamples: resampler?.acks ?? 0,
    ...r.irqIndexState(),
  };
}

describe('normal path, level IRQ with irqfd + resamplefd (GUIDE §1)', () => {
  it('vCPU running: 1000 raises → 1000 guest handler runs, and per delivery one IRQ exit, one maintenance exit, one resample, one unmask', () => {
    const r = rig('level', true);
    const s0 = stats(r);
    raiseHandled(r, 1000, true);
    const s1 = stats(r);
    expect(r.guest.devices[0]!.handled).toBe(1000);
    expect(r.guest.devices[0]!.noStatus).toBe(0);
    expect(s1.physicalIrqExits - s0.physicalIrqExits).toBe(1000);
    expect(s1.maintenanceExits - s0.maintenanceExits).toBe(1000);
    expect(s1.resamples - s0.resamples).toBe(1000);
    expect(s1.unmasks - s0.unmasks).toBe(1000);
    expect(s1.signals - s0.signals).toBe(1000); // trigger eventfd signals (VFIO automasked handler)
    expect(s1.wfxExits - s0.wfxExits).toBe(0);
    expect(r.host.checkInvariants()).toEqual([]);
  });

  it('vCPU idle: the physical IRQ arrives while the vCPU sleeps in WFI (host mode: no IRQ exit); one maintenance exit, resample and unmask each', () => {
    const r = rig('level', false);
    const s0 = stats(r);
    raiseHandled(r, 200, true);
    const s1 = stats(r);
    expect(r.guest.devices[0]!.handled).toBe(200);
    // kvm_vcpu_block has put the vCPU: the host takes the SPI on CPU 1 in its idle loop, so no kvm_exit for it;
    // the guest goes back to WFI after each IRQ: one WFx exit per delivery.
    expect(s1.physicalIrqExits - s0.physicalIrqExits).toBe(0);
    expect(s1.wfxExits - s0.wfxExits).toBe(200);
    expect(s1.maintenanceExits - s0.maintenanceExits).toBe(200);
    expect(s1.resamples - s0.resamples).toBe(200);
    expect(s1.unmasks - s0.unmasks).toBe(200);
  });
});

describe('normal path, edge IRQ with a plain irqfd', () => {
  it('no automask, no maintenance exit, no resample, no unmask', () => {
    const r = rig('edge', true);
    const s0 = stats(r);
    raiseHandled(r, 200, false);
    const s1 = stats(r);
    expect(r.guest.devices[0]!.handled).toBe(200);
    expect(s1.physicalIrqExits - s0.physicalIrqExits).toBe(200);
    expect(s1.maintenanceExits - s0.maintenanceExits).toBe(0);
    expect(s1.resamples).toBe(0);
    expect(s1.unmasks - s0.unmasks).toBe(0);
    expect(r.host.kvm.vms[0]!.irqfds.resamplers).toHaveLength(0);
  });
});

describe('more pending vIRQs than list registers', () => {
  it('six SPIs pending at one entry into 4 LRs are all delivered, highest priority first', () => {
    const host = createHost({ cpus: 2, nrLrs: 4 });
    const prios = [0xc0, 0x40, 0xa0, 0x20, 0x80, 0x60];
    const spis = prios.map((priority, i) => ({ intid: 40 + i, edge: true, priority }));
    const guest = new DefaultGuest({ spis });
    host.kvm.guestFactory = guest;
    const p = host.process();
    const vm = createQemuVm(p, { vcpus: 1 });
    const th = p.thread('CPU 0/KVM', 1);
    th.ioctlAsync(vm.vcpus[0]!, KVM_RUN, 0);
    host.engine.runUntil(() => guest.statsOf(0).booted, 'boot');
    host.settle(); // the vCPU sleeps in WFI
    // stop the vCPU (QEMU pause_all_vcpus), make six irqfds fire while it is out, then run it again
    signalThread(host, th);
    host.engine.runUntil(() => !th.busy, 'KVM_RUN to return');
    for (const s of spis) {
      const efd = p.eventfd(0);
      kvmIrqfd(p, vm.vm, efd, s.intid - 32);
      writeEventfd(p, efd, 1n);
    }
    th.ut.sigpending = false;
    th.ioctlAsync(vm.vcpus[0]!, KVM_RUN, 0);
    host.settle();
    const order = guest.statsOf(0).order;
    expect(order).toHaveLength(6);
    const byPrio = [...spis].sort((a, b) => a.priority - b.priority).map((s) => s.intid);
    expect(order).toEqual(byPrio);
  });
});
