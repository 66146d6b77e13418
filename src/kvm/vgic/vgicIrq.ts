/**
 * struct vgic_irq (include/kvm/arm_vgic.h): the emulated state of one virtual interrupt of a VM — SGIs and PPIs per
 * vCPU, SPIs per VM, LPIs per VM while something holds a reference (vgicLpi.ts). The ap-list a vIRQ sits on is an array owned by its
 * VgicCpu; `vcpu` says which one (NULL-equivalent `null` when on none), exactly as irq->vcpu does in the kernel.
 */
import type { VgicCpu } from './vgic.js';

/** enum vgic_irq_config (include/kvm/arm_vgic.h): EDGE = 0, so a zero-initialised SPI is edge-triggered. */
export const VGIC_CONFIG_EDGE = 0;
export const VGIC_CONFIG_LEVEL = 1;
export type VgicIrqConfig = typeof VGIC_CONFIG_EDGE | typeof VGIC_CONFIG_LEVEL;

export const VGIC_NR_SGIS = 16;
export const VGIC_NR_PPIS = 16;
export const VGIC_NR_PRIVATE_IRQS = 32;
/** include/kvm/arm_vgic.h: VGIC_MAX_SPI 1019, VGIC_MAX_RESERVED 1023. */
export const VGIC_MAX_SPI = 1019;
export const VGIC_MAX_RESERVED = 1023;
/** include/kvm/arm_vgic.h VGIC_MIN_LPI: the first LPI INTID (GIC_LPI_OFFSET in vgic-its.c). */
export const VGIC_MIN_LPI = 8192;
/** vgic.h VGIC_PRI_BITS: the emulated distributor keeps 5 priority bits (GENMASK(7, 3)). */
export const VGIC_PRI_BITS = 5;
export const VGIC_PRI_MASK = (0xff << (8 - VGIC_PRI_BITS)) & 0xff;

/** struct irq_ops (include/kvm/arm_vgic.h), reduced to get_input_level: a device that can sample its own line. */
export interface VgicIrqOps {
  getInputLevel?(vintid: number): boolean;
}

// The bits of VgicIrq.state: struct vgic_irq's booleans, config, group, priority, GICD_ITARGETSR byte and GICv2 SGI
// active source, packed so that a checker's state key and copy read one value in place of eleven (the same state:
// each field keeps its own bits and its kernel name, as a getter and setter on the prototype).
const LINE_LEVEL = 1 << 0;
const PENDING_LATCH = 1 << 1;
const ACTIVE = 1 << 2;
const ENABLED = 1 << 3;
const ON_LR = 1 << 4;
const HW = 1 << 5;
const CONFIG_SHIFT = 6;
const GROUP_SHIFT = 7;
const PRIORITY_SHIFT = 8;
const TARGETS_SHIFT = 16;
const ACTIVE_SOURCE_SHIFT = 24;

/**
 * The fields of struct vgic_irq an in-kernel user sets when it binds a vIRQ — kvm_vgic_map_phys_irq (hwintid, host_irq,
 * ops) and kvm_vgic_set_owner (owner) — kept apart: most vIRQs never have one, and a state key then reads one null in
 * place of four zeros.
 */
class VgicIrqBinding {
  owner: unknown = null;
  hwintid = 0;
  hostIrq = 0;
  ops: VgicIrqOps | null = null;
}

