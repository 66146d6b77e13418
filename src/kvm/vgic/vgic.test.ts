import { describe, expect, it } from 'vitest';
import {
  guestConfig,
  guestEnable,
  guestPriority,
  HOST_IRQ_BASE,
  makeHarness,
} from '../../../test/fixtures/vgicHarness.js';
import { decodeLr, LrState } from '../../hw/gic/listRegister.js';
import {
  GIC_DIST_TARGET,
  GICH_HCR_EN,
  GICH_HCR_UIE,
  GICH_MISR_EOI,
  GICH_MISR_U,
  MAINTENANCE_PPI,
  SPURIOUS_INTID,
} from '../../hw/gic/regs.js';
import { Engine } from '../../sim/engine.js';
import { ModelError } from '../../sim/errors.js';
import { Vgic } from './vgic.js';
import { VGIC_CONFIG_EDGE, VGIC_CONFIG_LEVEL } from './vgicIrq.js';
import { vgicMmioWrite } from './vgicMmioV2.js';

const EINVAL = -22;
const EBUSY = -16;
const EAGAIN = -11;
const EEXIST = -17;

describe('vGIC: level SPI, software (HW=0) path', () => {
  it('inject → flush LR pending+EOI → guest EOI → EOI maintenance → fold notifies ack and retires the vIRQ', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    guestConfig(v!, 40, false);
    guestEnable(v!, 40);
    h.kicks.length = 0;

    expect(h.vgic.kvmVgicInjectIrq(null, 40, true)).toBe(1);
    expect(h.kicks).toEqual([0]);
    expect(v!.irqPendingRequest).toBe(true);
    expect(h.vgic.kvmVgicVcpuPendingIrq(v!)).toBe(true);

    h.vgic.kvmVgicFlushHwstate(v!);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 40, hw: false, eoi: true, state: LrState.Pending });
    expect(vif.readHcr()).toBe(GICH_HCR_EN);
    expect(vif.virqLine).toBe(true);

    expect(vif.readIar()).toBe(40);
    vif.writeEoir(40);
    expect(vif.readEisr(0)).toBe(1);
    expect(vif.readMisr() & GICH_MISR_EOI).toBe(GICH_MISR_EOI);
    expect(vif.maintenanceLine).toBe(true);
    expect(h.gic.distributor.isPending(MAINTENANCE_PPI, 0)).toBe(true);

    h.sync(v!);
    expect(h.acks).toEqual([40]);
    const irq = h.vgic.vgicGetIrq(40)!;
    expect(irq.lineLevel).toBe(false); // lowered by the resampler's ack
    expect(irq.pendingLatch).toBe(false);
    expect(irq.active).toBe(false);
    expect(irq.vcpu).toBe(null);
    expect(v!.apCount).toBe(0);
    expect(vif.maintenanceLine).toBe(false);
    expect(vif.readLr(0)).toBe(0);
  });

  it('a level line still high after the ack notification is presented again on the next entry', () => {
    const h = makeHarness({ resampler: false });
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    guestConfig(v!, 40, false);
    guestEnable(v!, 40);
    h.vgic.kvmVgicInjectIrq(null, 40, true);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(vif.readIar()).toBe(40);
    vif.writeEoir(40);
    h.sync(v!);
    expect(h.acks).toEqual([40]);
    expect(v!.apCount).toBe(1);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(decodeLr(vif.readLr(0)).state).toBe(LrState.Pending);
  });
});

