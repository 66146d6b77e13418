// KVM_DEV_ARM_ITS_SAVE_TABLES / RESTORE_TABLES with ABI revision 0 (vgic-its.c vgic_its_save_tables_v0,
// vgic_its_restore_tables_v0; Documentation/virt/kvm/devices/arm-vgic-its.rst "ITS Table ABI REV0"): the DTE, ITE
// and CTE layouts in guest memory, a save → reset → restore round trip, and the restore's errnos.
import { describe, expect, it } from 'vitest';
import { COLL_TABLE, DEV_TABLE, ITT, ItsProgrammer, itsVm } from '../../../test/fixtures/itsSetup.js';
import { errnoOf, setAttr } from '../../../test/fixtures/kvmSetup.js';
import {
  KVM_DEV_ARM_ITS_CTRL_RESET,
  KVM_DEV_ARM_ITS_RESTORE_TABLES,
  KVM_DEV_ARM_ITS_SAVE_TABLES,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
} from '../../abi/kvm.js';
import { ModelError } from '../../sim/errors.js';
import { findCollection, findIte, findItsDevice } from './vgicIts.js';

const CTRL = KVM_DEV_ARM_VGIC_GRP_CTRL;
const ITT2 = ITT + 0x1000;

function mapped() {
  const v = itsVm(2);
  const g = new ItsProgrammer(v);
  g.standard(0); // collections 0 → vCPU 0, 1 → vCPU 1; device 0 with 4 EventID bits at ITT
  g.mapd(5, 2, ITT2);
  g.mapti(0, 3, 8300, 1);
  g.mapti(0, 1, 8200, 0);
  g.mapti(5, 0, 8192, 1);
  return { ...v, g };
}

function u64(v: ReturnType<typeof mapped>, gpa: number): bigint {
  const ram = v.kvmVm.guestMem.ram;
  return (BigInt(ram.readU32(gpa + 4)) << 32n) | BigInt(ram.readU32(gpa));
}

describe('KVM_DEV_ARM_ITS_SAVE_TABLES (vgic_its_save_tables_v0)', () => {
  it('writes DTEs at their DeviceID, ITEs at their EventID, CTEs packed and ended by an invalid one', () => {
    const v = mapped();
    expect(setAttr(v.s.p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES, 0)).toBe(0);
    // DTE: V | Next (5 - 0) << 49 | ITT_addr >> 8 << 5 | Size - 1
    expect(u64(v, DEV_TABLE)).toBe((1n << 63n) | (5n << 49n) | (BigInt(ITT >> 8) << 5n) | 3n);
    expect(u64(v, DEV_TABLE + 5 * 8)).toBe((1n << 63n) | (BigInt(ITT2 >> 8) << 5n) | 1n); // last: Next 0
    // ITEs of device 0, in EventID order: Next | pINTID << 16 | ICID
    expect(u64(v, ITT + 8)).toBe((2n << 48n) | (8200n << 16n) | 0n);
    expect(u64(v, ITT + 3 * 8)).toBe((8300n << 16n) | 1n);
    expect(u64(v, ITT2)).toBe((8192n << 16n) | 1n);
    // CTEs: V | RDBase (vCPU index) << 16 | ICID, then an invalid one
    expect(u64(v, COLL_TABLE)).toBe(1n << 63n);
    expect(u64(v, COLL_TABLE + 8)).toBe((1n << 63n) | (1n << 16n) | 1n);
    expect(u64(v, COLL_TABLE + 16)).toBe(0n);
  });

  it('reset, then restore: the same devices, ITEs (with their LPIs and targets) and collections', () => {
    const v = mapped();
    const p = v.s.p;
    setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES, 0);
    const [dev, coll] = [v.its.baserDeviceTable, v.its.baserCollTable];
    setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_CTRL_RESET, 0);
    expect(v.vgic.vgicGetIrq(8300)).toBeNull();
    // the VMM restores GITS_BASER<n> (valid again) before RESTORE_TABLES
    v.its.baserDeviceTable = dev;
    v.its.baserCollTable = coll;
    expect(setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES, 0)).toBe(0);
    expect(v.its.collectionList.map((c) => [c.collectionId, c.targetAddr])).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect([findItsDevice(v.its, 0)?.numEventidBits, findItsDevice(v.its, 5)?.ittAddr]).toEqual([4, ITT2]);
    const ite = findIte(v.its, 0, 3)!;
    expect([ite.irq?.intid, ite.irq?.targetVcpuIdx, ite.collection]).toEqual([8300, 1, findCollection(v.its, 1)]);
    expect(findIte(v.its, 5, 0)?.irq?.intid).toBe(8192);
    expect(findIte(v.its, 0, 1)?.irq?.targetVcpuIdx).toBe(0);
  });

  it('restore errors: an ITE naming an INTID below 8192 (EINVAL), a CTE past the vCPUs (EINVAL), a CTE already there (EEXIST)', () => {
    const v = mapped();
    const p = v.s.p;
    const ram = v.kvmVm.guestMem.ram;
    setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES, 0);
    expect(errnoOf(() => setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES, 0))).toBe('EEXIST');
    v.its.collectionList.length = 0;
    ram.writeU64(COLL_TABLE + 8, (1 << 16) | 1, 0x8000_0000 | 0); // RDBase... vCPU 1: fine
    ram.writeU64(COLL_TABLE + 16, (7 << 16) | 2, 0x8000_0000); // vCPU 7 does not exist
    expect(errnoOf(() => setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES, 0))).toBe('EINVAL');
    setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES, 0); // a clean image again
    setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_CTRL_RESET, 0);
    v.its.baserDeviceTable |= 1n << 63n;
    v.its.baserCollTable |= 1n << 63n;
    ram.writeU64(ITT2, (100 << 16) | 1, 0); // pINTID 100
    expect(errnoOf(() => setAttr(p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES, 0))).toBe('EINVAL');
    expect(findItsDevice(v.its, 5)).toBeNull(); // vgic_its_restore_dte freed the device whose ITT failed
  });

  it('an ITE whose collection MAPC V=0 removed is a NULL dereference in vgic_its_save_ite: a ModelError names it', () => {
    const v = mapped();
    v.g.mapc(1, 1, false);
    expect(() => setAttr(v.s.p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES, 0)).toThrow(ModelError);
  });
});
