/**
 * The GICv2 backend of the vGIC, after arch/arm64/kvm/vgic/vgic-v2.c (Linux 6.1): the GICH_LR format, populate and
 * fold of one list register, underflow, and the vCPU interface's load/put and save/restore against the physical
 * CPU's GicVirtualInterface. The shadow state lives in VgicCpu (struct vgic_v2_cpu_if: vgicLr, vgicHcr, vgicVmcr,
 * vgicApr). Synchronous; nothing allocates.
 */
import { GicVirtualInterface } from '../../hw/gic/virtualInterface.js';
import { ModelError } from '../../sim/errors.js';
import { LR_TRACE, type Vgic, type VgicBackend, type VgicCpu, type VgicHwInterface } from './vgic.js';
import {
  irqIsPending,
  VGIC_CONFIG_EDGE,
  VGIC_CONFIG_LEVEL,
  type VgicIrq,
  vgicIrqIsMappedLevel,
  vgicIrqIsMultiSgi,
  vgicIrqIsSgi,
} from './vgicIrq.js';

// ---- GICH bits used by KVM (values as in src/hw/gic/regs.ts, IHI 0048B §5.3) ------------------------------------

const GICH_HCR_EN = 1 << 0;
const GICH_HCR_UIE = 1 << 1;
const GICH_LR_PHYSID_CPUID_SHIFT = 10;
const GICH_LR_PHYSID_CPUID = 0x3ff << GICH_LR_PHYSID_CPUID_SHIFT;
const GICH_LR_EOI = 1 << 19;
const GICH_LR_PRIORITY_SHIFT = 23;
const GICH_LR_PENDING_BIT = 1 << 28;
const GICH_LR_ACTIVE_BIT = 1 << 29;
const GICH_LR_STATE_SHIFT = 28;
const GICH_LR_STATE = 3 << GICH_LR_STATE_SHIFT;
const GICH_LR_GROUP1 = 1 << 30;
const GICH_LR_HW = 0x80000000;
const GICH_LR_VIRTUALID = 0x3ff;
const GICH_VMCR_PRIMASK_SHIFT = 27;
const GICV_PMR_PRIORITY_SHIFT = 3;

const ffs8 = (v: number): number => 31 - Math.clz32(v & -v);

/** The GICv2 virtual interface behind `vif`: a vGIC-v2 runs on GICH (a GICv3 host's GICv2 compatibility is absent). */
function gich(vif: VgicHwInterface): GicVirtualInterface {
  if (!(vif instanceof GicVirtualInterface)) throw new ModelError('vGIC-v2 needs a GICv2 virtual interface (GICH)');
  return vif;
}

export class VgicV2 implements VgicBackend {
  constructor(private readonly vgic: Vgic) {}

  /** vgic_v2_probe: nr_lr from GICH_VTR.ListRegs. */
  nrLrOf(vif: VgicHwInterface): number {
    return (gich(vif).readVtr() & 0x3f) + 1;
  }

  /** vgic_v2_enable / vgic_v2_reset: VMCR 0 (reset binary points), HCR.En. */
  enable(vcpu: VgicCpu): void {
    vcpu.vgicVmcr = 0;
    vcpu.vgicHcr = GICH_HCR_EN;
  }

  /** vgic_v2_compute_lr: the GICH_LR value for irq (without side effects). */
  computeLr(irq: VgicIrq): number {
    let val = irq.intid;
    let allowPending = true;
    if (irq.active) {
      val |= GICH_LR_ACTIVE_BIT;
      if (vgicIrqIsSgi(irq.intid)) val |= irq.activeSource << GICH_LR_PHYSID_CPUID_SHIFT;
      if (vgicIrqIsMultiSgi(irq)) {
        allowPending = false;
        val |= GICH_LR_EOI;
      }
    }
    if (irq.group !== 0) val |= GICH_LR_GROUP1;
    if (irq.hw) {
      // "Never set pending+active on a HW interrupt, as the pending state is kept at the physical distributor level"
      val |= GICH_LR_HW | (irq.hwintid << GICH_LR_PHYSID_CPUID_SHIFT);
      if (irq.active) allowPending = false;
    } else if (irq.config === VGIC_CONFIG_LEVEL) {
      val |= GICH_LR_EOI; // EOI maintenance so that we resample the line (and notify ack listeners)
      if (irq.active) allowPending = false; // software resampling and P+A do not mix
    }
    if (allowPending && irqIsPending(irq)) {
      val |= GICH_LR_PENDING_BIT;
      if (vgicIrqIsSgi(irq.intid)) {
        if (irq.source === 0) throw new ModelError(`no SGI source for ${irq} (WARN in vgic_v2_compute_lr)`);
        const src = ffs8(irq.source);
        val |= src << GICH_LR_PHYSID_CPUID_SHIFT;
        if ((irq.source & ~(1 << src)) !== 0) val |= GICH_LR_EOI; // more sources: come back on EOI
      }
    }
    val |= (irq.priority >>> 3) << GICH_LR_PRIORITY_SHIFT; // the GICv2 LR only holds five bits of priority
    return val >>> 0;
  }

  /**
   * vgic_v2_populate_lr: an edge's latch is consumed by a pending LR; an SGI gives up its lowest source; a mapped
   * level vIRQ lowers its line level so a new rising edge can be taken.
   */
  populateLr(vcpu: VgicCpu, irq: VgicIrq, lr: number): void {
    const val = this.computeLr(irq);
    vcpu.vgicLr[lr] = val;
    if ((val & GICH_LR_PENDING_BIT) !== 0) {
      if (irq.config === VGIC_CONFIG_EDGE) irq.pendingLatch = false;
      if (vgicIrqIsSgi(irq.intid)) {
        irq.source &= ~(1 << ffs8(irq.source));
        if (irq.source !== 0) irq.pendingLatch = true;
      }
      if (vgicIrqIsMappedLevel(irq)) irq.lineLevel = false;
    }
  }

