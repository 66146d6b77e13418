/**
 * KVM_DEV_ARM_VGIC_GRP_CPU_REGS / GRP_DIST_REGS from userspace (vgic-kvm-device.c vgic_v2_attr_regs_access,
 * vgic-mmio-v2.c vgic_v2_cpuif_uaccess / vgic_v2_dist_uaccess / vgic_v2_has_attr_regs), as QEMU's
 * kvm_arm_gic_put / kvm_arm_gic_get (hw/intc/arm_gic_kvm.c) use them on reset and migration.
 */
import { describe, expect, it } from 'vitest';
import { buildVm, errnoOf, getAttr, hasAttr, setAttr, setup, u32Buf } from '../../../test/fixtures/kvmSetup.js';
import {
  KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_RUN,
  kvmDevArmVgicAttr,
} from '../../abi/kvm.js';
import { GICH_VMCR_PRIMASK_SHIFT } from '../../hw/gic/regs.js';
import { VGIC_V2_GICC_IIDR } from './vgicUaccessV2.js';

const CPU = KVM_DEV_ARM_VGIC_GRP_CPU_REGS;
const DIST = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;

function vm2() {
  const s = setup();
  const v = buildVm(s, 2);
  const get = (group: number, vcpu: number, off: number): number => {
    const out = s.p.mem.alloc(4);
    getAttr(s.p, v.vgic, group, kvmDevArmVgicAttr(vcpu, off), out);
    return s.p.mem.readU32(out);
  };
  const set = (group: number, vcpu: number, off: number, val: number): number =>
    setAttr(s.p, v.vgic, group, kvmDevArmVgicAttr(vcpu, off), u32Buf(s.p, val));
  return { s, v, get, set, vgic: s.kvm.vms[0]!.vgic! };
}

describe('GRP_CPU_REGS (vgic_v2_cpuif_uaccess: vgic_mmio_{read,write}_vcpuif, vgic_mmio_{read,write}_apr)', () => {
  it("kvm_arm_gic_put's CTLR, PMR, BPR, ABPR, APR0 land in the vCPU's shadow VMCR/APR and read back", () => {
    const { get, set, vgic } = vm2();
    set(CPU, 1, 0x00, 0x201 | 0x400); // EnableGrp0 + EOImodeNS; bit 10 is no GICC_CTLR field KVM keeps
    set(CPU, 1, 0x04, 0x1e); // VMPriMask (5 bits, the device ABI's PMR)
    set(CPU, 1, 0x08, 3);
    set(CPU, 1, 0x1c, 4);
    set(CPU, 1, 0xd0, 0x8000_0001);
    expect([get(CPU, 1, 0x00), get(CPU, 1, 0x04), get(CPU, 1, 0x08), get(CPU, 1, 0x1c)]).toEqual([0x201, 0x1e, 3, 4]);
    expect(get(CPU, 1, 0xd0)).toBe(0x8000_0001);
    const vc = vgic.vcpu(1);
    expect(vc.vgicVmcr >>> GICH_VMCR_PRIMASK_SHIFT).toBe(0x1e);
    expect(vc.vgicVmcr).toBe(((0x1e << 27) | (3 << 21) | (4 << 18) | 0x201) >>> 0);
    expect(vgic.vcpu(0).vgicVmcr).toBe(0); // per vCPU: the cpuid field picks the CPU interface
  });

  it('GICC_IIDR reads ProductID KVM / arch v2 / ARM and ignores writes; APR1..3 are RAZ/WI on a GICv2 host', () => {
    const { get, set } = vm2();
    expect(get(CPU, 0, 0xfc)).toBe(VGIC_V2_GICC_IIDR);
    expect(VGIC_V2_GICC_IIDR).toBe(0x04b2_043b);
    set(CPU, 0, 0xfc, 0);
    expect(get(CPU, 0, 0xfc)).toBe(VGIC_V2_GICC_IIDR);
    set(CPU, 0, 0xd4, 0xffff_ffff);
    expect(get(CPU, 0, 0xd4)).toBe(0);
    expect(get(CPU, 0, 0xd0)).toBe(0);
  });

  it('errnos: EINVAL no such vCPU, ENXIO unaligned or no register (IAR/EOIR are guest-only), EFAULT both ways', () => {
    const { s, v, get, set } = vm2();
    expect(errnoOf(() => get(CPU, 2, 0x00))).toBe('EINVAL');
    expect(errnoOf(() => get(CPU, 0, 0x0c))).toBe('ENXIO'); // GICC_IAR
    expect(errnoOf(() => set(CPU, 0, 0x10, 1))).toBe('ENXIO'); // GICC_EOIR
    expect(errnoOf(() => get(CPU, 0, 0x02))).toBe('ENXIO');
    const a = kvmDevArmVgicAttr(0, 0);
    expect(errnoOf(() => setAttr(s.p, v.vgic, CPU, a, 0x10))).toBe('EFAULT'); // get_user before the locks
    expect(errnoOf(() => getAttr(s.p, v.vgic, CPU, a, 0x10))).toBe('EFAULT'); // put_user after the access
    expect(hasAttr(s.p, v.vgic, CPU, kvmDevArmVgicAttr(1, 0xdc))).toBe(0);
    expect(errnoOf(() => hasAttr(s.p, v.vgic, CPU, kvmDevArmVgicAttr(1, 0x0c)))).toBe('ENXIO');
    expect(errnoOf(() => hasAttr(s.p, v.vgic, CPU, kvmDevArmVgicAttr(5, 0)))).toBe('EINVAL');
  });

  it('EBUSY while any vCPU is in KVM_RUN (kvm_trylock_all_vcpus); works again once it has returned', () => {
    const { s, v, get } = vm2();
    const th = s.p.thread('vcpu0', 1);
    th.ioctlAsync(v.vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    expect(errnoOf(() => get(CPU, 1, 0x00))).toBe('EBUSY');
    expect(errnoOf(() => get(DIST, 0, 0x00))).toBe('EBUSY');
    th.kill(10);
    s.kernel.settle();
    expect(th.busy).toBe(false);
    expect(get(CPU, 0, 0x00) & 1).toBe(1); // the default guest enabled its CPU interface (GICV_CTLR.EnableGrp0)
  });
});

describe('GRP_DIST_REGS (vgic_v2_dist_uaccess)', () => {
  it('get/set after the implied vgic_init: ISENABLER of an SPI, IPRIORITYR; ENXIO past nr_irqs', () => {
    const { get, set } = vm2();
    set(DIST, 0, 0x104, 1 << 8); // enable SPI 40
    expect(get(DIST, 0, 0x104)).toBe(1 << 8);
    set(DIST, 0, 0x428, 0xa0a0_a0a0);
    expect(get(DIST, 0, 0x428)).toBe(0xa0a0_a0a0);
    expect(errnoOf(() => get(DIST, 0, 0x100 + 256 / 8))).toBe('ENXIO'); // 256 INTIDs by default
  });
});