export class VgicIrq {
  // Fields are laid out in declaration order: the state every inject, flush and fold reads first, then what only
  // set-up, GICv2 SGIs, LPIs or routing changes use.
  readonly intid: number;
  /** Checker object id: the irq_lock and the state it protects. */
  readonly oid: number;
  /**
   * Packed (bits above): line_level, pending_latch, active, enabled, on-LR, hw, config, group, priority, targets,
   * active_source — read and written through the accessors below.
   */
  private state = 0;
  /** GICv2 SGIs: bitmap of source vCPUs with this SGI pending (irq->source). */
  source = 0;
  /** The vCPU whose ap-list holds this vIRQ, or null (irq->vcpu). */
  vcpu: VgicCpu | null = null;
  /**
   * The vCPU this vIRQ is routed to (irq->target_vcpu, vgic_target_oracle's answer when pending), as its index in the
   * VM's vGIC vCPUs (what kvm_get_vcpu takes), -1 for none: a number, not a reference — the checker's state key and
   * copies follow one reference fewer per vIRQ (256 in a GICv2 VM). Vgic.targetVcpuOf gives the vCPU.
   */
  targetVcpuIdx: number;
  /** What an in-kernel user bound to this vIRQ, null while nothing is (each field then reads as its zero). */
  private binding: VgicIrqBinding | null = null;
  /** GICv3 GICD_IROUTER affinity Aff2.Aff1.Aff0 of an SPI (irq->mpidr). */
  mpidr = 0;
  /**
   * LPIs only (irq->refcount): the long-lived references — an ITS translation entry, the ap-list, a translation-cache
   * entry. The kernel's transient vgic_get_irq/vgic_put_irq pairs inside one step cancel out and are not counted.
   */
  refcount = 0;

  constructor(intid: number, oid: number, targetVcpu: VgicCpu | null, config: VgicIrqConfig) {
    this.intid = intid;
    this.oid = oid;
    this.targetVcpuIdx = targetVcpu === null ? -1 : targetVcpu.id;
    this.config = config;
  }

  /** In-kernel device that may inject this vIRQ (kvm_vgic_set_owner); null = userspace. */
  get owner(): unknown {
    return this.binding === null ? null : this.binding.owner;
  }
  set owner(o: unknown) {
    this.bound().owner = o;
    this.unbindIfClear();
  }
  /** Physical INTID at the root irqchip (the GIC), not the Linux IRQ number. */
  get hwintid(): number {
    return this.binding === null ? 0 : this.binding.hwintid;
  }
  set hwintid(i: number) {
    this.bound().hwintid = i;
    this.unbindIfClear();
  }
  /** Linux IRQ number of the mapped physical interrupt, for irq_{get,set}_irqchip_state. */
  get hostIrq(): number {
    return this.binding === null ? 0 : this.binding.hostIrq;
  }
  set hostIrq(i: number) {
    this.bound().hostIrq = i;
    this.unbindIfClear();
  }
  get ops(): VgicIrqOps | null {
    return this.binding === null ? null : this.binding.ops;
  }
  set ops(o: VgicIrqOps | null) {
    this.bound().ops = o;
    this.unbindIfClear();
  }

  private bound(): VgicIrqBinding {
    if (this.binding === null) this.binding = new VgicIrqBinding();
    return this.binding;
  }

  /** A binding whose fields are all back to zero goes: one state, one representation (what a state key reads). */
  private unbindIfClear(): void {
    const b = this.binding!;
    if (b.owner === null && b.hwintid === 0 && b.hostIrq === 0 && b.ops === null) this.binding = null;
  }

  private flag(bit: number, on: boolean): void {
    this.state = on ? this.state | bit : this.state & ~bit;
  }

  private field(shift: number, width: number, v: number): void {
    const mask = ((1 << width) - 1) << shift;
    this.state = (this.state & ~mask) | ((v << shift) & mask);
  }

