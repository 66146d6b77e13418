// The GICv3 backend (vgic-v3.c, hyp/vgic-v3-sr.c) driven by the generic vGIC against the real ICH_*/ICV_* hardware.
import { describe, expect, it } from 'vitest';
import { makeHarness } from '../../../test/fixtures/vgicHarness.js';
import { HOST_IRQ_BASE, makeV3Harness } from '../../../test/fixtures/vgicV3Harness.js';
import { decodeLr, LrState } from '../../hw/gicv3/listRegister.js';
import { ICH_HCR_EN, ICH_HCR_UIE, ICH_MISR_EOI, ICH_MISR_U, MAINTENANCE_PPI } from '../../hw/gicv3/regs.js';
import { ModelError } from '../../sim/errors.js';
import { type LrTraceFields, Vgic } from './vgic.js';
import { vgicV3ListRegisters } from './vgicObserve.js';

const EBUSY = -16;

describe('vGIC-v3 backend: software (HW=0) list registers', () => {
  it('vgic_v3_populate_lr: a level SPI gets Pending|EOI|Group1 and its 8-bit priority; ICV_IAR1/EOIR1 → EISR → MISR.EOI → fold notifies the ack', () => {
    const h = makeV3Harness();
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    h.configure(40, { level: true, priority: 0xa8 });
    expect(h.vgic.kvmVgicInjectIrq(null, 40, true)).toBe(1);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(decodeLr(vif.readLr(0))).toEqual({
      vintid: 40,
      hw: false,
      eoi: true,
      state: LrState.Pending,
      priority: 0xa8,
      group1: true,
    });
    expect(vif.readHcr()).toBe(ICH_HCR_EN);
    expect(vif.virqLine).toBe(true);
    expect(vif.readIar1()).toBe(40);
    vif.writeEoir1(40);
    expect(vif.readEisr()).toBe(1);
    expect(vif.readMisr() & ICH_MISR_EOI).toBe(ICH_MISR_EOI);
    expect(vif.maintenanceLine).toBe(true);
    expect(h.gic.distributor.isPending(MAINTENANCE_PPI, 0)).toBe(true);
    h.sync(v!);
    expect(h.acks).toEqual([40]); // lr_signals_eoi_mi → kvm_notify_acked_irq(gsi 8)
    const irq = h.vgic.vgicGetIrq(40)!;
    expect(irq.active || irq.pendingLatch || irq.lineLevel).toBe(false);
    expect(v!.apCount).toBe(0);
    // __vgic_v3_save_state: ICH_HCR_EL2 without En (maintenance dropped), the used LR zeroed
    expect(vif.readHcr() & ICH_HCR_EN).toBe(0);
    expect(vif.maintenanceLine).toBe(false);
    expect(vif.readLr(0)).toBe(0n);
  });

  it('an edge SPI: Pending with no EOI bit, its latch consumed by the LR; acked but not EOId it folds back active', () => {
    const h = makeV3Harness();
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    h.configure(41, {});
    h.vgic.kvmVgicInjectIrq(null, 41, true);
    h.vgic.kvmVgicFlushHwstate(v!);
    const irq = h.vgic.vgicGetIrq(41)!;
    expect(irq.pendingLatch).toBe(false);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ vintid: 41, eoi: false, state: LrState.Pending });
    expect(vif.readIar1()).toBe(41);
    h.sync(v!);
    expect(irq.active).toBe(true);
    expect(h.acks).toEqual([]);
    // re-asserted while active: the next LR is pending+active (allowed for an unmapped edge)
    h.vgic.kvmVgicInjectIrq(null, 41, true);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(decodeLr(vif.readLr(0)).state).toBe(LrState.PendingActive);
    expect(vgicV3ListRegisters(h.vgic, 0)).toMatchObject([{ index: 0, vintid: 41, state: LrState.PendingActive }]);
  });

  it('vgic_v3_set_underflow: 3 pending edges on 2 LRs arm ICH_HCR_EL2.UIE; MISR.U once ≤ 1 LR is valid; the fold drops UIE and the refill takes the third', () => {
    const h = makeV3Harness({ nrLrs: 2 });
    const [v] = h.vcpus;
    const vif = h.gic.vif(0);
    for (const i of [40, 41, 42]) {
      h.configure(i, { priority: 0x80 + (i - 40) * 8 });
      h.vgic.kvmVgicInjectIrq(null, i, true);
    }
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(vif.readHcr()).toBe(ICH_HCR_EN | ICH_HCR_UIE);
    expect(vif.readMisr() & ICH_MISR_U).toBe(0);
    expect(vif.readIar1()).toBe(40);
    vif.writeEoir1(40);
    expect(vif.readMisr() & ICH_MISR_U).toBe(ICH_MISR_U);
    expect(vif.maintenanceLine).toBe(true);
    h.sync(v!);
    expect(v!.vgicHcr & ICH_HCR_UIE).toBe(0);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect([decodeLr(vif.readLr(0)).vintid, decodeLr(vif.readLr(1)).vintid]).toEqual([41, 42]);
    expect(vif.readHcr()).toBe(ICH_HCR_EN);
  });
});

