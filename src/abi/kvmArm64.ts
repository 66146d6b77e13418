/**
 * arch/arm64/include/uapi/asm/kvm.h: vCPU targets and features, vGIC device attributes, KVM_IRQ_LINE encoding.
 * Re-exported by kvm.ts.
 */
import { ModelError } from '../sim/errors.js';

// Supported CPU targets
export const KVM_ARM_TARGET_AEM_V8 = 0;
export const KVM_ARM_TARGET_FOUNDATION_V8 = 1;
export const KVM_ARM_TARGET_CORTEX_A57 = 2;
export const KVM_ARM_TARGET_XGENE_POTENZA = 3;
export const KVM_ARM_TARGET_CORTEX_A53 = 4;
export const KVM_ARM_TARGET_GENERIC_V8 = 5;
export const KVM_ARM_NUM_TARGETS = 6;

// kvm_vcpu_init.features bit numbers
export const KVM_ARM_VCPU_POWER_OFF = 0;
export const KVM_ARM_VCPU_EL1_32BIT = 1;
export const KVM_ARM_VCPU_PSCI_0_2 = 2;
export const KVM_ARM_VCPU_PMU_V3 = 3;
export const KVM_ARM_VCPU_SVE = 4;
export const KVM_ARM_VCPU_PTRAUTH_ADDRESS = 5;
export const KVM_ARM_VCPU_PTRAUTH_GENERIC = 6;
export const KVM_ARM_VCPU_HAS_EL2 = 7;

// KVM_ARM_SET_DEVICE_ADDR id encoding and device ids
export const KVM_ARM_DEVICE_TYPE_SHIFT = 0;
export const KVM_ARM_DEVICE_TYPE_MASK = 0xffff << KVM_ARM_DEVICE_TYPE_SHIFT;
export const KVM_ARM_DEVICE_ID_SHIFT = 16;
export const KVM_ARM_DEVICE_ID_MASK = (0xffff << KVM_ARM_DEVICE_ID_SHIFT) >>> 0;
export const KVM_ARM_DEVICE_VGIC_V2 = 0;

// vGIC address types (KVM_DEV_ARM_VGIC_GRP_ADDR attr) and region sizes
export const KVM_VGIC_V2_ADDR_TYPE_DIST = 0;
export const KVM_VGIC_V2_ADDR_TYPE_CPU = 1;
export const KVM_VGIC_V2_DIST_SIZE = 0x1000;
export const KVM_VGIC_V2_CPU_SIZE = 0x2000;
export const KVM_VGIC_V3_ADDR_TYPE_DIST = 2;
export const KVM_VGIC_V3_ADDR_TYPE_REDIST = 3;
export const KVM_VGIC_ITS_ADDR_TYPE = 4;
export const KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION = 5;
export const KVM_VGIC_V3_DIST_SIZE = 0x1_0000;
export const KVM_VGIC_V3_REDIST_SIZE = 2 * 0x1_0000;
export const KVM_VGIC_V3_ITS_SIZE = 2 * 0x1_0000;

// vGIC device attribute groups
export const KVM_DEV_ARM_VGIC_GRP_ADDR = 0;
export const KVM_DEV_ARM_VGIC_GRP_DIST_REGS = 1;
export const KVM_DEV_ARM_VGIC_GRP_CPU_REGS = 2;
export const KVM_DEV_ARM_VGIC_CPUID_SHIFT = 32;
/** 0xffULL << 32. The ULL masks are bigints because kvm_device_attr.attr decodes to a bigint. */
export const KVM_DEV_ARM_VGIC_CPUID_MASK = 0xffn << BigInt(KVM_DEV_ARM_VGIC_CPUID_SHIFT);
export const KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT = 32;
export const KVM_DEV_ARM_VGIC_V3_MPIDR_MASK = 0xffff_ffffn << BigInt(KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT);
export const KVM_DEV_ARM_VGIC_OFFSET_SHIFT = 0;
export const KVM_DEV_ARM_VGIC_OFFSET_MASK = 0xffff_ffffn << BigInt(KVM_DEV_ARM_VGIC_OFFSET_SHIFT);
export const KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK = 0xffff;
export const KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3;
export const KVM_DEV_ARM_VGIC_GRP_CTRL = 4;
export const KVM_DEV_ARM_VGIC_GRP_REDIST_REGS = 5;
export const KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS = 6;
export const KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO = 7;
export const KVM_DEV_ARM_VGIC_GRP_ITS_REGS = 8;
export const KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT = 10;
export const KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK = 0x3f_ffffn << BigInt(KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT);
export const KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK = 0x3ff;
export const VGIC_LEVEL_INFO_LINE_LEVEL = 0;

