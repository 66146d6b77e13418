// The vITS device's ABI (KVM_DEV_TYPE_ARM_VGIC_ITS): every errno of vgic-its.c vgic_its_create,
// vgic_its_{set,get,has}_attr, vgic_its_ctrl, vgic_its_attr_regs_access, vgic_its_has_attr_regs and the uaccess
// writers (vgic_mmio_uaccess_write_its_iidr, _creadr), plus vgic-kvm-device.c vgic_check_iorange for the base.
import { describe, expect, it } from 'vitest';
import { ITS_BASE, ItsProgrammer, itsVm } from '../../test/fixtures/itsSetup.js';
import {
  createDevice,
  createVm,
  errnoOf,
  getAttr,
  hasAttr,
  setAttr,
  setup,
  u64Buf,
} from '../../test/fixtures/kvmSetup.js';
import {
  KVM_CAP_MSI_DEVID,
  KVM_CHECK_EXTENSION,
  KVM_DEV_ARM_ITS_CTRL_RESET,
  KVM_DEV_ARM_ITS_RESTORE_TABLES,
  KVM_DEV_ARM_ITS_SAVE_TABLES,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_TYPE_ARM_VGIC_ITS,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_VGIC_ITS_ADDR_TYPE,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
} from '../abi/kvm.js';
import { GITS_BASER, GITS_CBASER, GITS_CREADR, GITS_CTLR, GITS_IIDR, GITS_TYPER } from '../hw/gicv3/its.js';

const ADDR = KVM_DEV_ARM_VGIC_GRP_ADDR;
const CTRL = KVM_DEV_ARM_VGIC_GRP_CTRL;
const REGS = KVM_DEV_ARM_VGIC_GRP_ITS_REGS;

describe('KVM_CREATE_DEVICE(ARM_VGIC_ITS) (vgic_its_create)', () => {
  it('needs the model’s in-kernel vGIC first (ENODEV: see vgicItsDevice.ts); then sets has_its and msis_require_devid', () => {
    const s = setup({ gic: 'v3' });
    const vm = createVm(s);
    expect(errnoOf(() => createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_ITS))).toBe('ENODEV');
    expect(s.p.ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MSI_DEVID)).toBe(0);
    createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V3);
    createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_ITS);
    expect(s.p.ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MSI_DEVID)).toBe(1);
    // arm64 kvm_vm_ioctl_check_extension: KVM_CAP_MSI_DEVID on /dev/kvm is -EINVAL
    expect(errnoOf(() => s.p.ioctl(s.kvmFd, KVM_CHECK_EXTENSION, KVM_CAP_MSI_DEVID))).toBe('EINVAL');
  });

  it('a GICv2 host registers no ITS device (ENODEV from kvm_ioctl_create_device)', () => {
    const s = setup();
    const vm = createVm(s);
    expect(errnoOf(() => createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_ITS))).toBe('ENODEV');
  });

  it('the tables’ initial BASER values carry the ABI’s Type, Entry_Size (8 bytes) and 64 KiB pages (INITIAL_BASER_VALUE, vgic_its_commit_v0)', () => {
    const { s, itsFd } = itsVm(1);
    const out = s.p.mem.alloc(8);
    getAttr(s.p, itsFd, REGS, GITS_BASER, out);
    expect(s.p.mem.readU64(out)).toBe((1n << 56n) | (7n << 48n) | (3n << 59n) | (1n << 10n) | (2n << 8n));
    getAttr(s.p, itsFd, REGS, GITS_BASER + 8, out);
    expect(s.p.mem.readU64(out) >> 56n).toBe(4n | (3n << 3n)); // Type collection, InnerCache RaWb above it
  });
});

