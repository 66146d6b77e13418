/**
 * Userspace access to the vGIC-v2 registers: KVM_DEV_ARM_VGIC_GRP_DIST_REGS and KVM_DEV_ARM_VGIC_GRP_CPU_REGS of
 * the vGIC-v2 KVM device, after arch/arm64/kvm/vgic/vgic-kvm-device.c (vgic_v2_parse_attr,
 * vgic_v2_attr_regs_access, in vgicDevice.ts) and vgic-mmio-v2.c (vgic_v2_has_attr_regs, vgic_v2_cpuif_uaccess, vgic_v2_dist_uaccess,
 * vgic_v2_cpu_registers, vgic_mmio_{read,write}_vcpuif, vgic_mmio_{read,write}_apr). VMMs save and restore the
 * GIC with them (QEMU's kvm_arm_gic_get/put on reset and migration).
 *
 * The CPU interface registers are views of the vCPU's shadow GICH_VMCR and GICH_APR, as vgic_get_vmcr/vgic_set_vmcr
 * see them: every vCPU is out of KVM_RUN (the access holds all vCPU mutexes), so the shadow is current.
 * Distributor registers go through the guest-view handlers (kvm/vgic/vgicMmioV2.ts); the uaccess-specific write
 * handlers of GICD_IIDR, IGROUPR and (I|IC)ACTIVER (revision selection, no guest halt) are not modelled apart.
 */
import { errno } from '../../abi/errno.js';
import { KVM_DEV_ARM_VGIC_GRP_CPU_REGS } from '../../abi/kvm.js';
import {
  GIC_CPU_ACTIVEPRIO,
  GIC_CPU_ALIAS_BINPOINT,
  GIC_CPU_BINPOINT,
  GIC_CPU_CTRL,
  GIC_CPU_IDENT,
  GIC_CPU_PRIMASK,
  GICH_VMCR_ALIAS_BINPOINT_MASK,
  GICH_VMCR_ALIAS_BINPOINT_SHIFT,
  GICH_VMCR_BINPOINT_MASK,
  GICH_VMCR_BINPOINT_SHIFT,
  GICH_VMCR_CTLR_MASK,
  GICH_VMCR_PRIMASK_MASK,
  GICH_VMCR_PRIMASK_SHIFT,
} from '../../hw/gic/regs.js';
import type { Vgic, VgicCpu } from './vgic.js';
import { IMPLEMENTER_ARM, PRODUCT_ID_KVM, vgicMmioRead, vgicMmioWrite, vgicV2DistHasRegister } from './vgicMmioV2.js';

/** vgic-mmio-v2.c GICC_ARCH_VERSION_V2: the architecture field of the GICC_IIDR KVM reports. */
const GICC_ARCH_VERSION_V2 = 0x2;
/** The GICC_IIDR userspace reads: ProductID 'K', architecture v2, implementer ARM (vgic_mmio_read_vcpuif). */
export const VGIC_V2_GICC_IIDR = (PRODUCT_ID_KVM << 20) | (GICC_ARCH_VERSION_V2 << 16) | IMPLEMENTER_ARM;

/** vgic_v2_cpu_registers: [offset, length) of CTLR, PMR, BPR, ABPR, APR0..3, IIDR — all 32-bit only. */
const CPU_REGS: readonly (readonly [number, number])[] = [
  [GIC_CPU_CTRL, 4],
  [GIC_CPU_PRIMASK, 4],
  [GIC_CPU_BINPOINT, 4],
  [GIC_CPU_ALIAS_BINPOINT, 4],
  [GIC_CPU_ACTIVEPRIO, 16],
  [GIC_CPU_IDENT, 4],
];

function cpuHasRegister(offset: number): boolean {
  return CPU_REGS.some(([start, len]) => offset >= start && offset < start + len);
}

/** vgic_v2_has_attr_regs's region lookup (aligned 32-bit accesses only; per-IRQ registers below nr_irqs). */
export function vgicV2HasRegister(vgic: Vgic, group: number, offset: number): boolean {
  if ((offset & 3) !== 0) return false;
  return group === KVM_DEV_ARM_VGIC_GRP_CPU_REGS ? cpuHasRegister(offset) : vgicV2DistHasRegister(vgic, offset);
}