// KVM_DEV_ARM_VGIC_GRP_CTRL attributes
export const KVM_DEV_ARM_VGIC_CTRL_INIT = 0;
export const KVM_DEV_ARM_ITS_SAVE_TABLES = 1;
export const KVM_DEV_ARM_ITS_RESTORE_TABLES = 2;
export const KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES = 3;
export const KVM_DEV_ARM_ITS_CTRL_RESET = 4;

/** arch/arm64/include/asm/kvm_host.h KVM_IRQCHIP_NUM_PINS (1020 - 32): the SPIs a routing entry may name. */
export const KVM_IRQCHIP_NUM_PINS = 1020 - 32;

/** The vCPU index of a GRP_DIST_REGS / GRP_CPU_REGS attr: (attr & KVM_DEV_ARM_VGIC_CPUID_MASK) >> 32. */
export function kvmDevArmVgicAttrCpuid(attr: bigint): number {
  return Number((attr & KVM_DEV_ARM_VGIC_CPUID_MASK) >> BigInt(KVM_DEV_ARM_VGIC_CPUID_SHIFT));
}

/** The register offset of a GRP_DIST_REGS / GRP_CPU_REGS attr: attr & KVM_DEV_ARM_VGIC_OFFSET_MASK. */
export function kvmDevArmVgicAttrOffset(attr: bigint): number {
  return Number((attr & KVM_DEV_ARM_VGIC_OFFSET_MASK) >> BigInt(KVM_DEV_ARM_VGIC_OFFSET_SHIFT));
}

/** Builds a GRP_DIST_REGS / GRP_CPU_REGS attr from a vCPU index and a register offset. */
export function kvmDevArmVgicAttr(cpuid: number, offset: number): bigint {
  if (!Number.isInteger(cpuid) || cpuid < 0 || cpuid > 0xff) throw new ModelError(`vgic attr cpuid ${cpuid} > 0xff`);
  if (!Number.isInteger(offset) || offset < 0 || offset > 0xffff_ffff) {
    throw new ModelError(`vgic attr offset ${offset} does not fit 32 bits`);
  }
  return (
    (BigInt(cpuid) << BigInt(KVM_DEV_ARM_VGIC_CPUID_SHIFT)) | (BigInt(offset) << BigInt(KVM_DEV_ARM_VGIC_OFFSET_SHIFT))
  );
}

/**
 * KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION's value (vgic.h; documented in devices/arm-vgic-v3.rst): index[11:0],
 * flags[15:12] (must be 0), base[51:16] (64 KiB aligned by construction), count[63:52] redistributors.
 */
export const KVM_VGIC_V3_RDIST_INDEX_MASK = 0xfffn;
export const KVM_VGIC_V3_RDIST_FLAGS_SHIFT = 12;
export const KVM_VGIC_V3_RDIST_FLAGS_MASK = 0xfn << BigInt(KVM_VGIC_V3_RDIST_FLAGS_SHIFT);
export const KVM_VGIC_V3_RDIST_BASE_MASK = 0x000f_ffff_ffff_0000n;
export const KVM_VGIC_V3_RDIST_COUNT_SHIFT = 52;
export const KVM_VGIC_V3_RDIST_COUNT_MASK = 0xfffn << BigInt(KVM_VGIC_V3_RDIST_COUNT_SHIFT);

/** The selftests' REDIST_REGION_ATTR_ADDR(count, base, flags, index) (tools/testing/selftests/kvm/include/aarch64/vgic.h). */
export function kvmVgicV3RdistRegionAttr(count: number, base: bigint, flags: number, index: number): bigint {
  return (
    (BigInt(count) << BigInt(KVM_VGIC_V3_RDIST_COUNT_SHIFT)) |
    ((base >> 16n) << 16n) |
    (BigInt(flags) << BigInt(KVM_VGIC_V3_RDIST_FLAGS_SHIFT)) |
    BigInt(index)
  );
}