  /** Level of the input line (level-sensitive only). */
  get lineLevel(): boolean {
    return (this.state & LINE_LEVEL) !== 0;
  }
  set lineLevel(on: boolean) {
    this.flag(LINE_LEVEL, on);
  }
  /** Software pending state: edge latch, or a GICD_ISPENDR write. */
  get pendingLatch(): boolean {
    return (this.state & PENDING_LATCH) !== 0;
  }
  set pendingLatch(on: boolean) {
    this.flag(PENDING_LATCH, on);
  }
  get active(): boolean {
    return (this.state & ACTIVE) !== 0;
  }
  set active(on: boolean) {
    this.flag(ACTIVE, on);
  }
  get enabled(): boolean {
    return (this.state & ENABLED) !== 0;
  }
  set enabled(on: boolean) {
    this.flag(ENABLED, on);
  }
  /** Whether the vIRQ currently sits in a list register of its vCPU (between flush and fold). */
  get onLr(): boolean {
    return (this.state & ON_LR) !== 0;
  }
  set onLr(on: boolean) {
    this.flag(ON_LR, on);
  }
  /** Mapped to a physical interrupt (kvm_vgic_map_phys_irq). */
  get hw(): boolean {
    return (this.state & HW) !== 0;
  }
  set hw(on: boolean) {
    this.flag(HW, on);
  }
  get config(): VgicIrqConfig {
    return ((this.state >>> CONFIG_SHIFT) & 1) as VgicIrqConfig;
  }
  set config(c: VgicIrqConfig) {
    this.field(CONFIG_SHIFT, 1, c);
  }
  /** 0 = group 0; a GICv2 guest's interrupts start in group 0 (vgic-init.c kvm_vgic_dist_init). */
  get group(): number {
    return (this.state >>> GROUP_SHIFT) & 1;
  }
  set group(g: number) {
    this.field(GROUP_SHIFT, 1, g);
  }
  /** 8-bit priority, low 3 bits always 0 (VGIC_PRI_BITS). */
  get priority(): number {
    return (this.state >>> PRIORITY_SHIFT) & 0xff;
  }
  set priority(p: number) {
    this.field(PRIORITY_SHIFT, 8, p);
  }
  /** GICv2 GICD_ITARGETSR byte (CPU mask); for private IRQs the owning vCPU's bit. */
  get targets(): number {
    return (this.state >>> TARGETS_SHIFT) & 0xff;
  }
  set targets(t: number) {
    this.field(TARGETS_SHIFT, 8, t);
  }
  /** GICv2 SGIs: the source vCPU of the active instance (irq->active_source). */
  get activeSource(): number {
    return (this.state >>> ACTIVE_SOURCE_SHIFT) & 0xff;
  }
  set activeSource(s: number) {
    this.field(ACTIVE_SOURCE_SHIFT, 8, s);
  }

  toString(): string {
    return `vIRQ${this.intid}`;
  }
}

/** vgic.h irq_is_pending: edge = pending latch; level = latch or line. */
export function irqIsPending(irq: VgicIrq): boolean {
  return irq.config === VGIC_CONFIG_EDGE ? irq.pendingLatch : irq.pendingLatch || irq.lineLevel;
}

/** vgic.h vgic_irq_is_mapped_level. */
export function vgicIrqIsMappedLevel(irq: VgicIrq): boolean {
  return irq.config === VGIC_CONFIG_LEVEL && irq.hw;
}

export const vgicIrqIsSgi = (intid: number): boolean => intid < VGIC_NR_SGIS;
export const irqIsPpi = (intid: number): boolean => intid >= VGIC_NR_SGIS && intid < VGIC_NR_PRIVATE_IRQS;

function popcount8(v: number): number {
  let n = 0;
  for (let x = v & 0xff; x !== 0; x &= x - 1) n++;
  return n;
}

/** vgic.h vgic_irq_get_lr_count: a GICv2 SGI needs one LR per pending source (plus one if active). */
export function vgicIrqGetLrCount(irq: VgicIrq): number {
  if (vgicIrqIsSgi(irq.intid) && irq.source !== 0) return popcount8(irq.source) + (irq.active ? 1 : 0);
  return irqIsPending(irq) || irq.active ? 1 : 0;
}

/** vgic.h vgic_irq_is_multi_sgi. */
export function vgicIrqIsMultiSgi(irq: VgicIrq): boolean {
  return vgicIrqGetLrCount(irq) > 1;
}