describe('vGIC-v3 backend: forwarded (HW=1) list registers', () => {
  /** SPI 48 mapped to physical INTID 48, asserted and acknowledged by the host (which leaves it active). */
  function forwarded(eoiMode: boolean) {
    const h = makeV3Harness({ eoiMode });
    const [v] = h.vcpus;
    const dist = h.gic.distributor;
    h.configure(48, { level: true });
    expect(h.vgic.kvmVgicMapPhysIrq(v!, HOST_IRQ_BASE + 48, 48)).toBe(0);
    dist.setLine(48, true);
    dist.setActive(48, true); // the host took it (ICC_IAR1) and, in EOImode 1, only dropped its priority
    expect(h.vgic.kvmVgicInjectIrq(null, 48, true)).toBe(1);
    h.vgic.kvmVgicFlushHwstate(v!);
    return { h, v: v!, vif: h.gic.vif(0), dist };
  }

  it('HW with pINTID, no EOI bit, not pending+active; the guest EOIR1 (EOImode 0) deactivates the physical INTID, with no maintenance', () => {
    const { h, v, vif, dist } = forwarded(false);
    expect(decodeLr(vif.readLr(0))).toEqual({
      vintid: 48,
      pintid: 48,
      hw: true,
      eoi: false,
      state: LrState.Pending,
      priority: 0xa0,
      group1: true,
    });
    expect(h.vgic.hwLrInactive).toBe(0);
    expect(vif.readIar1()).toBe(48);
    dist.setLine(48, false);
    vif.writeEoir1(48);
    expect(dist.isActive(48)).toBe(false);
    expect(vif.maintenanceLine).toBe(false);
    h.sync(v);
    expect(h.acks).toEqual([]);
    expect(h.vgic.vgicGetIrq(48)!.active).toBe(false);
  });

  it('gic_lr_write traces the ICH_LR fields themselves: vINTID and a 13-bit pINTID are not cut to GICH_LR widths', () => {
    const h = makeV3Harness({ nrEspis: 32 });
    const [v] = h.vcpus;
    const seen: LrTraceFields[] = [];
    h.vgic.traceLr = { lrWrite: (_vc, _lr, f) => seen.push({ ...f }), eoiMaintenance: () => {} };
    h.configure(48, { level: true });
    h.configure(49, { level: true });
    // a GICv3.1 host's Extended SPI 4100 (pINTID[44:32] holds it; GICH_LR's 10-bit field would give 4)
    expect(h.vgic.kvmVgicMapPhysIrq(v!, HOST_IRQ_BASE + 4100, 48)).toBe(0);
    expect(h.vgic.kvmVgicInjectIrq(null, 48, true)).toBe(1);
    expect(h.vgic.kvmVgicInjectIrq(null, 49, true)).toBe(1);
    h.vgic.kvmVgicFlushHwstate(v!);
    expect(seen).toEqual([
      { vintid: 48, pintid: 4100, hw: true, eoi: false, state: LrState.Pending },
      { vintid: 49, pintid: 0, hw: false, eoi: true, state: LrState.Pending },
    ]);
  });

  it('EOImode 1 guest: ICV_EOIR1 only drops the priority, ICV_DIR deactivates the LR and the physical INTID', () => {
    const { vif, dist } = forwarded(true);
    expect(vif.readIar1()).toBe(48);
    vif.writeEoir1(48);
    expect(dist.isActive(48)).toBe(true);
    expect(decodeLr(vif.readLr(0)).state).toBe(LrState.Active);
    vif.writeDir(48);
    expect(dist.isActive(48)).toBe(false);
    expect(decodeLr(vif.readLr(0)).state).toBe(LrState.Invalid);
  });

  it('an active HW vIRQ is listed active only: the pending state stays at the physical distributor', () => {
    const { h, v, vif } = forwarded(false);
    expect(vif.readIar1()).toBe(48);
    h.sync(v);
    h.vgic.kvmVgicInjectIrq(null, 48, true);
    h.vgic.kvmVgicFlushHwstate(v);
    expect(decodeLr(vif.readLr(0))).toMatchObject({ hw: true, state: LrState.Active });
  });
});

