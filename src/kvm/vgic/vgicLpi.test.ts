// vLPIs in the vGIC-v3: the redistributor's LPI registers (vgic-mmio-v3.c vgic_mmio_{read,write}_v3r_ctlr,
// _propbase, _pendbase, _invlpi, _invall, vgic_mmio_read_v3r_typer, vgic_mmio_read_v3_misc) and the LPIs' life
// (vgic-its.c vgic_add_lpi, update_lpi_config, its_sync_lpi_pending_table; vgic-v3.c vgic_v3_lpi_sync_pending_status;
// vgic.c vgic_flush_pending_lpis, vgic_put_irq).
import { describe, expect, it } from 'vitest';
import { ItsProgrammer, itsVm, PEND_TABLE, PROP_TABLE } from '../../../test/fixtures/itsSetup.js';
import { createDevice, createVm, setAttr, setup, u64Buf } from '../../../test/fixtures/kvmSetup.js';
import {
  KVM_CREATE_VCPU,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST,
} from '../../abi/kvm.js';
import { GICD_TYPER, GICR_CTLR, GICR_PENDBASER, GICR_PROPBASER, GICR_TYPER } from '../../hw/gicv3/regs.js';
import { findIte } from './vgicIts.js';
import { vgicV3DistRead, vgicV3RedistRead, vgicV3RedistWrite } from './vgicMmioV3.js';

const GICR_INVLPIR = 0xa0;
const GICR_INVALLR = 0xb0;

function ready(nrVcpus = 1) {
  const v = itsVm(nrVcpus);
  const g = new ItsProgrammer(v);
  g.standard();
  v.vgic.enabled = true;
  return { ...v, g };
}

describe('the LPI registers of the emulated redistributor and distributor', () => {
  it('without an ITS: no GICD_TYPER.LPIS (10 ID bits), no GICR_TYPER.PLPIS, EnableLPIs is WI (vgic_has_its)', () => {
    const s = setup({ gic: 'v3' });
    const vm = createVm(s);
    s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    const gic = createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V3);
    setAttr(s.p, gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(s.p, 0x0800_0000n));
    setAttr(s.p, gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, u64Buf(s.p, 0x080a_0000n));
    setAttr(s.p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
    const vc = s.kvm.vms[0]!.vgic!.vcpus[0]!;
    expect((vgicV3DistRead(vc, GICD_TYPER, 4)! >>> 17) & 0x7f).toBe(9 << 2); // IDbits 9, LPIS 0
    expect(vgicV3RedistRead(vc, GICR_TYPER, 4)! & 1).toBe(0);
    vgicV3RedistWrite(vc, GICR_CTLR, 4, 1);
    expect(vc.lpisEnabled).toBe(false);
  });

  it('with an ITS: GICD_TYPER.LPIS and 16 ID bits, GICR_TYPER.PLPIS; GICR_CTLR reads EnableLPIs | IR | CES (revision 3)', () => {
    const v = itsVm(1);
    const vc = v.vgic.vcpus[0]!;
    const typer = vgicV3DistRead(vc, GICD_TYPER, 4)!;
    expect([(typer >>> 19) & 0x1f, (typer >>> 17) & 1]).toEqual([15, 1]);
    expect(vgicV3RedistRead(vc, GICR_TYPER, 4)! & 1).toBe(1);
    expect(vgicV3RedistRead(vc, GICR_CTLR, 4)).toBe(6);
    new ItsProgrammer(v).enableLpis(0);
    expect(vgicV3RedistRead(vc, GICR_CTLR, 4)).toBe(7);
  });

  it('PROPBASER and PENDBASER are sanitised, and ignored once EnableLPIs is set; PENDBASER.PTZ reads as zero', () => {
    const v = itsVm(1);
    const vc = v.vgic.vcpus[0]!;
    vgicV3RedistWrite(vc, GICR_PROPBASER, 4, PROP_TABLE | 0x6f); // IDbits 15, RES0 bits [6:5] set
    // RES0 [6:5] cleared, the inner non-cacheable attribute written made RaWb ([9:7] = 3)
    expect(vgicV3RedistRead(vc, GICR_PROPBASER, 4)! & 0xfff).toBe(0x0f | (3 << 7));
    vgicV3RedistWrite(vc, GICR_PENDBASER + 4, 4, 1 << 30); // PTZ
    expect(vc.pendbaser >> 62n).toBe(1n);
    expect(vgicV3RedistRead(vc, GICR_PENDBASER + 4, 4)).toBe(0);
    vgicV3RedistWrite(vc, GICR_CTLR, 4, 1);
    vgicV3RedistWrite(vc, GICR_PROPBASER, 4, 0x5000_0000);
    vgicV3RedistWrite(vc, GICR_PENDBASER, 4, 0x5000_0000);
    expect(Number(v.vgic.propbaser & 0xffff_f000n)).toBe(PROP_TABLE);
    expect(Number(vc.pendbaser & 0xffff_0000n)).toBe(0);
  });
});

