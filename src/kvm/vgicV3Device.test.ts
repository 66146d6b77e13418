// The vGIC-v3 KVM device's ABI: every errno of vgic-kvm-device.c (vgic_v3_{set,get,has}_attr, kvm_vgic_addr,
// vgic_v3_parse_attr, vgic_v3_attr_regs_access), vgic-mmio-v3.c (vgic_v3_alloc_redist_region) and vgic-init.c
// (kvm_vgic_create, vgic_init) through raw ioctls, on a GICv3 host (where vgic_v3_probe registers the device).
import { describe, expect, it } from 'vitest';
import {
  createDevice,
  createVm,
  errnoOf,
  getAttr,
  hasAttr,
  type KvmSetup,
  setAttr,
  setup,
  u32Buf,
  u64Buf,
  vcpuInit,
} from '../../test/fixtures/kvmSetup.js';
import {
  KVM_ARM_IRQ_TYPE_SPI,
  KVM_CREATE_VCPU,
  KVM_DEV_ARM_ITS_SAVE_TABLES,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
  KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
  KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT,
  KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_IRQ_LINE,
  KVM_RUN,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  kvmArmIrqLineEncode,
  kvmDevArmVgicV3Attr,
  kvmIrqLevel,
  kvmVgicV3RdistRegionAttr,
  SYS_ICC_AP1R0_EL1,
  SYS_ICC_CTLR_EL1,
  SYS_ICC_IGRPEN1_EL1,
  SYS_ICC_PMR_EL1,
  SYS_ICC_SRE_EL1,
} from '../abi/kvm.js';
import { GICD_CTLR, GICD_IROUTER, GICD_ISENABLER, GICD_TYPER, GICR_SGI_BASE, GICR_TYPER } from '../hw/gicv3/regs.js';

const ADDR = KVM_DEV_ARM_VGIC_GRP_ADDR;
const v3Setup = (): KvmSetup => setup({ gic: 'v3' });

/** A VM with `n` vCPUs (ids 0..n-1) and a vGIC-v3 device. */
function vmWithGic(n: number, s = v3Setup()) {
  const vm = createVm(s);
  const vcpus: number[] = [];
  for (let i = 0; i < n; i++) vcpus.push(s.p.ioctl(vm, KVM_CREATE_VCPU, i));
  const gic = createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V3);
  const kvmVm = s.kvm.vms[s.kvm.vms.length - 1]!;
  return { s, p: s.p, vm, vcpus, gic, kvmVm, max: 1n << BigInt(kvmVm.ipaBits) };
}

const region = (count: number, base: number | bigint, index: number, flags = 0): bigint =>
  kvmVgicV3RdistRegionAttr(count, BigInt(base), flags, index);

describe('KVM_CREATE_DEVICE(ARM_VGIC_V3) (kvm_ioctl_create_device, kvm_vgic_create)', () => {
  it('ENODEV on a host whose KVM did not register it (a GICv2 host: vgic_v2_probe registers V2 only)', () => {
    const s = setup();
    const vm = createVm(s);
    expect(errnoOf(() => createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V3))).toBe('ENODEV');
    expect(createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2)).toBeGreaterThan(0);
  });

  it('one in-kernel vGIC per VM: a second V3 is EEXIST (irqchip_in_kernel); this GICv3 host offers no V2 (ENODEV)', () => {
    const { p, vm } = vmWithGic(1);
    expect(errnoOf(() => createDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V3))).toBe('EEXIST');
    expect(errnoOf(() => createDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V2))).toBe('ENODEV');
  });

  it('a GICv3 VM takes up to VGIC_V3_MAX_CPUS (512) vCPUs: a 9th vCPU is fine', () => {
    const { p, vm } = vmWithGic(8);
    expect(p.ioctl(vm, KVM_CREATE_VCPU, 8)).toBeGreaterThan(0);
  });

  it('KVM_CREATE_VCPU after vgic_init is EBUSY (kvm_arch_vcpu_precreate)', () => {
    const { p, vm, gic } = vmWithGic(1);
    setAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
    expect(errnoOf(() => p.ioctl(vm, KVM_CREATE_VCPU, 1))).toBe('EBUSY');
  });
});