describe('vGIC: edge SPI', () => {
  it('two edges before the flush coalesce into one LR; no EOI bit, no maintenance, no ack', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    guestEnable(v!, 41); // SPIs start edge-triggered
    h.kicks.length = 0;
    expect(h.vgic.kvmVgicInjectIrq(null, 41, true)).toBe(1);
    expect(h.vgic.kvmVgicInjectIrq(null, 41, true)).toBe(0); // already listed: not queued again, but kicked
    expect(h.kicks).toEqual([0, 0]);
    expect(h.vgic.kvmVgicInjectIrq(null, 41, false)).toBe(0); // a falling edge is ignored
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(v!.usedLrs).toBe(1);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 41, eoi: false, state: LrState.Pending });
    expect(h.vgic.vgicGetIrq(41)!.pendingLatch).toBe(false); // consumed by the LR
    expect(vif.readIar()).toBe(41);
    vif.writeEoir(41);
    expect(vif.readIar()).toBe(SPURIOUS_INTID);
    expect(vif.readMisr()).toBe(0);
    h.sync(v!);
    expect(h.acks).toEqual([]);
    expect(v!.apCount).toBe(0);
  });

  it('an edge arriving while the first is in an LR is delivered on the next entry', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    guestEnable(v!, 41);
    h.vgic.kvmVgicInjectIrq(null, 41, true);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(h.vgic.kvmVgicInjectIrq(null, 41, true)).toBe(0);
    expect(vif.readIar()).toBe(41);
    vif.writeEoir(41);
    h.sync(v!);
    expect(v!.apCount).toBe(1);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(vif.readIar()).toBe(41);
    vif.writeEoir(41);
    h.sync(v!);
    expect(v!.apCount).toBe(0);
  });
});

describe('vGIC: more pending vIRQs than list registers', () => {
  it('5 vIRQs, 4 LRs: the 4 best priorities first, UIE armed by vgic_set_underflow, underflow maintenance, refill after fold', () => {
    const h = makeHarness({ nrLrs: 4 });
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    const prio = [0x50, 0x40, 0x30, 0x20, 0x10];
    for (let i = 0; i < 5; i++) {
      guestPriority(v!, 48 + i, prio[i]!);
      guestEnable(v!, 48 + i);
      expect(h.vgic.kvmVgicInjectIrq(null, 48 + i, true)).toBe(1);
    }
    h.vgic.kvmVgicFlushHwstate(v!);
    expect([0, 1, 2, 3].map((i) => decodeLr(vif.readLr(i)).vintid)).toEqual([52, 51, 50, 49]);
    // Linux 6.1 arms only UIE (vgic_v2_set_underflow); NPIE/LRENPIE came with the 2025 maintenance rework
    expect(vif.readHcr()).toBe(GICH_HCR_EN | GICH_HCR_UIE);
    expect(h.vgic.vgicGetIrq(48)!.onLr).toBe(false);

    const seen: number[] = [];
    for (let k = 0; k < 3; k++) {
      const id = vif.readIar();
      seen.push(id);
      vif.writeEoir(id);
    }
    expect(vif.readMisr() & GICH_MISR_U).toBe(GICH_MISR_U); // one valid LR left: underflow
    expect(vif.maintenanceLine).toBe(true);

    h.sync(v!);
    expect(v!.apCount).toBe(2);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(v!.usedLrs).toBe(2);
    expect(vif.readHcr()).toBe(GICH_HCR_EN); // vgic_v2_fold_lr_state dropped UIE; everything fits now
    for (let k = 0; k < 2; k++) {
      const id = vif.readIar();
      seen.push(id);
      vif.writeEoir(id);
    }
    expect(seen).toEqual([52, 51, 50, 49, 48]);
    h.sync(v!);
    expect(v!.apCount).toBe(0);
  });

  it('vgic_irq_cmp (6.1): an active vIRQ keeps its LR ahead of a higher-priority pending one, which waits for the EOI', () => {
    const h = makeHarness({ nrLrs: 1 });
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    guestConfig(v!, 40, false); // A: level, low priority
    guestPriority(v!, 40, 0x80);
    guestEnable(v!, 40);
    guestPriority(v!, 41, 0x40); // B: edge, higher priority
    guestEnable(v!, 41);
    h.vgic.kvmVgicInjectIrq(null, 40, true);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(vif.readIar()).toBe(40); // A active in the guest
    h.vgic.kvmVgicInjectIrq(null, 41, true); // B arrives: the kick makes the vCPU exit
    h.sync(v!);
    expect(h.vgic.vgicGetIrq(40)!.active).toBe(true);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 40, state: LrState.Active }); // active first
    expect(vif.readHcr()).toBe(GICH_HCR_EN | GICH_HCR_UIE); // B is left out: underflow armed
    expect(vif.readIar()).toBe(SPURIOUS_INTID); // nothing pending in the LRs
    vif.writeEoir(40); // A's EOI: EOI maintenance (level) and underflow
    expect(vif.readMisr() & GICH_MISR_EOI).toBe(GICH_MISR_EOI);
    h.sync(v!);
    expect(h.acks).toEqual([40]);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 41, state: LrState.Pending });
    expect(vif.readIar()).toBe(41);
  });

  it('sorts the ap-list as 6.1 vgic_irq_cmp: active, then enabled+pending by priority, stable among equals', () => {
    const h = makeHarness({ nrLrs: 2 });
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    const prio: Record<number, number> = { 60: 0x40, 61: 0x20, 62: 0x80, 63: 0x40 };
    for (const id of [60, 61, 62, 63]) {
      guestPriority(v!, id, prio[id]!);
      guestEnable(v!, id);
    }
    h.vgic.kvmVgicInjectIrq(null, 62, true);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(vif.readIar()).toBe(62); // the lowest priority is active
    for (const id of [60, 63, 61]) h.vgic.kvmVgicInjectIrq(null, id, true);
    h.sync(v!);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect([0, 1].map((i) => decodeLr(vif.readLr(i)).vintid)).toEqual([62, 61]);
    expect(v!.apList.slice(0, 4).map((x) => x!.intid)).toEqual([62, 61, 60, 63]); // 60 before 63: stable
  });
});