describe('LPIs and guest memory', () => {
  it('vgic_add_lpi reads the configuration byte and consumes the LPI’s pending bit from its target’s pending table', () => {
    const { its, vgic, g, kvmVm } = ready();
    const ram = kvmVm.guestMem.ram;
    g.config(8200, 0x83);
    ram.writeU8(PEND_TABLE + 8200 / 8, 0x01); // LPI 8200's bit
    g.mapti(0, 0, 8200, 0);
    const irq = findIte(its, 0, 0)!.irq!;
    expect([irq.priority, irq.enabled, irq.pendingLatch, irq.vcpu?.id]).toEqual([0x80, true, true, 0]);
    expect(ram.readU8(PEND_TABLE + 8200 / 8)).toBe(0);
    expect(vgic.kvmVgicVcpuPendingIrq(vgic.vcpus[0]!)).toBe(false); // the shadow ICH_VMCR's priority mask is 0
  });

  it('vgic_add_lpi of an LPI already mapped takes one more reference on it as it is: no configuration re-read', () => {
    const { its, g } = ready();
    g.config(8200, 0x83);
    g.mapti(0, 0, 8200, 0);
    g.config(8200, 0x40); // disabled, priority 0x40, no INV
    g.mapti(0, 1, 8200, 0); // UNPREDICTABLE double mapping: KVM shares the vgic_irq
    const irq = findIte(its, 0, 1)!.irq!;
    expect(irq).toBe(findIte(its, 0, 0)!.irq);
    expect([irq.refcount >= 2, irq.priority, irq.enabled]).toEqual([true, 0x80, true]);
  });

  it('EnableLPIs 0 → 1 loads the pending table (its_sync_lpi_pending_table), not with PTZ; 1 → 0 takes the LPIs off the ap-list', () => {
    const { its, vgic, g, kvmVm } = ready();
    const vc = vgic.vcpus[0]!;
    g.config(8192, 0xa3);
    g.mapti(0, 0, 8192, 0);
    const irq = findIte(its, 0, 0)!.irq!;
    g.int(0, 0);
    expect([vc.apCount, irq.refcount]).toEqual([1, 3]); // ITE, translation cache, ap-list
    vgicV3RedistWrite(vc, GICR_CTLR, 4, 0);
    expect([vc.apCount, irq.vcpu, irq.refcount]).toEqual([0, null, 1]);
    kvmVm.guestMem.ram.writeU8(PEND_TABLE + 1024, 0x01); // 8192 / 8
    irq.pendingLatch = false;
    vgicV3RedistWrite(vc, GICR_PENDBASER + 4, 4, 1 << 30); // PTZ: the table is zero, do not read it
    vgicV3RedistWrite(vc, GICR_CTLR, 4, 1);
    expect(irq.pendingLatch).toBe(false);
    vgicV3RedistWrite(vc, GICR_CTLR, 4, 0);
    vgicV3RedistWrite(vc, GICR_PENDBASER + 4, 4, 0);
    vgicV3RedistWrite(vc, GICR_CTLR, 4, 1);
    expect([irq.pendingLatch, vc.apCount]).toEqual([true, 1]);
  });

  it('GICR_INVLPIR re-reads one LPI’s byte, GICR_INVALLR every LPI of the vCPU; both ignored with LPIs disabled or in the high word', () => {
    const { vgic, g } = ready(2);
    g.mapti(0, 0, 8192, 0);
    g.mapti(0, 1, 8193, 0);
    g.mapti(0, 2, 8194, 1);
    for (const l of [8192, 8193, 8194]) g.config(l, 0x41);
    const [v0, v1] = vgic.vcpus as [(typeof vgic.vcpus)[0], (typeof vgic.vcpus)[0]];
    vgicV3RedistWrite(v0, GICR_INVLPIR + 4, 4, 8192);
    expect(vgic.vgicGetIrq(8192)!.enabled).toBe(false);
    vgicV3RedistWrite(v0, GICR_INVLPIR, 4, 8192);
    expect([vgic.vgicGetIrq(8192)!.enabled, vgic.vgicGetIrq(8193)!.enabled]).toEqual([true, false]);
    vgicV3RedistWrite(v0, GICR_INVALLR, 4, 0);
    expect([vgic.vgicGetIrq(8193)!.enabled, vgic.vgicGetIrq(8194)!.enabled]).toEqual([true, false]);
    vgicV3RedistWrite(v1, GICR_CTLR, 4, 0);
    vgicV3RedistWrite(v1, GICR_INVALLR, 4, 0);
    expect(vgic.vgicGetIrq(8194)!.enabled).toBe(false);
  });

  it('KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES (vgic_v3_save_pending_tables) writes each LPI’s pending latch into its target’s table', () => {
    const { vgic, g, gic, s: setupS, kvmVm } = ready(2);
    const ram = kvmVm.guestMem.ram;
    g.mapti(0, 0, 8192, 1);
    g.int(0, 0);
    setAttr(setupS.p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES, 0);
    expect(ram.readU8(PEND_TABLE + 0x1_0000 + 1024)).toBe(1);
    vgic.vgicGetIrq(8192)!.pendingLatch = false;
    setAttr(setupS.p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES, 0);
    expect(ram.readU8(PEND_TABLE + 0x1_0000 + 1024)).toBe(0);
  });
});