describe('GRP_ADDR (kvm_vgic_addr, vgic_check_iorange, vgic_v3_alloc_redist_region)', () => {
  it('DIST: EINVAL not 64K aligned, E2BIG beyond the IPA space, EEXIST set twice, EFAULT unreadable; reads back', () => {
    const { p, gic, max } = vmWithGic(1);
    expect(errnoOf(() => setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(p, 0x1000n)))).toBe('EINVAL');
    expect(errnoOf(() => setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(p, max)))).toBe('E2BIG');
    expect(errnoOf(() => setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 0))).toBe('EFAULT');
    setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(p, 0x800_0000n));
    expect(errnoOf(() => setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(p, 0x900_0000n)))).toBe('EEXIST');
    const out = u64Buf(p, 0n);
    getAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, out);
    expect(p.mem.readU64(out)).toBe(0x800_0000n);
  });

  it('a GICv2 address type on a V3 device fails vgic_check_type (ENODEV, reported as ENXIO); has_attr too', () => {
    const { p, gic } = vmWithGic(1);
    expect(errnoOf(() => setAttr(p, gic, ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, u64Buf(p, 0n)))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, gic, ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, u64Buf(p, 0n)))).toBe('ENXIO');
    expect(errnoOf(() => hasAttr(p, gic, ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST))).toBe('ENXIO');
    expect(hasAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION)).toBe(0);
  });

  it('REDIST_REGION: EINVAL count 0 / flags / first index ≠ 0 / index not last+1 / overlap; E2BIG past the IPA space; ENOENT reading an absent index', () => {
    const { p, gic, max } = vmWithGic(2);
    const set = (v: bigint) => errnoOf(() => setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, u64Buf(p, v)));
    expect(set(region(0, 0x10_0000, 0))).toBe('EINVAL');
    expect(set(region(1, 0x10_0000, 0, 1))).toBe('EINVAL');
    expect(set(region(1, 0x10_0000, 1))).toBe('EINVAL');
    expect(set(region(2, 0x10_0000, 0))).toBe('ok');
    expect(set(region(1, 0x10_0000, 1))).toBe('EINVAL'); // overlaps region 0
    expect(set(region(1, 0x20_0000, 3))).toBe('EINVAL');
    expect(set(region(1, max, 1))).toBe('E2BIG');
    const read = (index: number) => {
      const a = u64Buf(p, BigInt(index));
      const e = errnoOf(() => getAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, a));
      return e === 'ok' ? p.mem.readU64(a) : e;
    };
    expect(read(0)).toBe(region(2, 0x10_0000, 0));
    expect(read(1)).toBe('ENOENT');
    expect(errnoOf(() => getAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, 0))).toBe('EFAULT');
  });

  it('legacy REDIST: EEXIST set twice, EINVAL mixed with REDIST_REGION, EINVAL over the distributor', () => {
    const a = vmWithGic(4);
    setAttr(a.p, a.gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(a.p, 0x10_0000n));
    // vgic_dist_overlap: a legacy region sized for the 4 online vCPUs
    expect(errnoOf(() => setAttr(a.p, a.gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, u64Buf(a.p, 0xc_0000n)))).toBe(
      'EINVAL',
    );
    setAttr(a.p, a.gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, u64Buf(a.p, 0x20_0000n));
    expect(errnoOf(() => setAttr(a.p, a.gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, u64Buf(a.p, 0x40_0000n)))).toBe(
      'EEXIST',
    );
    const out = u64Buf(a.p, 0n);
    getAttr(a.p, a.gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, out);
    expect(a.p.mem.readU64(out)).toBe(0x20_0000n);
    const b = vmWithGic(1);
    setAttr(b.p, b.gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, u64Buf(b.p, region(1, 0x20_0000, 0)));
    expect(errnoOf(() => setAttr(b.p, b.gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, u64Buf(b.p, 0x40_0000n)))).toBe(
      'EINVAL',
    );
  });
});

