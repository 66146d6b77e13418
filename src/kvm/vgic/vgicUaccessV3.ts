/**
 * Userspace access to the vGIC-v3 registers (Linux 6.1): KVM_DEV_ARM_VGIC_GRP_DIST_REGS / _REDIST_REGS
 * (vgic-mmio-v3.c vgic_v3_dist_uaccess, vgic_v3_redist_uaccess, vgic_v3_has_attr_regs), _CPU_SYSREGS
 * (vgic-sys-reg-v3.c gic_v3_icc_reg_descs, vgic_v3_cpu_sysregs_uaccess, vgic_v3_has_cpu_sysregs_attr) and
 * _LEVEL_INFO (vgic_v3_line_level_info_uaccess, vgic-mmio.c vgic_{read,write}_irq_line_level_info). Every vCPU is out
 * of KVM_RUN during these (the device holds all vCPU mutexes), so the shadow ICH_VMCR_EL2 / AP1R0 are current.
 * Group 0 is not modelled: ICC_BPR0_EL1 and ICC_AP0R0_EL1 read as zero and drop writes; ICC_IGRPEN0_EL1 is the
 * shadow VMCR.VENG0 bit, which the hardware model keeps.
 */
import { errno } from '../../abi/errno.js';
import {
  SYS_ICC_AP0R0_EL1,
  SYS_ICC_AP1R0_EL1,
  SYS_ICC_BPR0_EL1,
  SYS_ICC_BPR1_EL1,
  SYS_ICC_CTLR_EL1,
  SYS_ICC_IGRPEN0_EL1,
  SYS_ICC_IGRPEN1_EL1,
  SYS_ICC_PMR_EL1,
  SYS_ICC_SRE_EL1,
} from '../../abi/kvm.js';
import {
  ICC_CTLR_A3V,
  ICC_CTLR_EOIMODE,
  ICC_CTLR_IDBITS_SHIFT,
  ICC_CTLR_PRIBITS_SHIFT,
  ICC_SRE_EL1_VALUE,
  ICH_VMCR_BPR1_SHIFT,
  ICH_VMCR_ENG0,
  ICH_VMCR_ENG1,
  ICH_VMCR_EOIM,
  ICH_VMCR_PMR_SHIFT,
} from '../../hw/gicv3/regs.js';
import type { VgicCpu } from './vgic.js';
import { VGIC_CONFIG_LEVEL, VGIC_NR_SGIS } from './vgicIrq.js';
import { vgicV3DistRead, vgicV3DistWrite, vgicV3RedistRead, vgicV3RedistWrite } from './vgicMmioV3.js';

/** ICH_VMCR_EL2.VCBPR[4] and ICC_CTLR_EL1.CBPR[0], SEIS[14] (arm-gic-v3.h), beside hw/gicv3/regs.ts's fields. */
const ICH_VMCR_CBPR = 1 << 4;
const ICC_CTLR_CBPR = 1 << 0;
const ICC_CTLR_SEIS = 1 << 14;
/** The model's ICH_VTR_EL2: A3V = 1, SEIS = 0 (set_gic_ctlr refuses a different value). */
const HOST_A3V = true;
const HOST_SEIS = false;
/** ICC_SRE_EL1.SRE: a GICv3 guest's ICC_SRE_EL1 reads ICC_SRE_EL1_VALUE (SRE | DFB | DIB, vgic_v3_enable). */
const ICC_SRE_EL1_SRE = 1;

/** vgic_v3_dist_uaccess / vgic_v3_redist_uaccess: ENXIO when no register is there. */
export function vgicV3RegsUaccess(vc: VgicCpu, redist: boolean, offset: number, write: boolean, val: number): number {
  if (write) {
    const ok = redist ? vgicV3RedistWrite(vc, offset, 4, val) : vgicV3DistWrite(vc, offset, 4, val);
    if (!ok)
      throw errno(
        'ENXIO',
        `no vGIC-v3 ${redist ? 'redistributor' : 'distributor'} register at 0x${offset.toString(16)}`,
      );
    return 0;
  }
  const v = redist ? vgicV3RedistRead(vc, offset, 4) : vgicV3DistRead(vc, offset, 4);
  if (v === null)
    throw errno('ENXIO', `no vGIC-v3 ${redist ? 'redistributor' : 'distributor'} register at 0x${offset.toString(16)}`);
  return v;
}

