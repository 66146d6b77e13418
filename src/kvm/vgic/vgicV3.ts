/**
 * The GICv3 backend of the vGIC, after arch/arm64/kvm/vgic/vgic-v3.c and hyp/vgic-v3-sr.c (Linux 6.1), for a guest
 * that sees a GICv3 (vgic_model KVM_DEV_TYPE_ARM_VGIC_V3) on a GICv3 host: the 64-bit ICH_LR<n>_EL2 format, populate
 * and fold of one list register, underflow (ICH_HCR_EL2.UIE), and the vCPU interface's load/put (ICH_VMCR_EL2,
 * ICH_AP1R0_EL2) and save/restore (ICH_HCR_EL2, the LRs) against the physical CPU's Gicv3VirtualInterface. The shadow
 * state lives in VgicCpu (struct vgic_v3_cpu_if): each LR as its two words vgicLr (vINTID) and vgicLrHi (bits 63:32),
 * vgicHcr, vgicVmcr, vgicApr (AP1R0). Group 0 is not modelled (no AP0R). Synchronous; nothing allocates.
 */
import {
  ICH_HCR_EN,
  ICH_HCR_UIE,
  ICH_LR_EOI,
  ICH_LR_GROUP,
  ICH_LR_HW,
  ICH_LR_PHYS_ID_MASK,
  ICH_LR_PRIORITY_SHIFT,
  ICH_LR_STATE_SHIFT,
  ICH_VMCR_PMR_SHIFT,
  VIRTUAL_PRIORITY_BITS,
} from '../../hw/gicv3/regs.js';
import { Gicv3VirtualInterface } from '../../hw/gicv3/virtualInterface.js';
import { ModelError } from '../../sim/errors.js';
import { LR_TRACE, type Vgic, type VgicBackend, type VgicCpu, type VgicHwInterface } from './vgic.js';
import {
  irqIsPending,
  VGIC_CONFIG_EDGE,
  VGIC_CONFIG_LEVEL,
  type VgicIrq,
  vgicIrqIsMappedLevel,
  vgicIrqIsMultiSgi,
} from './vgicIrq.js';

// ICH_LR<n>_EL2's upper word (hw/gicv3/regs.ts): ICH_LR_PENDING_BIT is bit 62, ICH_LR_ACTIVE_BIT bit 63
const ICH_LR_PENDING_BIT = 1 << ICH_LR_STATE_SHIFT;
const ICH_LR_ACTIVE_BIT = (2 << ICH_LR_STATE_SHIFT) >>> 0;
const ICH_LR_STATE = (ICH_LR_PENDING_BIT | ICH_LR_ACTIVE_BIT) >>> 0;
/** ICH_VTR_EL2.ListRegs is 5 bits, but at most 16 LRs exist: vgic_v3_probe ignores bit 4. */
const ICH_VTR_LIST_REGS = 0xf;

/** The GICv3 virtual interface behind `vif` (a vGIC-v3 needs the ICH_* system registers). */
function ich(vif: VgicHwInterface): Gicv3VirtualInterface {
  if (!(vif instanceof Gicv3VirtualInterface)) {
    throw new ModelError('vGIC-v3 needs a GICv3 virtual interface (ICH_*_EL2): the host GIC is not a GICv3');
  }
  return vif;
}

export class VgicV3 implements VgicBackend {
  constructor(private readonly vgic: Vgic) {}

  /** vgic_v3_probe: nr_lr = ICH_VTR_EL2.ListRegs[3:0] + 1. */
  nrLrOf(vif: VgicHwInterface): number {
    return (ich(vif).readVtr() & ICH_VTR_LIST_REGS) + 1;
  }