describe('NR_IRQS and CTRL (vgic_set_common_attr, vgic_init, vgic_v3_save_pending_tables)', () => {
  it('NR_IRQS: EINVAL < 64 / > 1023 / not a multiple of 32; EBUSY once set; reads back', () => {
    const { p, gic } = vmWithGic(1);
    const set = (n: number) => errnoOf(() => setAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, u32Buf(p, n)));
    expect(set(32)).toBe('EINVAL');
    expect(set(1024)).toBe('EINVAL');
    expect(set(100)).toBe('EINVAL');
    expect(set(128)).toBe('ok');
    expect(set(160)).toBe('EBUSY');
    const out = u32Buf(p, 0);
    getAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, out);
    expect(p.mem.readU32(out)).toBe(128);
  });

  it('CTRL: INIT twice is fine; SAVE_PENDING_TABLES is ENXIO before init, 0 after (no LPIs); the ITS save/restore attrs are ENXIO; get is ENXIO', () => {
    const { p, gic } = vmWithGic(1);
    const ctrl = (a: number) => errnoOf(() => setAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, a, 0));
    expect(ctrl(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)).toBe('ENXIO');
    expect(ctrl(KVM_DEV_ARM_VGIC_CTRL_INIT)).toBe('ok');
    expect(ctrl(KVM_DEV_ARM_VGIC_CTRL_INIT)).toBe('ok');
    expect(ctrl(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)).toBe('ok');
    expect(ctrl(KVM_DEV_ARM_ITS_SAVE_TABLES)).toBe('ENXIO');
    expect(hasAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)).toBe(0);
    expect(errnoOf(() => hasAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0))).toBe('ENXIO');
  });

  it('a GICv3 is never initialised lazily: KVM_IRQ_LINE before CTRL_INIT is EBUSY (vgic_lazy_init)', () => {
    const { p, vm } = vmWithGic(1);
    const irq = kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_SPI, vcpu: 0, num: 40 });
    const a = p.mem.allocBytes(kvmIrqLevel.encode({ irq, level: 1 }));
    expect(errnoOf(() => p.ioctl(vm, KVM_IRQ_LINE, a))).toBe('EBUSY');
  });

  it('an unknown group is ENXIO for set, get and has (CPU_REGS is GICv2 only)', () => {
    const { p, gic } = vmWithGic(1);
    expect(errnoOf(() => setAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, 0, u32Buf(p, 0)))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, 0, u32Buf(p, 0)))).toBe('ENXIO');
    expect(errnoOf(() => hasAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, 0))).toBe('ENXIO');
  });
});