/** gic_v3_icc_reg_descs: the CPU interface registers userspace may access (AP<n>R1..3 exist but need more priority bits). */
function apIndex(id: number): number {
  if (id >= SYS_ICC_AP0R0_EL1 && id < SYS_ICC_AP0R0_EL1 + 4) return id - SYS_ICC_AP0R0_EL1;
  if (id >= SYS_ICC_AP1R0_EL1 && id < SYS_ICC_AP1R0_EL1 + 4) return id - SYS_ICC_AP1R0_EL1;
  return -1;
}

/** vgic_v3_has_cpu_sysregs_attr: whether `id` (op0:op1:CRn:CRm:op2) names a register of gic_v3_icc_reg_descs. */
export function vgicV3HasCpuSysreg(id: number): boolean {
  switch (id) {
    case SYS_ICC_PMR_EL1:
    case SYS_ICC_BPR0_EL1:
    case SYS_ICC_BPR1_EL1:
    case SYS_ICC_CTLR_EL1:
    case SYS_ICC_SRE_EL1:
    case SYS_ICC_IGRPEN0_EL1:
    case SYS_ICC_IGRPEN1_EL1:
      return true;
    default:
      return apIndex(id) >= 0;
  }
}

/** vgic_v3_max_apr_idx: with 5 priority bits only AP<n>R0 exists; get_apr_reg/set_apr_reg refuse the others. */
function checkApr(vc: VgicCpu, id: number): void {
  const idx = apIndex(id);
  if (idx > (vc.numPriBits > 5 ? (vc.numPriBits === 6 ? 1 : 3) : 0)) {
    throw errno('EINVAL', `ICC_AP<n>R${idx}_EL1 does not exist with ${vc.numPriBits} priority bits`);
  }
}

/** kvm_sys_reg_get_user over gic_v3_icc_reg_descs: ENOENT for an unknown register. */
export function vgicV3CpuSysregGet(vc: VgicCpu, id: number): bigint {
  if (!vgicV3HasCpuSysreg(id))
    throw errno('ENOENT', `sysreg 0x${id.toString(16)} is not a GICv3 CPU interface register`);
  const vmcr = vc.vgicVmcr;
  switch (id) {
    case SYS_ICC_PMR_EL1:
      return BigInt(vmcr >>> ICH_VMCR_PMR_SHIFT);
    case SYS_ICC_BPR0_EL1:
      return 0n;
    case SYS_ICC_BPR1_EL1:
      return BigInt((vmcr >>> ICH_VMCR_BPR1_SHIFT) & 7);
    case SYS_ICC_CTLR_EL1:
      return BigInt(
        ((vc.numPriBits - 1) << ICC_CTLR_PRIBITS_SHIFT) |
          (vc.numIdBits << ICC_CTLR_IDBITS_SHIFT) |
          (HOST_SEIS ? ICC_CTLR_SEIS : 0) |
          (HOST_A3V ? ICC_CTLR_A3V : 0) |
          ((vmcr & ICH_VMCR_CBPR) !== 0 ? ICC_CTLR_CBPR : 0) |
          ((vmcr & ICH_VMCR_EOIM) !== 0 ? ICC_CTLR_EOIMODE : 0),
      );
    case SYS_ICC_SRE_EL1:
      return BigInt(ICC_SRE_EL1_VALUE);
    case SYS_ICC_IGRPEN0_EL1:
      return (vmcr & ICH_VMCR_ENG0) !== 0 ? 1n : 0n;
    case SYS_ICC_IGRPEN1_EL1:
      return (vmcr & ICH_VMCR_ENG1) !== 0 ? 1n : 0n;
    default:
      checkApr(vc, id);
      return id === SYS_ICC_AP1R0_EL1 ? BigInt(vc.vgicApr >>> 0) : 0n;
  }
}

