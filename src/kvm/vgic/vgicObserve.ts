/**
 * Read-only observers of a VM's vGIC for tests outside the model: the state of one vIRQ (struct vgic_irq's fields
 * and where it sits on an ap-list) and a vCPU's list registers. They read public fields only and change nothing.
 */
import { decodeLr, type LrFields } from '../../hw/gic/listRegister.js';
import { GICH_HCR_EN } from '../../hw/gic/regs.js';
import { GicVirtualInterface } from '../../hw/gic/virtualInterface.js';
import { decodeLr as decodeLrV3, type LrFields as LrFieldsV3, lrToBigInt } from '../../hw/gicv3/listRegister.js';
import { ICH_HCR_EN } from '../../hw/gicv3/regs.js';
import { Gicv3VirtualInterface } from '../../hw/gicv3/virtualInterface.js';
import { ModelError } from '../../sim/errors.js';
import type { Vgic, VgicCpu } from './vgic.js';
import { irqIsPending, VGIC_CONFIG_LEVEL, VGIC_NR_PRIVATE_IRQS } from './vgicIrq.js';

export interface VgicIrqState {
  intid: number;
  /** irq_is_pending: the latch, or (level) the line. */
  pending: boolean;
  /** The software pending latch (edge, or GICD_ISPENDR). */
  pendingLatch: boolean;
  /** The input line level (level-sensitive vIRQs). */
  lineLevel: boolean;
  active: boolean;
  enabled: boolean;
  config: 'edge' | 'level';
  priority: number;
  /** Mapped to a physical interrupt (kvm_vgic_map_phys_irq), and its physical INTID (0 when not). */
  hw: boolean;
  hwintid: number;
  /** kvm_vgic_set_owner: an in-kernel device owns it (only that owner may inject). */
  owned: boolean;
  /** GICD_ITARGETSR byte (SPIs). */
  targets: number;
  /** vgic_target_oracle's vCPU (targetVcpu), or -1. */
  targetVcpu: number;
  /** The vCPU whose ap-list holds it (irq->vcpu), or -1; its position on that list, or -1. */
  apVcpu: number;
  apPos: number;
  /** Between flush and fold: it sits in a list register. */
  onLr: boolean;
}

export interface VgicListRegister extends LrFields {
  /** LR index. */
  index: number;
  /** The raw GICH_LRn value. */
  value: number;
}

export interface VgicV3ListRegister extends LrFieldsV3 {
  index: number;
  /** The raw ICH_LR<n>_EL2 value. */
  value: bigint;
}

function cpuOf(vgic: Vgic, vcpu: number): VgicCpu {
  const c = vgic.vcpus[vcpu];
  if (c === undefined) throw new ModelError(`the vGIC has no vCPU ${vcpu} (it has ${vgic.vcpus.length})`);
  return c;
}

/** The state of vIRQ `intid` (a private one as seen by vCPU `vcpu`, default 0). */
export function vgicIrqState(vgic: Vgic, intid: number, vcpu = 0): VgicIrqState {
  const irq =
    intid >= 0 && intid < VGIC_NR_PRIVATE_IRQS ? vgic.vgicGetVcpuIrq(cpuOf(vgic, vcpu), intid) : vgic.vgicGetIrq(intid);
  if (irq === null) throw new ModelError(`the vGIC has no INTID ${intid} (${vgic.nrIrqs} INTIDs)`);
  const on = irq.vcpu;
  let apPos = -1;
  for (let i = 0; on !== null && i < on.apCount; i++) if (on.ap(i) === irq) apPos = i;
  return {
    intid: irq.intid,
    pending: irqIsPending(irq),
    pendingLatch: irq.pendingLatch,
    lineLevel: irq.lineLevel,
    active: irq.active,
    enabled: irq.enabled,
    config: irq.config === VGIC_CONFIG_LEVEL ? 'level' : 'edge',
    priority: irq.priority,
    hw: irq.hw,
    hwintid: irq.hw ? irq.hwintid : 0,
    owned: irq.owner !== null,
    targets: irq.targets,
    targetVcpu: irq.targetVcpuIdx,
    apVcpu: on?.id ?? -1,
    apPos,
    onLr: irq.onLr,
  };
}

/** The INTIDs on vCPU `vcpu`'s ap-list, in list order. */
export function vgicApList(vgic: Vgic, vcpu: number): number[] {
  const c = cpuOf(vgic, vcpu);
  const out: number[] = [];
  for (let i = 0; i < c.apCount; i++) out.push(c.ap(i).intid);
  return out;
}

/**
 * The list registers of vCPU `vcpu` in use: the live GICH_LRs while the vCPU runs (between vgic_v2_restore_state
 * and vgic_v2_save_state, when the GICH_HCR of its CPU is enabled), else the shadow copy of the last save. Invalid
 * LRs are left out.
 */
export function vgicListRegisters(vgic: Vgic, vcpu: number): VgicListRegister[] {
  if (vgic.isV3) throw new ModelError('a vGIC-v3 has 64-bit list registers: read them with vgicV3ListRegisters');
  const c = cpuOf(vgic, vcpu);
  const vif = c.vif;
  const live = vif instanceof GicVirtualInterface && (vif.readHcr() & GICH_HCR_EN) !== 0;
  const out: VgicListRegister[] = [];
  for (let i = 0; i < c.usedLrs; i++) {
    const value = live ? vif.readLr(i) : c.vgicLr[i]!;
    const f = decodeLr(value);
    if (f.state !== 0) out.push({ index: i, value, ...f });
  }
  return out;
}

/** vgicListRegisters for a vGIC-v3: the live ICH_LR<n>_EL2 while the vCPU runs (ICH_HCR_EL2.En), else the shadow. */
export function vgicV3ListRegisters(vgic: Vgic, vcpu: number): VgicV3ListRegister[] {
  if (!vgic.isV3) throw new ModelError('a vGIC-v2 has GICH list registers: read them with vgicListRegisters');
  const c = cpuOf(vgic, vcpu);
  const vif = c.vif;
  const live = vif instanceof Gicv3VirtualInterface && (vif.readHcr() & ICH_HCR_EN) !== 0;
  const out: VgicV3ListRegister[] = [];
  for (let i = 0; i < c.usedLrs; i++) {
    const value = live ? vif.readLr(i) : lrToBigInt(c.vgicLr[i]!, c.vgicLrHi[i]!);
    const f = decodeLrV3(value);
    if (f.state !== 0) out.push({ index: i, value, ...f });
  }
  return out;
}