describe('DIST_REGS / REDIST_REGS / CPU_SYSREGS / LEVEL_INFO (vgic_v3_attr_regs_access)', () => {
  function initialised() {
    const g = vmWithGic(2);
    setAttr(g.p, g.gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
    const get = (group: number, a: bigint) => {
      const out = u64Buf(g.p, 0n);
      const e = errnoOf(() => getAttr(g.p, g.gic, group, a, out));
      return e === 'ok'
        ? Number(group === KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS ? g.p.mem.readU64(out) : g.p.mem.readU32(out))
        : e;
    };
    const set = (group: number, a: bigint, v: number) =>
      errnoOf(() =>
        setAttr(
          g.p,
          g.gic,
          group,
          a,
          group === KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS ? u64Buf(g.p, BigInt(v)) : u32Buf(g.p, v),
        ),
      );
    return { ...g, get, set };
  }
  const D = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;
  const R = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS;
  const S = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
  const L = KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO;

  it('EINVAL: no vCPU has the affinity (vgic_v3_parse_attr); EBUSY before vgic_init; EFAULT copying', () => {
    const g = vmWithGic(1);
    expect(errnoOf(() => getAttr(g.p, g.gic, R, kvmDevArmVgicV3Attr(1, GICR_TYPER), u32Buf(g.p, 0)))).toBe('EINVAL');
    expect(errnoOf(() => getAttr(g.p, g.gic, R, kvmDevArmVgicV3Attr(0, GICR_TYPER), u32Buf(g.p, 0)))).toBe('EBUSY');
    expect(errnoOf(() => setAttr(g.p, g.gic, D, kvmDevArmVgicV3Attr(0, GICD_CTLR), 0))).toBe('EFAULT');
    expect(errnoOf(() => hasAttr(g.p, g.gic, R, kvmDevArmVgicV3Attr(7, GICR_TYPER)))).toBe('EINVAL');
  });

  it('DIST_REGS: GICD_CTLR (ARE|DS, EnableGrp1A), TYPER, IROUTER; ENXIO where no register is; has_attr', () => {
    const g = initialised();
    expect(g.get(D, kvmDevArmVgicV3Attr(0, GICD_CTLR))).toBe(0x50);
    expect(g.set(D, kvmDevArmVgicV3Attr(0, GICD_CTLR), 2)).toBe('ok');
    expect(g.get(D, kvmDevArmVgicV3Attr(0, GICD_CTLR))).toBe(0x52);
    expect(g.get(D, kvmDevArmVgicV3Attr(0, GICD_TYPER))).toBe(((256 >> 5) - 1) | (9 << 19));
    expect(g.set(D, kvmDevArmVgicV3Attr(0, GICD_IROUTER + 8 * 40), 1)).toBe('ok'); // SPI 40 → vCPU with Aff0 = 1
    expect(g.get(D, kvmDevArmVgicV3Attr(0, GICD_IROUTER + 8 * 40))).toBe(1);
    expect(g.kvmVm.vgic!.vgicGetIrq(40)!.targetVcpuIdx).toBe(1);
    expect(g.get(D, kvmDevArmVgicV3Attr(0, 0x800))).toBe('ENXIO'); // no ITARGETSR on a GICv3
    expect(g.get(D, kvmDevArmVgicV3Attr(0, GICD_ISENABLER + 32))).toBe('ENXIO'); // past nr_irqs (check_region)
    expect(hasAttr(g.p, g.gic, D, kvmDevArmVgicV3Attr(0, GICD_ISENABLER + 4))).toBe(0);
    expect(errnoOf(() => hasAttr(g.p, g.gic, D, kvmDevArmVgicV3Attr(0, GICD_CTLR + 2)))).toBe('ENXIO');
  });

  it('REDIST_REGS: GICR_TYPER of each vCPU; the SGI_base frame enables its private INTIDs', () => {
    const g = initialised();
    expect(g.get(R, kvmDevArmVgicV3Attr(1, GICR_TYPER))).toBe(0x100);
    expect(g.get(R, kvmDevArmVgicV3Attr(1, GICR_TYPER + 4))).toBe(1); // affinity
    expect(g.set(R, kvmDevArmVgicV3Attr(1, GICR_SGI_BASE + GICD_ISENABLER), 1 << 27)).toBe('ok');
    expect(g.kvmVm.vgic!.vcpus[1]!.privateIrqs[27]!.enabled).toBe(true);
    expect(g.kvmVm.vgic!.vcpus[0]!.privateIrqs[27]!.enabled).toBe(false);
    expect(g.get(R, kvmDevArmVgicV3Attr(1, 0x20))).toBe('ENXIO');
  });

  it('CPU_SYSREGS: ICC_PMR/IGRPEN1/CTLR/SRE/AP1R0 round trips; ENOENT unknown; EINVAL what the host cannot restore; has_attr ENXIO unknown', () => {
    const g = initialised();
    const a = (id: number) => kvmDevArmVgicV3Attr(1, id);
    expect(g.set(S, a(SYS_ICC_PMR_EL1), 0xf0)).toBe('ok');
    expect(g.get(S, a(SYS_ICC_PMR_EL1))).toBe(0xf0);
    expect(g.set(S, a(SYS_ICC_IGRPEN1_EL1), 1)).toBe('ok');
    expect(g.kvmVm.vgic!.vcpus[1]!.vgicVmcr).toBe(((0xf0 << 24) | 2) >>> 0);
    const ctlr = g.get(S, a(SYS_ICC_CTLR_EL1)) as number;
    expect(ctlr).toBe((4 << 8) | (1 << 15)); // PRIbits 5, IDbits 16, A3V
    expect(g.set(S, a(SYS_ICC_CTLR_EL1), ctlr | 2)).toBe('ok'); // EOImode
    expect(g.get(S, a(SYS_ICC_CTLR_EL1))).toBe(ctlr | 2);
    expect(g.set(S, a(SYS_ICC_CTLR_EL1), ctlr + (1 << 8))).toBe('EINVAL'); // 6 priority bits
    expect(g.set(S, a(SYS_ICC_CTLR_EL1), ctlr & ~(1 << 15))).toBe('EINVAL'); // A3V differs
    expect(g.get(S, a(SYS_ICC_SRE_EL1))).toBe(7);
    expect(g.set(S, a(SYS_ICC_SRE_EL1), 0)).toBe('EINVAL');
    expect(g.set(S, a(SYS_ICC_AP1R0_EL1), 1 << 20)).toBe('ok');
    expect(g.get(S, a(SYS_ICC_AP1R0_EL1))).toBe(1 << 20);
    expect(g.get(S, a(SYS_ICC_AP1R0_EL1 + 1))).toBe('EINVAL'); // AP1R1 needs 6 priority bits
    expect(g.get(S, a(0x1234))).toBe('ENOENT');
    expect(errnoOf(() => hasAttr(g.p, g.gic, S, a(0x1234)))).toBe('ENXIO');
    expect(hasAttr(g.p, g.gic, S, a(SYS_ICC_PMR_EL1))).toBe(0);
  });

  it('LEVEL_INFO: EINVAL INTID not a multiple of 32 or another info type; the line levels of level vIRQs, SGIs skipped', () => {
    const g = initialised();
    const info = (intid: number, type = 0) =>
      kvmDevArmVgicV3Attr(0, (type << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) | intid);
    expect(g.get(L, info(33))).toBe('EINVAL');
    expect(g.get(L, info(32, 1))).toBe('EINVAL');
    expect(errnoOf(() => hasAttr(g.p, g.gic, L, info(32, 1)))).toBe('ENXIO');
    expect(g.set(L, info(32), 0b101)).toBe('ok');
    expect(g.get(L, info(32))).toBe(0); // SPIs 32, 34 are edge: their level is set but not reported
    g.kvmVm.vgic!.vgicGetIrq(34)!.config = 1;
    expect(g.get(L, info(32))).toBe(0b100);
    expect(g.set(L, info(0), 0xffff)).toBe('ok');
    expect(g.kvmVm.vgic!.vcpus[0]!.privateIrqs[3]!.lineLevel).toBe(false); // SGIs have no line
  });
});

describe('first KVM_RUN: kvm_vgic_map_resources → vgic_v3_map_resources', () => {
  it('ENXIO without a distributor base; EBUSY not initialised; ENXIO a vCPU without redistributor', () => {
    const { p, gic, vcpus } = vmWithGic(2);
    for (const v of vcpus) vcpuInit(p, v);
    setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, u64Buf(p, region(1, 0x20_0000, 0)));
    expect(errnoOf(() => p.ioctl(vcpus[0]!, KVM_RUN, 0))).toBe('ENXIO'); // vCPU 1 has no redistributor
    setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, u64Buf(p, region(1, 0x22_0000, 1)));
    expect(errnoOf(() => p.ioctl(vcpus[0]!, KVM_RUN, 0))).toBe('ENXIO'); // no distributor base
    setAttr(p, gic, ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64Buf(p, 0x10_0000n));
    expect(errnoOf(() => p.ioctl(vcpus[0]!, KVM_RUN, 0))).toBe('EBUSY');
  });
});