  clearLr(vcpu: VgicCpu, lr: number): void {
    vcpu.vgicLr[lr] = 0;
  }

  setUnderflow(vcpu: VgicCpu): void {
    vcpu.vgicHcr = (vcpu.vgicHcr | GICH_HCR_UIE) >>> 0;
  }

  clearUnderflow(vcpu: VgicCpu): void {
    vcpu.vgicHcr = (vcpu.vgicHcr & ~GICH_HCR_UIE) >>> 0;
  }

  /** lr_signals_eoi_mi: an LR that requested EOI maintenance and has been deactivated (HW=0). */
  eoiMaintenanceIntid(vcpu: VgicCpu, lr: number): number {
    const val = vcpu.vgicLr[lr]!;
    const signals = (val & GICH_LR_STATE) === 0 && (val & GICH_LR_EOI) !== 0 && (val & GICH_LR_HW) === 0;
    return signals ? val & GICH_LR_VIRTUALID : -1;
  }

  /** The body of vgic_v2_fold_lr_state's loop for one LR, after its ack notification. */
  foldLr(vcpu: VgicCpu, lr: number): void {
    const val = vcpu.vgicLr[lr]!;
    const intid = val & GICH_LR_VIRTUALID;
    const cpuid = (val >>> GICH_LR_PHYSID_CPUID_SHIFT) & 7;
    const pending = (val & GICH_LR_PENDING_BIT) !== 0;
    const irq = this.vgic.vgicFoldLrIrq(vcpu, intid, (val & GICH_LR_ACTIVE_BIT) !== 0, pending);
    // a GICv2 SGI keeps its source CPU: of the active instance, and of a pending one given back
    if (vgicIrqIsSgi(intid)) {
      if (irq.active) irq.activeSource = cpuid;
      if (irq.config === VGIC_CONFIG_EDGE && pending) irq.source |= 1 << cpuid;
    }
  }

  /** vgic_v2_load: VMCR and APR in. */
  load(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = gich(hw);
    vif.writeVmcr(vcpu.vgicVmcr);
    vif.writeApr(vcpu.vgicApr);
  }

  /** vgic_v2_put: VMCR and APR out. */
  put(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = gich(hw);
    vcpu.vgicVmcr = vif.readVmcr();
    vcpu.vgicApr = vif.readApr();
  }

  /** vgic_v2_restore_state: with LRs in use, program GICH_HCR and the used LRs (else GICH_HCR stays 0). */
  restoreState(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = gich(hw);
    if (vcpu.usedLrs === 0) return;
    vif.writeHcr(vcpu.vgicHcr);
    for (let i = 0; i < vcpu.usedLrs; i++) {
      const val = vcpu.vgicLr[i]!;
      vif.writeLr(i, val);
      if ((val & GICH_LR_HW) !== 0 && (val & GICH_LR_STATE) !== 0) {
        this.vgic.observeHwLr(vcpu, i, val & GICH_LR_VIRTUALID, (val >>> GICH_LR_PHYSID_CPUID_SHIFT) & 0x3ff);
      }
    }
    const tr = this.vgic.traceLr;
    if (tr !== null)
      for (let i = 0; i < vcpu.usedLrs; i++) {
        const val = vcpu.vgicLr[i]!;
        const f = LR_TRACE;
        f.vintid = val & GICH_LR_VIRTUALID;
        f.hw = (val & GICH_LR_HW) !== 0;
        f.pintid = f.hw ? (val & GICH_LR_PHYSID_CPUID) >>> GICH_LR_PHYSID_CPUID_SHIFT : 0;
        f.eoi = (val & GICH_LR_EOI) !== 0;
        f.state = (val & GICH_LR_STATE) >>> GICH_LR_STATE_SHIFT;
        tr.lrWrite(vcpu, i, f);
      }
  }

  /**
   * vgic_v2_save_state: with LRs in use, each one either known empty (ELRSR: keep the shadow, state cleared) or read
   * back, then zeroed, and GICH_HCR cleared (which drops the maintenance line). VMCR is read back here too: in the
   * kernel kvm_vgic_vmcr_sync does it before the vCPU blocks, which is when the model's readers look at it.
   */
  saveState(vcpu: VgicCpu, hw: VgicHwInterface): void {
    const vif = gich(hw);
    vcpu.vgicVmcr = vif.readVmcr();
    const used = vcpu.usedLrs;
    if (used === 0) return;
    const elrsr0 = vif.readElrsr(0);
    const elrsr1 = used > 32 ? vif.readElrsr(1) : 0;
    for (let i = 0; i < used; i++) {
      const empty = i < 32 ? (elrsr0 >>> i) & 1 : (elrsr1 >>> (i - 32)) & 1;
      if (empty !== 0) vcpu.vgicLr[i] = (vcpu.vgicLr[i]! & ~GICH_LR_STATE) >>> 0;
      else vcpu.vgicLr[i] = vif.readLr(i);
      vif.writeLr(i, 0);
    }
    vif.writeHcr(0);
  }

  /** GICH_VMCR.PriMask as a GICV_PMR value. */
  guestPriorityMask(vcpu: VgicCpu): number {
    return (vcpu.vgicVmcr >>> GICH_VMCR_PRIMASK_SHIFT) << GICV_PMR_PRIORITY_SHIFT;
  }
}