  /**
   * vgic_v3_enable: VMCR 0 (the GIC restores the binary points' reset values), HCR.En; SRE is forced to 1 for a
   * GICv3 guest (ICC_SRE_EL1 reads SRE|DFB|DIB, the only value the hardware model has). No trap bits: the
   * group0/group1/common/dir traps are for errata (Cavium 30115, Apple M1 SEIs), not modelled.
   */
  enable(vcpu: VgicCpu): void {
    vcpu.vgicVmcr = 0;
    vcpu.numIdBits = 0; // ICH_VTR_EL2.IDbits of the model's GICv3: 16-bit INTIDs
    vcpu.numPriBits = VIRTUAL_PRIORITY_BITS;
    vcpu.vgicHcr = ICH_HCR_EN;
  }

  /**
   * vgic_v3_populate_lr for a GICv3 guest (no GICv2 SGI source): ACTIVE from the vIRQ, HW with the pINTID for a
   * mapped vIRQ (never pending+active: the pending state stays at the physical distributor), EOI maintenance for an
   * unmapped level vIRQ (resampling and ack notifiers), PENDING when allowed, which consumes an edge's latch and
   * lowers a mapped level's line; Group and the full 8-bit priority.
   */
  populateLr(vcpu: VgicCpu, irq: VgicIrq, lr: number): void {
    let hi = 0;
    let allowPending = true;
    if (irq.active) {
      hi |= ICH_LR_ACTIVE_BIT;
      if (vgicIrqIsMultiSgi(irq)) {
        allowPending = false;
        hi |= ICH_LR_EOI;
      }
    }
    if (irq.hw) {
      hi |= ICH_LR_HW | (irq.hwintid & ICH_LR_PHYS_ID_MASK);
      if (irq.active) allowPending = false;
    } else if (irq.config === VGIC_CONFIG_LEVEL) {
      hi |= ICH_LR_EOI;
      if (irq.active) allowPending = false; // software resampling and P+A do not mix
    }
    if (allowPending && irqIsPending(irq)) {
      hi |= ICH_LR_PENDING_BIT;
      if (irq.config === VGIC_CONFIG_EDGE) irq.pendingLatch = false;
    }
    // mapped level vIRQs only see rising edges: lower the line so that a new one can be taken
    if (vgicIrqIsMappedLevel(irq) && (hi & ICH_LR_PENDING_BIT) !== 0) irq.lineLevel = false;
    if (irq.group !== 0) hi |= ICH_LR_GROUP;
    hi |= irq.priority << ICH_LR_PRIORITY_SHIFT;
    vcpu.vgicLr[lr] = irq.intid;
    vcpu.vgicLrHi[lr] = hi >>> 0;
  }

  /** vgic_v3_clear_lr. */
  clearLr(vcpu: VgicCpu, lr: number): void {
    vcpu.vgicLr[lr] = 0;
    vcpu.vgicLrHi[lr] = 0;
  }

  /** vgic_v3_set_underflow. */
  setUnderflow(vcpu: VgicCpu): void {
    vcpu.vgicHcr = (vcpu.vgicHcr | ICH_HCR_UIE) >>> 0;
  }

  /** vgic_v3_fold_lr_state's first act. */
  clearUnderflow(vcpu: VgicCpu): void {
    vcpu.vgicHcr = (vcpu.vgicHcr & ~ICH_HCR_UIE) >>> 0;
  }

  /** vgic-v3.c lr_signals_eoi_mi: invalid, EOI requested, not HW (bit 41 is part of the pINTID with HW). */
  eoiMaintenanceIntid(vcpu: VgicCpu, lr: number): number {
    const hi = vcpu.vgicLrHi[lr]!;
    const signals = (hi & ICH_LR_STATE) === 0 && (hi & ICH_LR_EOI) !== 0 && (hi & ICH_LR_HW) === 0;
    return signals ? vcpu.vgicLr[lr]! : -1;
  }