describe('vGIC: HW-mapped (forwarded) level SPI', () => {
  function hwSetup() {
    const h = makeHarness();
    const [v] = h.vcpus;
    const dist = h.gic.distributor;
    dist.setConfig(40, 'level');
    dist.setTargets(40, 1);
    dist.enable(40);
    dist.setCtlr(1);
    guestConfig(v!, 64, false);
    guestEnable(v!, 64);
    expect(h.vgic.kvmVgicMapPhysIrq(v!, HOST_IRQ_BASE + 40, 64)).toBe(0);
    expect(h.vgic.kvmVgicGetMap(v!, 64)).toBe(40);
    // the device asserts; the host acknowledges (EOImode 1: priority drop only, the INTID stays active)
    dist.setLine(40, true);
    expect(dist.acknowledge(0)).toBe(40);
    expect(dist.isActive(40)).toBe(true);
    expect(h.vgic.kvmVgicInjectIrq(null, 64, true)).toBe(1);
    return { h, v: v!, dist, vif: h.gic.vif(0) };
  }

  it('flush writes HW=1 with pINTID; guest EOI deactivates the physical INTID; fold sees it inactive, no ack', () => {
    const { h, v, dist, vif } = hwSetup();
    h.vgic.kvmVgicFlushHwstate(v);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 64, hw: true, pintid: 40, state: LrState.Pending });
    expect(h.vgic.vgicGetIrq(64)!.lineLevel).toBe(false); // lowered so the next rising edge can be taken
    expect(vif.readIar()).toBe(64);
    dist.setLine(40, false); // the guest driver silences the device
    vif.writeEoir(64);
    expect(dist.isActive(40)).toBe(false);
    expect(vif.maintenanceLine).toBe(false);
    expect(vif.readMisr()).toBe(0);
    h.sync(v);
    expect(h.acks).toEqual([]);
    expect(h.vgic.vgicGetIrq(64)!.active).toBe(false);
    expect(v.apCount).toBe(0);
    expect(h.physCalls).toEqual([]); // nothing needed the physical state
  });

  it('a line still asserted at the guest EOI makes the physical INTID pending again on the host', () => {
    const { h, v, dist, vif } = hwSetup();
    h.vgic.kvmVgicFlushHwstate(v);
    expect(vif.readIar()).toBe(64);
    vif.writeEoir(64);
    expect(dist.isActive(40)).toBe(false);
    expect(dist.highestPending(0)).toBe(40);
  });

  it('an LR that comes back pending resamples the line and drops the physical active state if it fell', () => {
    const { h, v, dist } = hwSetup();
    h.vgic.kvmVgicFlushHwstate(v);
    dist.setLine(40, false); // the device deasserted before the guest took the vIRQ
    h.sync(v);
    expect(h.physCalls).toEqual(['get PENDING 40', 'set ACTIVE 40 false']);
    expect(dist.isActive(40)).toBe(false);
    expect(h.vgic.vgicGetIrq(64)!.lineLevel).toBe(false);
    expect(v.apCount).toBe(0);
  });

  it('unmap clears the mapping; the next flush writes a software LR', () => {
    const { h, v, vif } = hwSetup();
    expect(h.vgic.kvmVgicUnmapPhysIrq(v, 64)).toBe(0);
    expect(h.vgic.kvmVgicGetMap(v, 64)).toBe(-1);
    h.vgic.kvmVgicFlushHwstate(v);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 64, hw: false, eoi: true });
  });
});