describe('vGIC-v3 backend: load/put, probe, version checks', () => {
  it('vgic_v3_put saves ICH_VMCR_EL2 and ICH_AP1R0_EL2; vgic_v3_load restores them on another PE', () => {
    const h = makeV3Harness({ vcpus: 2 });
    const [v] = h.vcpus;
    h.configure(40, { priority: 0x90 });
    h.vgic.kvmVgicInjectIrq(null, 40, true);
    h.vgic.kvmVgicFlushHwstate(v!);
    const vif0 = h.gic.vif(0);
    expect(vif0.readIar1()).toBe(40);
    h.sync(v!);
    h.vgic.kvmVgicPut(v!);
    expect(v!.vgicApr).toBe(1 << (0x90 >> 3));
    expect(v!.vgicVmcr >>> 24).toBe(0xf0); // VPMR
    h.vgic.kvmVgicPut(h.vcpus[1]!);
    const vif1 = h.gic.vif(1);
    h.vgic.kvmVgicLoad(v!, vif1);
    expect(vif1.readAp1r(0)).toBe(v!.vgicApr);
    expect(vif1.readVmcr()).toBe(v!.vgicVmcr);
    expect(vif1.readRpr()).toBe(0x90);
  });

  it('vgic_v3_probe: the number of LRs comes from ICH_VTR_EL2.ListRegs', () => {
    expect(makeV3Harness({ nrLrs: 3 }).vgic.nrLr).toBe(3);
  });

  it('kvm_vgic_vcpu_pending_irq reads the guest priority mask from the shadow ICH_VMCR_EL2.VPMR', () => {
    const h = makeV3Harness();
    const [v] = h.vcpus;
    h.configure(40, { priority: 0xf8 });
    h.vgic.kvmVgicInjectIrq(null, 40, true);
    expect(h.vgic.kvmVgicVcpuPendingIrq(v!)).toBe(false); // 0xf8 is not above PMR 0xf0
    h.vgic.vgicGetIrq(40)!.priority = 0xe0;
    expect(h.vgic.kvmVgicVcpuPendingIrq(v!)).toBe(true);
  });

  it('vgic_lazy_init: a vGIC-v3 does not initialise on injection (-EBUSY until KVM_DEV_ARM_VGIC_CTRL_INIT)', () => {
    const h = makeV3Harness();
    const fresh = new Vgic({ newOid: () => 0 }, { hostIrqOps: h.vgic.hostIrqOps, model: h.vgic.model });
    fresh.kvmVgicVcpuInit();
    expect(fresh.kvmVgicInjectIrq(null, 40, true)).toBe(EBUSY);
    expect(fresh.initialized).toBe(false);
  });

  it('vgic_init gives a GICv3 guest Group 1 interrupts (private and shared), no ITARGETSR', () => {
    const h = makeV3Harness({ vcpus: 2 });
    expect(h.vgic.vgicGetIrq(40)!.group).toBe(1);
    expect(h.vcpus[1]!.privateIrqs[27]!.group).toBe(1);
    expect(h.vcpus[1]!.privateIrqs[27]!.targets).toBe(0);
  });

  it('each backend refuses the other version’s virtual interface (ModelError)', () => {
    const v3 = makeV3Harness();
    const v2 = makeHarness();
    v3.vgic.kvmVgicPut(v3.vcpus[0]!);
    expect(() => v3.vgic.kvmVgicLoad(v3.vcpus[0]!, v2.gic.vif(0))).toThrow(ModelError);
    v2.vgic.kvmVgicPut(v2.vcpus[0]!);
    expect(() => v2.vgic.kvmVgicLoad(v2.vcpus[0]!, v3.gic.vif(0))).toThrow(/GICv2 virtual interface/);
  });
});
