// GICv2 physical CPU interface (ARM IHI 0048B §3.2, §3.3, §4.4), Non-secure GICC_CTLR layout as Linux's
// irq-gic.c uses it (bit 0 Enable, bit 9 EOImodeNS). One per CPU; its IRQ output goes to the processor.
import { ModelError } from '../../sim/errors.js';
import { touch } from '../../sim/footprint.js';
import * as U from '../../trace/gicUnpredictable.js';
import type { GicDistributor, GicDistributorListener } from './distributor.js';
import {
  GIC_CPU_ACTIVEPRIO,
  GIC_CPU_BINPOINT,
  GIC_CPU_CTRL,
  GIC_CPU_CTRL_EOImodeNS,
  GIC_CPU_DEACTIVATE,
  GIC_CPU_EOI,
  GIC_CPU_HIGHPRI,
  GIC_CPU_IDENT,
  GIC_CPU_INTACK,
  GIC_CPU_PRIMASK,
  GIC_CPU_RUNNINGPRI,
  GICC_CTLR_NS_MASK,
  GICC_ENABLE,
  GICC_IAR_INT_ID_MASK,
  GICC_IIDR_GIC400,
  groupPriorityMask,
  IDLE_PRIORITY,
  SPURIOUS_INTID,
} from './regs.js';

/**
 * Where a CPU interface drives its CPU's nIRQ input, and a virtual interface its nVIRQ (the engine implements both).
 * Objects with a method rather than callbacks: the wiring is then plain data, and a copy of the machine drives its own
 * copy of the engine.
 */
export interface IrqLineSink {
  setIrqLine(cpu: number, level: boolean): void;
}
export interface VirqLineSink {
  setVirqLine(cpu: number, level: boolean): void;
}

export interface GicCpuInterfaceOptions {
  cpu: number;
  distributor: GicDistributor;
  /** Where the IRQ output goes (the engine). */
  irqSink?: IrqLineSink;
}

const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);

export class GicCpuInterface implements GicDistributorListener {
  readonly cpu: number;
  /** Count of UNPREDICTABLE accesses absorbed (EOI with nothing active, DIR with EOImode 0, ...), for checkers. */
  unpredictableCount = 0;
  private line = false;
  private ctlr = 0;
  private pmr = 0;
  private bpr: number;
  private readonly dist: GicDistributor;
  private readonly irqSink: IrqLineSink | undefined;
  /** GICC_APRn: one bit per preemption level, bit i ↔ group priority i << levelShift (§4.4 GICC_APRn). */
  private readonly apr: Uint32Array;
  private readonly levelShift: number;
  readonly minBpr: number;

  constructor(opts: GicCpuInterfaceOptions) {
    if (!Number.isInteger(opts.cpu) || opts.cpu < 0 || opts.cpu >= opts.distributor.nrCpus) {
      throw new ModelError(`bad CPU ${opts.cpu} (nrCpus ${opts.distributor.nrCpus})`);
    }
    this.cpu = opts.cpu;
    this.dist = opts.distributor;
    this.irqSink = opts.irqSink;
    const preemptionBits = Math.min(this.dist.priorityBits, 7); // group priority is at most bits [7:1]
    this.levelShift = 8 - preemptionBits;
    this.minBpr = 7 - preemptionBits;
    this.bpr = this.minBpr;
    this.apr = new Uint32Array(Math.max(1, (1 << preemptionBits) >> 5));
    this.dist.attach(this.cpu, this);
  }

  /** The IRQ output to the processor. */
  get irqLine(): boolean {
    return this.line;
  }
  get eoiMode(): boolean {
    return (this.ctlr & GIC_CPU_CTRL_EOImodeNS) !== 0;
  }

  // ---- guest-of-the-hardware (host kernel) accesses ----