/** A GRP_REDIST_REGS / GRP_CPU_SYSREGS / GRP_LEVEL_INFO attr: the vCPU's affinity (Aff3.Aff2.Aff1.Aff0) << 32 | offset. */
export function kvmDevArmVgicV3Attr(mpidrAff: number, offset: number): bigint {
  if (!Number.isInteger(mpidrAff) || mpidrAff < 0 || mpidrAff > 0xffff_ffff)
    throw new ModelError(`vgic attr mpidr ${mpidrAff}`);
  if (!Number.isInteger(offset) || offset < 0 || offset > 0xffff_ffff)
    throw new ModelError(`vgic attr offset ${offset}`);
  return (BigInt(mpidrAff) << BigInt(KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT)) | BigInt(offset);
}

/** The affinity field of a GICv3 register attr: (attr & KVM_DEV_ARM_VGIC_V3_MPIDR_MASK) >> 32. */
export function kvmDevArmVgicV3AttrMpidr(attr: bigint): number {
  return Number((attr & KVM_DEV_ARM_VGIC_V3_MPIDR_MASK) >> BigInt(KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT));
}

/** KVM_REG_ARM64_SYSREG_* field shifts: a GRP_CPU_SYSREGS attr's low 16 bits are op0:op1:CRn:CRm:op2. */
export const KVM_REG_ARM64_SYSREG_OP0_SHIFT = 14;
export const KVM_REG_ARM64_SYSREG_OP1_SHIFT = 11;
export const KVM_REG_ARM64_SYSREG_CRN_SHIFT = 7;
export const KVM_REG_ARM64_SYSREG_CRM_SHIFT = 3;
export const KVM_REG_ARM64_SYSREG_OP2_SHIFT = 0;
const sysreg = (op0: number, op1: number, crn: number, crm: number, op2: number): number =>
  (op0 << KVM_REG_ARM64_SYSREG_OP0_SHIFT) |
  (op1 << KVM_REG_ARM64_SYSREG_OP1_SHIFT) |
  (crn << KVM_REG_ARM64_SYSREG_CRN_SHIFT) |
  (crm << KVM_REG_ARM64_SYSREG_CRM_SHIFT) |
  (op2 << KVM_REG_ARM64_SYSREG_OP2_SHIFT);
/** The GICv3 CPU interface registers of vgic-sys-reg-v3.c gic_v3_icc_reg_descs (arm64 sysreg.h encodings). */
export const SYS_ICC_PMR_EL1 = sysreg(3, 0, 4, 6, 0);
export const SYS_ICC_BPR0_EL1 = sysreg(3, 0, 12, 8, 3);
export const SYS_ICC_AP0R0_EL1 = sysreg(3, 0, 12, 8, 4);
export const SYS_ICC_AP1R0_EL1 = sysreg(3, 0, 12, 9, 0);
export const SYS_ICC_BPR1_EL1 = sysreg(3, 0, 12, 12, 3);
export const SYS_ICC_CTLR_EL1 = sysreg(3, 0, 12, 12, 4);
export const SYS_ICC_SRE_EL1 = sysreg(3, 0, 12, 12, 5);
export const SYS_ICC_IGRPEN0_EL1 = sysreg(3, 0, 12, 12, 6);
export const SYS_ICC_IGRPEN1_EL1 = sysreg(3, 0, 12, 12, 7);

// Kernel-internal vGIC geometry (include/kvm/arm_vgic.h), needed to validate KVM_IRQ_LINE and irqfd GSIs.
export const VGIC_NR_SGIS = 16;
export const VGIC_NR_PPIS = 16;
export const VGIC_NR_PRIVATE_IRQS = VGIC_NR_SGIS + VGIC_NR_PPIS;
/** Highest SPI INTID a GICv2/v3 can have (1020..1023 are special). */
export const VGIC_MAX_SPI = 1019;
/** INTIDs (private included) when userspace never sets GRP_NR_IRQS: vgic_init freezes nr_spis = 256 - 32 = 224. */
export const VGIC_NR_IRQS_LEGACY = 256;
/**
 * The most INTIDs GRP_NR_IRQS accepts: a multiple of 32 no greater than VGIC_MAX_RESERVED (1023) — 992, i.e. SPIs
 * 32..991 (vgic_set_common_attr; its comment's "at most 1024" is not what its condition checks).
 */