describe('vGIC: routing, WFI and migration', () => {
  it('kvmVgicVcpuPendingIrq needs the distributor enabled and a priority above the guest PMR', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    guestEnable(v!, 45);
    guestPriority(v!, 45, 0xf8);
    h.vgic.kvmVgicInjectIrq(null, 45, true);
    expect(h.vgic.kvmVgicVcpuPendingIrq(v!)).toBe(false); // 0xf8 is not below PMR 0xf8
    guestPriority(v!, 45, 0xa0);
    expect(h.vgic.kvmVgicVcpuPendingIrq(v!)).toBe(true);
    vgicMmioWrite(v!, 0, 4, 0);
    expect(h.vgic.kvmVgicVcpuPendingIrq(v!)).toBe(false);
  });

  it('a disabled vIRQ is not queued; enabling it queues it', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    expect(h.vgic.kvmVgicInjectIrq(null, 46, true)).toBe(0);
    expect(v!.apCount).toBe(0);
    guestEnable(v!, 46);
    expect(v!.apCount).toBe(1);
  });

  it('retargeting a listed SPI moves it to the new vCPU at the next sync, and kicks it', () => {
    const h = makeHarness({ vcpus: 2 });
    const [v0, v1] = h.vcpus;
    guestEnable(v0!, 50);
    h.vgic.kvmVgicInjectIrq(null, 50, true);
    expect(v0!.apCount).toBe(1);
    vgicMmioWrite(v0!, GIC_DIST_TARGET + 50, 1, 0b10);
    h.kicks.length = 0;
    h.vgic.kvmVgicFlushHwstate(v0!);
    expect(v0!.usedLrs).toBe(0); // the oracle says vCPU 1
    h.sync(v0!);
    expect(v0!.apCount).toBe(0);
    expect(v1!.apCount).toBe(1);
    expect(h.vgic.vgicGetIrq(50)!.vcpu).toBe(v1);
    expect(h.kicks).toEqual([1]);
    h.vgic.kvmVgicFlushHwstate(v1!);
    expect(h.gic.vif(1).readIar()).toBe(50);
  });

  it('SGIs from two sources are presented one at a time, the LR asking for EOI maintenance', () => {
    const h = makeHarness({ vcpus: 2 });
    const [v0, v1] = h.vcpus;
    vgicMmioWrite(v0!, 0xf00, 4, (0b10 << 16) | 3); // vCPU0 → SGI 3 to vCPU 1
    vgicMmioWrite(v1!, 0xf00, 4, (2 << 24) | 3); // vCPU1 → SGI 3 to itself
    const sgi = v1!.privateIrqs[3]!;
    expect(sgi.source).toBe(0b11);
    h.vgic.kvmVgicFlushHwstate(v1!);
    const vif = h.gic.vif(1);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 3, cpuid: 0, eoi: true, state: LrState.Pending });
    expect(sgi.source).toBe(0b10);
    expect(sgi.pendingLatch).toBe(true);
    expect(vif.readIar()).toBe(3); // IAR carries CPUID 0
    vif.writeEoir(3);
    h.sync(v1!);
    h.vgic.kvmVgicFlushHwstate(v1!);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 3, cpuid: 1, eoi: false });
    expect(vif.readIar()).toBe(3 | (1 << 10));
  });
});