/** vgic_mmio_read_vcpuif / vgic_mmio_read_apr on the shadow VMCR and APR. */
export function vgicV2CpuifRead(vc: VgicCpu, offset: number): number {
  const vmcr = vc.vgicVmcr;
  switch (offset) {
    case GIC_CPU_CTRL:
      return vmcr & GICH_VMCR_CTLR_MASK; // GICC_CTLR's bits sit where VMCR keeps them
    case GIC_CPU_PRIMASK:
      // the device ABI exports VMCR.VMPriMask (5 bits), not GICC_PMR's 8-bit priority
      return (vmcr & GICH_VMCR_PRIMASK_MASK) >>> GICH_VMCR_PRIMASK_SHIFT;
    case GIC_CPU_BINPOINT:
      return (vmcr & GICH_VMCR_BINPOINT_MASK) >>> GICH_VMCR_BINPOINT_SHIFT;
    case GIC_CPU_ALIAS_BINPOINT:
      return (vmcr & GICH_VMCR_ALIAS_BINPOINT_MASK) >>> GICH_VMCR_ALIAS_BINPOINT_SHIFT;
    case GIC_CPU_IDENT:
      return VGIC_V2_GICC_IIDR;
    case GIC_CPU_ACTIVEPRIO:
      return vc.vgicApr >>> 0;
    default:
      return 0; // APR1..3: a GICv2 host has 32 preemption levels at most (vgic_mmio_read_apr)
  }
}

/** vgic_mmio_write_vcpuif / vgic_mmio_write_apr: fields outside the register are dropped, IIDR is read-only. */
export function vgicV2CpuifWrite(vc: VgicCpu, offset: number, val: number): void {
  let vmcr = vc.vgicVmcr;
  switch (offset) {
    case GIC_CPU_CTRL:
      vmcr = (vmcr & ~GICH_VMCR_CTLR_MASK) | (val & GICH_VMCR_CTLR_MASK);
      break;
    case GIC_CPU_PRIMASK:
      vmcr = (vmcr & ~GICH_VMCR_PRIMASK_MASK) | ((val << GICH_VMCR_PRIMASK_SHIFT) & GICH_VMCR_PRIMASK_MASK);
      break;
    case GIC_CPU_BINPOINT:
      vmcr = (vmcr & ~GICH_VMCR_BINPOINT_MASK) | ((val << GICH_VMCR_BINPOINT_SHIFT) & GICH_VMCR_BINPOINT_MASK);
      break;
    case GIC_CPU_ALIAS_BINPOINT:
      vmcr =
        (vmcr & ~GICH_VMCR_ALIAS_BINPOINT_MASK) |
        ((val << GICH_VMCR_ALIAS_BINPOINT_SHIFT) & GICH_VMCR_ALIAS_BINPOINT_MASK);
      break;
    case GIC_CPU_ACTIVEPRIO:
      vc.vgicApr = val >>> 0;
      return;
    default:
      return;
  }
  vc.vgicVmcr = vmcr >>> 0;
}

/**
 * vgic_v2_cpuif_uaccess / vgic_v2_dist_uaccess (vgic_uaccess): the register at `offset` of vCPU `vc`'s view, read
 * (returns the value) or written with `val` (returns 0); ENXIO if no 32-bit register is there. The caller
 * (vgic_v2_attr_regs_access) has parsed the attr, initialised the vGIC and made sure no vCPU runs.
 */
export function vgicV2RegsUaccess(vc: VgicCpu, group: number, offset: number, isWrite: boolean, val: number): number {
  if (!vgicV2HasRegister(vc.vgic, group, offset)) {
    throw errno('ENXIO', `vGIC regs: no 32-bit register at offset 0x${offset.toString(16)} of group ${group}`);
  }
  const cpu = group === KVM_DEV_ARM_VGIC_GRP_CPU_REGS;
  if (!isWrite) return cpu ? vgicV2CpuifRead(vc, offset) : vgicMmioRead(vc, offset, 4);
  if (cpu) vgicV2CpuifWrite(vc, offset, val);
  else vgicMmioWrite(vc, offset, 4, val);
  return 0;
}