  /** GICC_IAR read: acknowledge the signalled interrupt, or 1023 (§4.4 GICC_IAR). */
  readIar(): number {
    touch(this.dist.giccOid[this.cpu]!);
    const v = this.signalled();
    if (v === SPURIOUS_INTID) return v;
    // Push the running priority before the distributor recomputes, so the IRQ line sees it.
    this.setAprBit(this.groupPriority(this.dist.priorityOf(v & GICC_IAR_INT_ID_MASK, this.cpu)));
    return this.dist.acknowledge(this.cpu);
  }

  /**
   * GICC_EOIR write: priority drop (the highest active priority level is cleared); with EOImodeNS = 0 also
   * deactivation of the INTID (§3.2.1, §4.4.5). With EOImodeNS = 1 the interrupt stays active until GICC_DIR.
   */
  writeEoir(value: number): void {
    touch(this.dist.giccOid[this.cpu]!);
    const intid = value & GICC_IAR_INT_ID_MASK;
    if (intid >= 1020) return; // §4.4.5 GICC_EOIR: special INTIDs (incl. 1023 spurious) are ignored
    this.checkIntid(intid, 'GICC_EOIR');
    if (!this.priorityDrop()) this.unpredictable(U.GICC_EOIR, U.NO_ACTIVE_PRIORITY, intid);
    if (!this.eoiMode && !this.dist.deactivate(intid, this.cpu)) this.unpredictable(U.GICC_EOIR, U.INACTIVE, intid);
    this.update();
  }

  /** GICC_DIR write: deactivation only (§4.4 GICC_DIR); UNPREDICTABLE with EOImodeNS = 0, modelled as ignored. */
  writeDir(value: number): void {
    touch(this.dist.giccOid[this.cpu]!);
    const intid = value & GICC_IAR_INT_ID_MASK;
    if (intid >= 1020) return;
    this.checkIntid(intid, 'GICC_DIR');
    if (!this.eoiMode) {
      this.unpredictable(U.GICC_DIR, U.DIR_EOIMODE_0, intid);
      return;
    }
    if (!this.dist.deactivate(intid, this.cpu)) this.unpredictable(U.GICC_DIR, U.INACTIVE, intid);
  }

  private unpredictable(reg: number, why: number, intid: number): void {
    this.unpredictableCount++;
    this.dist.onUnpredictable?.(this.cpu, reg, why, intid);
  }

  /** GICC_RPR: group priority of the highest active preemption level, 0xFF when idle. */
  readRpr(): number {
    for (let i = 0; i < this.apr.length; i++) {
      const w = this.apr[i]!;
      if (w !== 0) return (i * 32 + lowestBit(w)) << this.levelShift;
    }
    return IDLE_PRIORITY;
  }

  /** GICC_HPPIR: the highest-priority pending interrupt for this CPU (with SGI source), 1023 if none. */
  readHppir(): number {
    touch(this.dist.giccOid[this.cpu]!);
    return this.dist.highestPending(this.cpu);
  }

  setCtlr(value: number): void {
    touch(this.dist.giccOid[this.cpu]!);
    this.ctlr = value & GICC_CTLR_NS_MASK;
    this.update();
  }
  get ctlrValue(): number {
    return this.ctlr;
  }
  setPmr(value: number): void {
    touch(this.dist.giccOid[this.cpu]!);
    this.pmr = value & this.dist.priorityMask;
    this.update();
  }
  get pmrValue(): number {
    return this.pmr;
  }
  /** GICC_BPR: values below the minimum read back as the minimum (§3.3 priority grouping). */
  setBpr(value: number): void {
    touch(this.dist.giccOid[this.cpu]!);
    this.bpr = Math.max(value & 7, this.minBpr);
    this.update();
  }
  get bprValue(): number {
    return this.bpr;
  }
  readApr(n: number): number {
    touch(this.dist.giccOid[this.cpu]!);
    return n < this.apr.length ? this.apr[n]! >>> 0 : 0;
  }
  /** GICC_APRn write (save/restore of the active priorities, e.g. across CPU suspend). */
  writeApr(n: number, value: number): void {
    touch(this.dist.giccOid[this.cpu]!);
    if (n >= this.apr.length) return;
    this.apr[n] = value;
    this.update();
  }