describe('KVM_DEV_ARM_VGIC_GRP_ADDR (vgic_its_set_attr, vgic_check_iorange, vgic_its_get_attr)', () => {
  it('ENODEV for an address type other than KVM_VGIC_ITS_ADDR_TYPE, set or get', () => {
    const { s, itsFd } = itsVm(1);
    expect(errnoOf(() => setAttr(s.p, itsFd, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(s.p, 0x1_0000n)))).toBe('ENODEV');
    expect(errnoOf(() => getAttr(s.p, itsFd, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(s.p, 0n)))).toBe('ENODEV');
  });

  it('EFAULT reading the address; EEXIST when set twice; EINVAL not 64 KiB aligned; E2BIG beyond the IPA space', () => {
    const { s, itsFd, kvmVm } = itsVm(1, { setBase: false });
    const p = s.p;
    expect(errnoOf(() => setAttr(p, itsFd, ADDR, KVM_VGIC_ITS_ADDR_TYPE, 0x10))).toBe('EFAULT');
    expect(errnoOf(() => setAttr(p, itsFd, ADDR, KVM_VGIC_ITS_ADDR_TYPE, u64Buf(p, 0x0808_1000n)))).toBe('EINVAL');
    const beyond = (1n << BigInt(kvmVm.ipaBits)) - 0x1_0000n; // the 128 KiB frame would end past the IPA space
    expect(errnoOf(() => setAttr(p, itsFd, ADDR, KVM_VGIC_ITS_ADDR_TYPE, u64Buf(p, beyond)))).toBe('E2BIG');
    expect(setAttr(p, itsFd, ADDR, KVM_VGIC_ITS_ADDR_TYPE, u64Buf(p, BigInt(ITS_BASE)))).toBe(0);
    expect(errnoOf(() => setAttr(p, itsFd, ADDR, KVM_VGIC_ITS_ADDR_TYPE, u64Buf(p, 0x0900_0000n)))).toBe('EEXIST');
    const out = u64Buf(p, 0n);
    getAttr(p, itsFd, ADDR, KVM_VGIC_ITS_ADDR_TYPE, out);
    expect(p.mem.readU64(out)).toBe(BigInt(ITS_BASE));
  });
});

describe('KVM_DEV_ARM_VGIC_GRP_CTRL (vgic_its_ctrl)', () => {
  it('INIT does nothing; an unknown control attribute returns 0 too (no default in the switch); has_attr knows four', () => {
    const { s, itsFd } = itsVm(1);
    expect(setAttr(s.p, itsFd, CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0)).toBe(0);
    expect(setAttr(s.p, itsFd, CTRL, 99, 0)).toBe(0);
    for (const a of [
      KVM_DEV_ARM_VGIC_CTRL_INIT,
      KVM_DEV_ARM_ITS_CTRL_RESET,
      KVM_DEV_ARM_ITS_SAVE_TABLES,
      KVM_DEV_ARM_ITS_RESTORE_TABLES,
    ]) {
      expect(hasAttr(s.p, itsFd, CTRL, a)).toBe(0);
    }
    expect(errnoOf(() => hasAttr(s.p, itsFd, CTRL, 3))).toBe('ENXIO');
    expect(errnoOf(() => hasAttr(s.p, itsFd, ADDR, 0))).toBe('ENXIO');
    expect(errnoOf(() => hasAttr(s.p, itsFd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0))).toBe('ENXIO');
    expect(errnoOf(() => setAttr(s.p, itsFd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 0))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(s.p, itsFd, CTRL, 0, 0))).toBe('ENXIO');
  });

  it('RESET (vgic_its_reset): tables invalid with their ABI fields kept, queue empty, disabled, mappings gone', () => {
    const v = itsVm(1);
    const g = new ItsProgrammer(v);
    g.standard();
    g.mapti(0, 0, 8192, 0);
    expect(setAttr(v.s.p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_CTRL_RESET, 0)).toBe(0);
    const its = v.its;
    expect([
      its.enabled,
      its.cbaser,
      its.creadr,
      its.cwriter,
      its.deviceList.length,
      its.collectionList.length,
    ]).toEqual([false, 0n, 0, 0, 0, 0]);
    expect(its.baserDeviceTable >> 63n).toBe(0n);
    expect((its.baserDeviceTable >> 48n) & 0x1fn).toBe(7n);
    expect(v.vgic.vgicGetIrq(8192)).toBeNull();
  });

  it('EBUSY while a vCPU is in KVM_RUN (lock_all_vcpus)', () => {
    const v = itsVm(1);
    v.kvmVm.vcpus[0]!.inRun = true;
    expect(errnoOf(() => setAttr(v.s.p, v.itsFd, CTRL, KVM_DEV_ARM_ITS_CTRL_RESET, 0))).toBe('EBUSY');
    expect(errnoOf(() => getAttr(v.s.p, v.itsFd, REGS, GITS_CTLR, u64Buf(v.s.p, 0n)))).toBe('EBUSY');
    v.kvmVm.vcpus[0]!.inRun = false;
    expect(v.kvmVm.lock.owner).toBeNull();
  });
});