  /** The body of vgic_v3_fold_lr_state's loop for one LR (GICv3 guest), after its ack notification. */
  foldLr(vcpu: VgicCpu, lr: number): void {
    const hi = vcpu.vgicLrHi[lr]!;
    this.vgic.vgicFoldLrIrq(vcpu, vcpu.vgicLr[lr]!, (hi & ICH_LR_ACTIVE_BIT) !== 0, (hi & ICH_LR_PENDING_BIT) !== 0);
  }

  /** vgic_v3_load: ICH_VMCR_EL2 (SRE = 1) and __vgic_v3_restore_aprs (AP1R0) in. */
  load(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = ich(hw);
    vif.writeVmcr(vcpu.vgicVmcr);
    vif.writeAp1r(0, vcpu.vgicApr);
  }

  /** vgic_v3_put: vgic_v3_vmcr_sync, then __vgic_v3_save_aprs. */
  put(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = ich(hw);
    vcpu.vgicVmcr = vif.readVmcr();
    vcpu.vgicApr = vif.readAp1r(0);
  }

  /**
   * __vgic_v3_restore_state: with LRs in use or GICv4 vPEs (its_vpe.its_vm: a direct vLPI needs En), program
   * ICH_HCR_EL2 and the used LRs (else ICH_HCR_EL2 stays 0).
   */
  restoreState(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = ich(hw);
    const used = vcpu.usedLrs;
    if (used === 0 && this.vgic.itsVm === null) return;
    vif.writeHcr(vcpu.vgicHcr);
    for (let i = 0; i < used; i++) {
      const hi = vcpu.vgicLrHi[i]!;
      vif.writeLrWords(i, vcpu.vgicLr[i]!, hi);
      if ((hi & ICH_LR_HW) !== 0 && (hi & ICH_LR_STATE) !== 0) {
        this.vgic.observeHwLr(vcpu, i, vcpu.vgicLr[i]!, hi & ICH_LR_PHYS_ID_MASK);
      }
    }
    const tr = this.vgic.traceLr;
    if (tr !== null)
      for (let i = 0; i < used; i++) {
        const hi = vcpu.vgicLrHi[i]!;
        const f = LR_TRACE;
        f.vintid = vcpu.vgicLr[i]!;
        f.hw = (hi & ICH_LR_HW) !== 0;
        f.pintid = f.hw ? hi & ICH_LR_PHYS_ID_MASK : 0;
        f.eoi = !f.hw && (hi & ICH_LR_EOI) !== 0;
        f.state = hi >>> ICH_LR_STATE_SHIFT;
        tr.lrWrite(vcpu, i, f);
      }
  }

  /**
   * __vgic_v3_save_state: with LRs in use (or GICv4 vPEs), read ICH_ELRSR_EL2, write ICH_HCR_EL2 without En (which drops the
   * maintenance line), then each used LR either known empty (keep the shadow, state cleared) or read back, and zeroed.
   * VMCR is read back here too (vgic_v3_vmcr_sync runs before the vCPU blocks, when the model's readers look at it).
   */
  saveState(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = ich(hw);
    vcpu.vgicVmcr = vif.readVmcr();
    const used = vcpu.usedLrs;
    if (used === 0 && this.vgic.itsVm === null) return;
    const elrsr = vif.readElrsr();
    vif.writeHcr(vcpu.vgicHcr & ~ICH_HCR_EN);
    for (let i = 0; i < used; i++) {
      if (((elrsr >>> i) & 1) !== 0) {
        vcpu.vgicLrHi[i] = (vcpu.vgicLrHi[i]! & ~ICH_LR_STATE) >>> 0;
      } else {
        vcpu.vgicLr[i] = vif.lrLow(i);
        vcpu.vgicLrHi[i] = vif.lrHigh(i);
      }
      vif.writeLrWords(i, 0, 0);
    }
  }

  /** ICH_VMCR_EL2.VPMR: the guest's ICC_PMR_EL1. */
  guestPriorityMask(vcpu: VgicCpu): number {
    return vcpu.vgicVmcr >>> ICH_VMCR_PMR_SHIFT;
  }
}