  // ---- MMIO ----

  read(offset: number): number {
    touch(this.dist.giccOid[this.cpu]!);
    switch (offset) {
      case GIC_CPU_CTRL:
        return this.ctlr;
      case GIC_CPU_PRIMASK:
        return this.pmr;
      case GIC_CPU_BINPOINT:
        return this.bpr;
      case GIC_CPU_INTACK:
        return this.readIar();
      case GIC_CPU_RUNNINGPRI:
        return this.readRpr();
      case GIC_CPU_HIGHPRI:
        return this.readHppir();
      case GIC_CPU_IDENT:
        return GICC_IIDR_GIC400;
    }
    if (offset >= GIC_CPU_ACTIVEPRIO && offset < GIC_CPU_ACTIVEPRIO + 16) return this.readApr((offset & 0xf) >> 2);
    return 0; // ABPR (Non-secure view: RAZ/WI), write-only EOIR/DIR, reserved
  }

  write(offset: number, value: number): void {
    touch(this.dist.giccOid[this.cpu]!);
    value >>>= 0;
    if (offset === GIC_CPU_CTRL) this.setCtlr(value);
    else if (offset === GIC_CPU_PRIMASK) this.setPmr(value);
    else if (offset === GIC_CPU_BINPOINT) this.setBpr(value);
    else if (offset === GIC_CPU_EOI) this.writeEoir(value);
    else if (offset === GIC_CPU_DEACTIVATE) this.writeDir(value);
    else if (offset >= GIC_CPU_ACTIVEPRIO && offset < GIC_CPU_ACTIVEPRIO + 16) {
      this.writeApr((offset & 0xf) >> 2, value);
    }
  }

  // ---- IRQ output ----

  /** Recomputes the IRQ output; called by the distributor after each state change. */
  update(): void {
    const level = this.signalled() !== SPURIOUS_INTID;
    if (level === this.line) return;
    this.line = level;
    this.irqSink?.setIrqLine(this.cpu, level);
  }

  /**
   * The IAR value of the interrupt this interface signals, or 1023: the distributor's best candidate must have a
   * priority higher than GICC_PMR (§3.3 priority masking) and a group priority higher than the running priority
   * (§3.3 preemption). A lower or equal priority candidate is not signalled, not skipped over.
   */
  private signalled(): number {
    if ((this.ctlr & GICC_ENABLE) === 0) return SPURIOUS_INTID;
    const v = this.dist.hppiOf(this.cpu);
    if (v === SPURIOUS_INTID) return v;
    const p = this.dist.hppiPriority(v & GICC_IAR_INT_ID_MASK, this.cpu);
    if (p >= this.pmr || this.groupPriority(p) >= this.readRpr()) return SPURIOUS_INTID;
    return v;
  }

  private checkIntid(intid: number, reg: string): void {
    if (!this.dist.isValidIntid(intid)) {
      throw new ModelError(
        `${reg} write of INTID ${intid} on CPU ${this.cpu}: no such interrupt (nrIrqs ${this.dist.nrIrqs})`,
      );
    }
  }
  private groupPriority(p: number): number {
    return p & groupPriorityMask(this.bpr);
  }
  private setAprBit(groupPrio: number): void {
    const i = groupPrio >> this.levelShift;
    this.apr[i >> 5]! |= 1 << (i & 31);
  }
  /** Clears the highest-priority active level (§3.2.1 priority drop). */
  private priorityDrop(): boolean {
    for (let i = 0; i < this.apr.length; i++) {
      const w = this.apr[i]!;
      if (w !== 0) {
        this.apr[i] = w & (w - 1);
        return true;
      }
    }
    return false;
  }
}