/** kvm_sys_reg_set_user over gic_v3_icc_reg_descs: ENOENT unknown register; EINVAL a value this host cannot restore. */
export function vgicV3CpuSysregSet(vc: VgicCpu, id: number, val: bigint): void {
  if (!vgicV3HasCpuSysreg(id))
    throw errno('ENOENT', `sysreg 0x${id.toString(16)} is not a GICv3 CPU interface register`);
  const v = Number(val & 0xffff_ffffn);
  let vmcr = vc.vgicVmcr;
  switch (id) {
    case SYS_ICC_PMR_EL1:
      vmcr = (vmcr & ~(0xff << ICH_VMCR_PMR_SHIFT)) | ((v & 0xff) << ICH_VMCR_PMR_SHIFT);
      break;
    case SYS_ICC_BPR0_EL1:
      return;
    case SYS_ICC_BPR1_EL1:
      vmcr = (vmcr & ~(7 << ICH_VMCR_BPR1_SHIFT)) | ((v & 7) << ICH_VMCR_BPR1_SHIFT);
      break;
    case SYS_ICC_CTLR_EL1: {
      // set_gic_ctlr: refuse what this hardware cannot restore, else adopt the smaller PRIbits/IDbits
      const priBits = ((v >>> ICC_CTLR_PRIBITS_SHIFT) & 7) + 1;
      if (priBits > vc.numPriBits)
        throw errno('EINVAL', `ICC_CTLR_EL1.PRIbits ${priBits} > the host's ${vc.numPriBits}`);
      const idBits = (v >>> ICC_CTLR_IDBITS_SHIFT) & 7;
      if (idBits > vc.numIdBits) throw errno('EINVAL', `ICC_CTLR_EL1.IDbits ${idBits} > the host's ${vc.numIdBits}`);
      if (((v & ICC_CTLR_SEIS) !== 0) !== HOST_SEIS) throw errno('EINVAL', 'ICC_CTLR_EL1.SEIS differs from the host');
      if (((v & ICC_CTLR_A3V) !== 0) !== HOST_A3V) throw errno('EINVAL', 'ICC_CTLR_EL1.A3V differs from the host');
      vc.numPriBits = priBits;
      vc.numIdBits = idBits;
      vmcr = (vmcr & ~(ICH_VMCR_CBPR | ICH_VMCR_EOIM)) | ((v & ICC_CTLR_CBPR) !== 0 ? ICH_VMCR_CBPR : 0);
      vmcr |= (v & ICC_CTLR_EOIMODE) !== 0 ? ICH_VMCR_EOIM : 0;
      break;
    }
    case SYS_ICC_SRE_EL1:
      if ((v & ICC_SRE_EL1_SRE) === 0) throw errno('EINVAL', 'a GICv3 guest cannot clear ICC_SRE_EL1.SRE');
      return;
    case SYS_ICC_IGRPEN0_EL1:
      vmcr = (vmcr & ~ICH_VMCR_ENG0) | ((v & 1) !== 0 ? ICH_VMCR_ENG0 : 0);
      break;
    case SYS_ICC_IGRPEN1_EL1:
      vmcr = (vmcr & ~ICH_VMCR_ENG1) | ((v & 1) !== 0 ? ICH_VMCR_ENG1 : 0);
      break;
    default:
      checkApr(vc, id);
      if (id === SYS_ICC_AP1R0_EL1) vc.vgicApr = v >>> 0;
      return;
  }
  vc.vgicVmcr = vmcr >>> 0;
}

/**
 * vgic_v3_line_level_info_uaccess: the line levels of 32 INTIDs from `intid` (a multiple of 32, else EINVAL) as seen by
 * vCPU `vc`; SGIs and INTIDs past nr_irqs are skipped. A write sets each line whatever the trigger (the VMM may
 * restore levels before configs) and queues the raised ones.
 */
export function vgicV3LineLevelInfo(vc: VgicCpu, intid: number, write: boolean, val: number): number {
  if (intid % 32 !== 0) throw errno('EINVAL', `LEVEL_INFO INTID ${intid} is not a multiple of 32`);
  const vgic = vc.vgic;
  let out = 0;
  for (let i = 0; i < 32; i++) {
    const n = intid + i;
    if (n < VGIC_NR_SGIS || n >= vgic.nrIrqs) continue;
    const irq = vgic.vgicGetVcpuIrq(vc, n);
    if (irq === null) continue;
    if (write) {
      irq.lineLevel = ((val >>> i) & 1) !== 0;
      if (irq.lineLevel) vgic.vgicQueueIrqUnlock(irq);
    } else if (irq.config === VGIC_CONFIG_LEVEL && irq.lineLevel) {
      out |= 1 << i;
    }
  }
  return out >>> 0;
}