export const VGIC_MAX_NR_IRQS = 992;

// KVM_IRQ_LINE irq field: vcpu2_index (4) | irq_type (4) | vcpu_index (8) | irq_id (16)
export const KVM_ARM_IRQ_VCPU2_SHIFT = 28;
export const KVM_ARM_IRQ_VCPU2_MASK = 0xf;
export const KVM_ARM_IRQ_TYPE_SHIFT = 24;
export const KVM_ARM_IRQ_TYPE_MASK = 0xf;
export const KVM_ARM_IRQ_VCPU_SHIFT = 16;
export const KVM_ARM_IRQ_VCPU_MASK = 0xff;
export const KVM_ARM_IRQ_NUM_SHIFT = 0;
export const KVM_ARM_IRQ_NUM_MASK = 0xffff;

// irq_type
export const KVM_ARM_IRQ_TYPE_CPU = 0;
export const KVM_ARM_IRQ_TYPE_SPI = 1;
export const KVM_ARM_IRQ_TYPE_PPI = 2;

// irq_id for KVM_ARM_IRQ_TYPE_CPU (out-of-kernel GIC)
export const KVM_ARM_IRQ_CPU_IRQ = 0;
export const KVM_ARM_IRQ_CPU_FIQ = 1;

/** Obsolete highest SPI, kept by the header for source compatibility only. */
export const KVM_ARM_IRQ_GIC_MAX = 127;
/** One single KVM irqchip, ie. the VGIC. */
export const KVM_NR_IRQCHIPS = 1;

export interface KvmArmIrqLine {
  readonly type: number;
  /** vcpu_index + 256 * vcpu2_index (KVM_CAP_ARM_IRQ_LINE_LAYOUT_2); the kernel looks it up as a vcpu_id. */
  readonly vcpu: number;
  /** irq_id: the INTID for SPI/PPI, IRQ/FIQ for CPU. */
  readonly num: number;
}

/** Splits a kvm_irq_level.irq (arch/arm64/kvm/arm.c kvm_vm_ioctl_irq_line: vcpu2 counts in units of 256). */
export function kvmArmIrqLineDecode(irq: number): KvmArmIrqLine {
  const u = irq >>> 0;
  const vcpuLo = (u >>> KVM_ARM_IRQ_VCPU_SHIFT) & KVM_ARM_IRQ_VCPU_MASK;
  const vcpuHi = (u >>> KVM_ARM_IRQ_VCPU2_SHIFT) & KVM_ARM_IRQ_VCPU2_MASK;
  return {
    type: (u >>> KVM_ARM_IRQ_TYPE_SHIFT) & KVM_ARM_IRQ_TYPE_MASK,
    vcpu: vcpuLo + vcpuHi * (KVM_ARM_IRQ_VCPU_MASK + 1),
    num: (u >>> KVM_ARM_IRQ_NUM_SHIFT) & KVM_ARM_IRQ_NUM_MASK,
  };
}

/** Packs a kvm_irq_level.irq; fields that do not fit are a model bug. */
export function kvmArmIrqLineEncode(line: KvmArmIrqLine): number {
  const { type, vcpu, num } = line;
  const maxVcpu = (KVM_ARM_IRQ_VCPU2_MASK + 1) * (KVM_ARM_IRQ_VCPU_MASK + 1) - 1;
  const ok = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;
  if (!ok(type, KVM_ARM_IRQ_TYPE_MASK) || !ok(vcpu, maxVcpu) || !ok(num, KVM_ARM_IRQ_NUM_MASK)) {
    throw new ModelError(`KVM_IRQ_LINE irq type=${type} vcpu=${vcpu} num=${num} does not fit its fields`);
  }
  const vcpuLo = vcpu & KVM_ARM_IRQ_VCPU_MASK;
  const vcpuHi = vcpu >>> 8;
  return (
    ((vcpuHi << KVM_ARM_IRQ_VCPU2_SHIFT) |
      (type << KVM_ARM_IRQ_TYPE_SHIFT) |
      (vcpuLo << KVM_ARM_IRQ_VCPU_SHIFT) |
      (num << KVM_ARM_IRQ_NUM_SHIFT)) >>>
    0
  );
}