describe('vGIC: errors', () => {
  it('inject: -EINVAL for a private INTID without vCPU and for an INTID past nr_spis', () => {
    const h = makeHarness({ nrIrqs: 64 });
    expect(h.vgic.nrSpis).toBe(32);
    expect(h.vgic.kvmVgicInjectIrq(null, 5, true)).toBe(EINVAL);
    expect(h.vgic.kvmVgicInjectIrq(null, 64, true)).toBe(EINVAL);
    expect(h.vgic.kvmVgicInjectIrq(3, 20, true)).toBe(EINVAL); // no such vCPU
    expect(h.vgic.kvmVgicInjectIrq(null, 63, true)).toBe(0); // valid but disabled
  });

  it('NR_IRQS: -EINVAL outside 64..1023 or not a multiple of 32; -EBUSY once set or initialised', () => {
    const vgic = new Vgic(new Engine({ cpus: 1 }), { hostIrqOps: nullOps });
    vgic.kvmVgicVcpuInit();
    expect(vgic.kvmVgicSetNrIrqs(32)).toBe(EINVAL);
    expect(vgic.kvmVgicSetNrIrqs(100)).toBe(EINVAL);
    expect(vgic.kvmVgicSetNrIrqs(1056)).toBe(EINVAL);
    // vgic_set_common_attr: val > VGIC_MAX_RESERVED (1023) — 1024 is refused, whatever the comment above it says
    expect(vgic.kvmVgicSetNrIrqs(1024)).toBe(EINVAL);
    expect(vgic.kvmVgicSetNrIrqs(992)).toBe(0);
    expect(vgic.kvmVgicSetNrIrqs(128)).toBe(EBUSY);
    expect(vgic.vgicInit()).toBe(0);
    expect(vgic.nrSpis).toBe(960);
    expect(() => vgic.kvmVgicVcpuInit()).toThrow(ModelError);
  });

  it('lazy init on first injection defaults to 224 SPIs', () => {
    const vgic = new Vgic(new Engine({ cpus: 1 }), { hostIrqOps: nullOps });
    vgic.kvmVgicVcpuInit();
    expect(vgic.kvmVgicSetOwner(vgic.vcpu(0), 40, 'x')).toBe(EAGAIN);
    expect(vgic.kvmVgicUnmapPhysIrq(vgic.vcpu(0), 40)).toBe(EAGAIN);
    expect(vgic.kvmVgicInjectIrq(null, 40, true)).toBe(0);
    expect(vgic.initialized).toBe(true);
    expect(vgic.nrSpis).toBe(224);
    const irq = vgic.vgicGetIrq(255)!;
    expect(irq.config).toBe(VGIC_CONFIG_EDGE);
    expect(vgic.vcpu(0).privateIrqs[20]!.config).toBe(VGIC_CONFIG_LEVEL);
    expect(vgic.vcpu(0).privateIrqs[2]!.enabled).toBe(true);
  });

  it('owner: -EINVAL for an SGI, -EEXIST for a second owner; injections by others are ignored', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    guestEnable(v!, 40);
    const a = { name: 'a' };
    expect(h.vgic.kvmVgicSetOwner(v!, 3, a)).toBe(EINVAL);
    expect(h.vgic.kvmVgicSetOwner(v!, 40, a)).toBe(0);
    expect(h.vgic.kvmVgicSetOwner(v!, 40, a)).toBe(0);
    expect(h.vgic.kvmVgicSetOwner(v!, 40, { name: 'b' })).toBe(EEXIST);
    expect(h.vgic.kvmVgicInjectIrq(null, 40, true)).toBe(0); // userspace (owner null) is not the owner
    expect(v!.apCount).toBe(0);
    expect(h.vgic.kvmVgicInjectIrq(null, 40, true, a)).toBe(1);
  });

  it('kvm_vgic_inject_irq into an owned HW vIRQ (irqfwd): a non-owner rising level is re-posted at the GIC (as vgic_its_trigger_msi does), a falling one ignored, the owner injects', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    const dist = h.gic.distributor;
    guestConfig(v!, 64, false);
    guestEnable(v!, 64);
    const fwd = { name: 'kvm-vfio' };
    expect(h.vgic.kvmVgicMapPhysIrq(v!, HOST_IRQ_BASE + 40, 64)).toBe(0);
    expect(h.vgic.kvmVgicSetOwner(v!, 64, fwd)).toBe(0);
    expect(h.vgic.kvmVgicInjectIrq(null, 64, true)).toBe(0); // an irqfd or KVM_IRQ_LINE
    expect(h.physCalls).toEqual(['set PENDING 40 true']);
    expect(dist.isPending(40)).toBe(true);
    const irq = h.vgic.vgicGetIrq(64)!;
    expect(irq.lineLevel).toBe(false);
    expect(v!.apCount).toBe(0);
    expect(h.vgic.kvmVgicInjectIrq(null, 64, false)).toBe(0);
    expect(h.physCalls.length).toBe(1);
    expect(h.vgic.kvmVgicInjectIrq(null, 64, true, fwd)).toBe(1); // the owner, from the host handler
    expect(irq.lineLevel).toBe(true);
    h.vgic.kvmVgicReleaseOwner(v!, 64, { name: 'other' });
    expect(irq.owner).toBe(fwd);
    h.vgic.kvmVgicReleaseOwner(v!, 64, fwd);
    expect(irq.owner).toBe(null);
  });

  it('a HW=1 LR loaded while its physical INTID is inactive is counted (invariant hw-lr-names-active-intid)', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    const dist = h.gic.distributor;
    guestEnable(v!, 64);
    expect(h.vgic.kvmVgicMapPhysIrq(v!, HOST_IRQ_BASE + 40, 64)).toBe(0);
    expect(h.vgic.kvmVgicInjectIrq(null, 64, true)).toBe(1); // unowned: a software edge, INTID 40 never taken
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(h.vgic.hwLrInactive).toBe(1);
    expect(h.vgic.hwLrInactiveFirst).toBe('vcpu0 LR0 vINTID 64 → inactive INTID 40');
    h.sync(v!);
    dist.setActive(40, true);
    h.vgic.kvmVgicFlushHwstate(v!); // the edge came back pending: loaded again, INTID 40 active now
    expect(v!.usedLrs).toBe(1);
    expect(h.vgic.hwLrInactive).toBe(1); // not counted again
  });

  it('map: -EINVAL for a host IRQ without descriptor; ModelError (BUG_ON) for an unknown vINTID', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    expect(h.vgic.kvmVgicMapPhysIrq(v!, 5, 40)).toBe(EINVAL);
    expect(h.vgic.kvmVgicGetMap(v!, 40)).toBe(-1);
    expect(() => h.vgic.kvmVgicMapPhysIrq(v!, HOST_IRQ_BASE + 40, 900)).toThrow(ModelError);
  });

  it('flush or sync of a vCPU that is not loaded is a model error', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    h.vgic.kvmVgicPut(v!);
    expect(() => h.vgic.kvmVgicFlushHwstate(v!)).toThrow(ModelError);
    expect(() => h.sync(v!)).toThrow(ModelError);
  });
});

describe('vGIC: hot path allocation', () => {
  it('reuses the same ap-list array across inject/flush/fold cycles', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    guestConfig(v!, 40, false);
    guestEnable(v!, 40);
    const list = v!.apList;
    for (let i = 0; i < 100; i++) {
      h.vgic.kvmVgicInjectIrq(null, 40, true);
      h.vgic.kvmVgicFlushHwstate(v!);
      vif.writeEoir(vif.readIar());
      h.sync(v!);
    }
    expect(v!.apList).toBe(list);
    expect(h.acks.length).toBe(100);
    expect(v!.flushes).toBe(100);
  });
});

const nullOps = {
  getIrqchipState: () => false,
  setIrqchipState: () => {},
  hwIntidOf: () => -1,
  observeActive: () => false,
};