describe('KVM_DEV_ARM_VGIC_GRP_ITS_REGS (vgic_its_attr_regs_access, vgic_its_has_attr_regs)', () => {
  it('EINVAL misaligned (4 bytes below GITS_TYPER and from GITS_PIDR4, else 8) before anything else', () => {
    const { s, itsFd } = itsVm(1, { setBase: false });
    expect(errnoOf(() => getAttr(s.p, itsFd, REGS, 2, u64Buf(s.p, 0n)))).toBe('EINVAL');
    expect(errnoOf(() => getAttr(s.p, itsFd, REGS, GITS_TYPER + 4, u64Buf(s.p, 0n)))).toBe('EINVAL');
    expect(errnoOf(() => hasAttr(s.p, itsFd, REGS, GITS_CBASER + 4))).toBe('EINVAL');
    expect(hasAttr(s.p, itsFd, REGS, 0xffe8)).toBe(0);
  });

  it('ENXIO before the base is set, and for an offset with no register; has_attr: ENXIO for no register', () => {
    const v = itsVm(1, { setBase: false });
    const p = v.s.p;
    expect(errnoOf(() => getAttr(p, v.itsFd, REGS, GITS_CTLR, u64Buf(p, 0n)))).toBe('ENXIO');
    setAttr(p, v.itsFd, ADDR, KVM_VGIC_ITS_ADDR_TYPE, u64Buf(p, BigInt(ITS_BASE)));
    expect(errnoOf(() => getAttr(p, v.itsFd, REGS, 0x40, u64Buf(p, 0n)))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, v.itsFd, REGS, 0x1_0040, u64Buf(p, 0n)))).toBe('ENXIO'); // GITS_TRANSLATER
    expect(errnoOf(() => hasAttr(p, v.itsFd, REGS, 0x40))).toBe('ENXIO');
    expect(errnoOf(() => setAttr(p, v.itsFd, REGS, GITS_CTLR, 0x10))).toBe('EFAULT'); // get_user first
  });

  it('GITS_TYPER: PLPIS, 16 DeviceID and EventID bits, 8-byte ITEs; GITS_IIDR: KVM’s, revision 0; CTLR: quiescent', () => {
    const { s, itsFd } = itsVm(1);
    const out = u64Buf(s.p, 0n);
    getAttr(s.p, itsFd, REGS, GITS_TYPER, out);
    expect(s.p.mem.readU64(out)).toBe(0x1ef71n);
    getAttr(s.p, itsFd, REGS, GITS_IIDR, out);
    expect(s.p.mem.readU64(out)).toBe(0x4b00_043bn);
    getAttr(s.p, itsFd, REGS, GITS_CTLR, out);
    expect(s.p.mem.readU64(out)).toBe(0x8000_0000n);
  });

  it('GITS_IIDR write picks the ABI revision: only 0 exists (EINVAL for 1)', () => {
    const { s, itsFd } = itsVm(1);
    expect(setAttr(s.p, itsFd, REGS, GITS_IIDR, u64Buf(s.p, 0n))).toBe(0);
    expect(errnoOf(() => setAttr(s.p, itsFd, REGS, GITS_IIDR, u64Buf(s.p, 1n << 12n)))).toBe('EINVAL');
  });

  it('GITS_CREADR write: EINVAL outside the queue, EBUSY while enabled; the guest cannot write it', () => {
    const v = itsVm(1);
    const p = v.s.p;
    const g = new ItsProgrammer(v);
    setAttr(p, v.itsFd, REGS, GITS_CBASER, u64Buf(p, 0x4002_0000n | (1n << 63n))); // one 4 KiB page
    expect(errnoOf(() => setAttr(p, v.itsFd, REGS, GITS_CREADR, u64Buf(p, 0x1000n)))).toBe('EINVAL');
    expect(setAttr(p, v.itsFd, REGS, GITS_CREADR, u64Buf(p, 0x40n))).toBe(0);
    expect(v.its.creadr).toBe(0x40);
    g.write(GITS_CREADR, 0x80);
    expect(v.its.creadr).toBe(0x40);
    g.standard();
    expect(errnoOf(() => setAttr(p, v.itsFd, REGS, GITS_CREADR, u64Buf(p, 0n)))).toBe('EBUSY');
  });

  it('GITS_CBASER is sanitised (vgic_sanitise_its_cbaser) and read-only while enabled', () => {
    const v = itsVm(1);
    const p = v.s.p;
    setAttr(p, v.itsFd, REGS, GITS_CBASER, u64Buf(p, 0x4002_3000n | (1n << 63n) | 3n));
    const out = u64Buf(p, 0n);
    getAttr(p, v.itsFd, REGS, GITS_CBASER, out);
    // vgic_sanitise_its_cbaser: address bits [15:12] cleared, an inner non-cacheable queue made RaWb ([61:59] = 3)
    expect(p.mem.readU64(out)).toBe(0x4002_0000n | (1n << 63n) | (3n << 59n) | 3n);
    new ItsProgrammer(v).standard();
    setAttr(p, v.itsFd, REGS, GITS_CBASER, u64Buf(p, 0n));
    expect(v.its.cbaser >> 63n).toBe(1n);
  });
});
