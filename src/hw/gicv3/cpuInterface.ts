// GICv3 physical CPU interface of one PE: the ICC_*_EL1 system registers (ARM IHI 0069 §12.2) for Group 1 only, as
// Linux's irq-gic-v3.c uses them (gic_handle_irq reads ICC_IAR1_EL1, gic_eoi_irq writes ICC_EOIR1_EL1, with
// EOImode = 1 under KVM gic_eoimode1_eoi_irq + ICC_DIR_EL1). No Group 0 registers (IAR0/EOIR0/BPR0/AP0R,
// IGRPEN0), no Security, CBPR and PMHE RAZ/WI. Its IRQ output goes to the PE.
import { ModelError } from '../../sim/errors.js';
import { touch } from '../../sim/footprint.js';
import * as U from '../../trace/gicUnpredictable.js';
import type { IrqLineSink } from '../gic/cpuInterface.js';
import type { Gicv3Distributor, Gicv3DistributorListener } from './distributor.js';
import {
  group1PriorityMask,
  ICC_CTLR_A3V,
  ICC_CTLR_EOIMODE,
  ICC_CTLR_IDBITS_SHIFT,
  ICC_CTLR_PRIBITS_SHIFT,
  ICC_IGRPEN1_EN,
  ICC_SGI1R_AFF1_SHIFT,
  ICC_SGI1R_HI_AFF3_SHIFT,
  ICC_SGI1R_HI_IRM,
  ICC_SGI1R_HI_RS_SHIFT,
  ICC_SGI1R_SGI_ID_SHIFT,
  ICC_SGI1R_TARGET_LIST_MASK,
  ICC_SRE_EL1_VALUE,
  IDLE_PRIORITY,
  isSpecialIntid,
  packAffinity,
  SPURIOUS_INTID,
} from './regs.js';

export type { IrqLineSink, VirqLineSink } from '../gic/cpuInterface.js';

export interface Gicv3CpuInterfaceOptions {
  pe: number;
  distributor: Gicv3Distributor;
  /** Where the IRQ output goes (the engine). */
  irqSink?: IrqLineSink;
}

const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);

export class Gicv3CpuInterface implements Gicv3DistributorListener {
  readonly pe: number;
  /** UNPREDICTABLE accesses absorbed (EOI with no active priority, DIR with EOImode 0, ...), for checkers. */
  unpredictableCount = 0;
  private line = false;
  private ctlr = 0;
  private igrpen1 = 0;
  private pmr = 0;
  private bpr1: number;
  private readonly dist: Gicv3Distributor;
  private readonly irqSink: IrqLineSink | undefined;
  /** ICC_AP1R<n>_EL1: one bit per preemption level, bit i ↔ group priority i << levelShift (§12.2 ICC_AP1R<n>). */
  private readonly apr: Uint32Array;
  private readonly levelShift: number;
  /** Minimum ICC_BPR1_EL1: one more than the minimum BPR0 (§4.8.2 "Priority grouping"). */
  readonly minBpr1: number;

  constructor(opts: Gicv3CpuInterfaceOptions) {
    if (!Number.isInteger(opts.pe) || opts.pe < 0 || opts.pe >= opts.distributor.nrPes) {
      throw new ModelError(`bad PE ${opts.pe} (nrPes ${opts.distributor.nrPes})`);
    }
    this.pe = opts.pe;
    this.dist = opts.distributor;
    this.irqSink = opts.irqSink;
    const preemptionBits = Math.min(this.dist.priorityBits, 7); // a group priority is at most bits [7:1]
    this.levelShift = 8 - preemptionBits;
    this.minBpr1 = 8 - preemptionBits;
    this.bpr1 = this.minBpr1;
    this.apr = new Uint32Array(Math.max(1, (1 << preemptionBits) >> 5));
    this.dist.attach(this.pe, this);
  }

  /** The IRQ output to the PE. */
  get irqLine(): boolean {
    return this.line;
  }
  get eoiMode(): boolean {
    return (this.ctlr & ICC_CTLR_EOIMODE) !== 0;
  }

  /**
   * ICC_IAR1_EL1: acknowledges the signalled interrupt and pushes its group priority as the running priority, or
   * returns 1023 when nothing is signalled (§12.2 ICC_IAR1_EL1). No source PE is reported for SGIs.
   */
  readIar1(): number {
    touch(this.dist.iccOid[this.pe]!);
    const intid = this.signalled();
    if (intid === SPURIOUS_INTID) return intid;
    this.setAprBit(this.dist.priorityOf(intid, this.pe) & group1PriorityMask(this.bpr1));
    return this.dist.acknowledge(this.pe);
  }

  /**
   * ICC_EOIR1_EL1: priority drop of the highest active priority; with EOImode = 0 also deactivation (§4.1.1
   * "Interrupt lifecycle", §12.2 ICC_EOIR1_EL1). Special INTIDs 1020-1023 are ignored. An EOI with no active
   * priority, or of an INTID that is not active, is UNPREDICTABLE: counted, the rest still done.
   */
  writeEoir1(value: number): void {
    touch(this.dist.iccOid[this.pe]!);
    const intid = this.intidOf(value);
    if (isSpecialIntid(intid)) return;
    if (!this.priorityDrop()) this.unpredictable(U.ICC_EOIR1_EL1, U.NO_ACTIVE_PRIORITY, intid);
    if (!this.eoiMode) this.deactivate(U.ICC_EOIR1_EL1, intid);
    this.update();
  }

  /** ICC_DIR_EL1: deactivation only; UNPREDICTABLE with EOImode = 0 (§12.2 ICC_DIR_EL1), counted and ignored. */
  writeDir(value: number): void {
    touch(this.dist.iccOid[this.pe]!);
    const intid = this.intidOf(value);
    if (isSpecialIntid(intid)) return;
    if (!this.eoiMode) {
      this.unpredictable(U.ICC_DIR_EL1, U.DIR_EOIMODE_0, intid);
      return;
    }
    this.deactivate(U.ICC_DIR_EL1, intid);
  }

  /** ICC_RPR_EL1: group priority of the highest active preemption level, 0xFF when idle. */
  readRpr(): number {
    for (let i = 0; i < this.apr.length; i++) {
      const w = this.apr[i]!;
      if (w !== 0) return (i * 32 + lowestBit(w)) << this.levelShift;
    }
    return IDLE_PRIORITY;
  }
  /** ICC_HPPIR1_EL1: the highest-priority pending Group 1 interrupt for this PE (no PMR/preemption check), or 1023. */
  readHppir1(): number {
    return this.dist.highestPending(this.pe);
  }

  /** ICC_CTLR_EL1: EOImode is the writable bit; PRIbits, IDbits and A3V are read-only. */
  setCtlr(value: number): void {
    touch(this.dist.iccOid[this.pe]!);
    this.ctlr = value & ICC_CTLR_EOIMODE;
    this.update();
  }
  get ctlrValue(): number {
    return (
      this.ctlr |
      ((this.dist.priorityBits - 1) << ICC_CTLR_PRIBITS_SHIFT) |
      ((this.dist.idBits === 24 ? 1 : 0) << ICC_CTLR_IDBITS_SHIFT) |
      ICC_CTLR_A3V
    );
  }
  /** ICC_SRE_EL1: SRE, DFB, DIB RAO/WI (system-register access only). */
  get sreValue(): number {
    return ICC_SRE_EL1_VALUE;
  }
  /** ICC_IGRPEN1_EL1.Enable: gates signalling of Group 1 and this PE's part in 1 of N distribution (§4.7.2). */
  setIgrpen1(value: number): void {
    touch(this.dist.iccOid[this.pe]!);
    this.igrpen1 = value & ICC_IGRPEN1_EN;
    this.dist.setGroup1Enabled(this.pe, this.igrpen1 !== 0);
    this.update();
  }
  get igrpen1Value(): number {
    return this.igrpen1;
  }
  setPmr(value: number): void {
    touch(this.dist.iccOid[this.pe]!);
    this.pmr = value & this.dist.priorityMask;
    this.update();
  }
  get pmrValue(): number {
    return this.pmr;
  }
  /** ICC_BPR1_EL1: a value below the minimum sets the minimum (§12.2 ICC_BPR1_EL1). */
  setBpr1(value: number): void {
    touch(this.dist.iccOid[this.pe]!);
    this.bpr1 = Math.max(value & 7, this.minBpr1);
    this.update();
  }
  get bpr1Value(): number {
    return this.bpr1;
  }
  readAp1r(n: number): number {
    touch(this.dist.iccOid[this.pe]!);
    return n < this.apr.length ? this.apr[n]! >>> 0 : 0;
  }
  /** ICC_AP1R<n>_EL1 write (save/restore across CPU suspend); registers beyond the implemented levels are RAZ/WI. */
  writeAp1r(n: number, value: number): void {
    touch(this.dist.iccOid[this.pe]!);
    if (n >= this.apr.length) return;
    this.apr[n] = value;
    this.update();
  }

  /**
   * ICC_SGI1R_EL1 write, as its two 32-bit halves: lo = TargetList[15:0] | Aff1[23:16] | INTID[27:24], hi = Aff2[39:32]
   * | IRM[40] | RS[47:44] | Aff3[55:48] (what Linux's gic_send_sgi builds per cluster).
   */
  writeSgi1r(lo: number, hi: number): void {
    touch(this.dist.iccOid[this.pe]!);
    const aff = packAffinity(hi >>> ICC_SGI1R_HI_AFF3_SHIFT, hi, lo >>> ICC_SGI1R_AFF1_SHIFT, 0);
    this.dist.sendSgi(
      this.pe,
      (lo >>> ICC_SGI1R_SGI_ID_SHIFT) & 0xf,
      (hi & ICC_SGI1R_HI_IRM) !== 0,
      lo & ICC_SGI1R_TARGET_LIST_MASK,
      aff,
      (hi >>> ICC_SGI1R_HI_RS_SHIFT) & 0xf,
    );
  }

  /** Recomputes the IRQ output; called by the distributor after each state change. */
  update(): void {
    const level = this.signalled() !== SPURIOUS_INTID;
    if (level === this.line) return;
    this.line = level;
    this.irqSink?.setIrqLine(this.pe, level);
  }

  /**
   * The INTID this interface signals, or 1023: with ICC_IGRPEN1_EL1 set, the distributor's best candidate must have
   * a priority higher than ICC_PMR_EL1 (§4.8.6 "Priority masking") and a group priority higher than the running
   * priority (§4.8.3 "Preemption"). A lower-priority candidate is not signalled, not skipped over.
   */
  private signalled(): number {
    if (this.igrpen1 === 0) return SPURIOUS_INTID;
    const intid = this.dist.hppiOf(this.pe);
    if (intid === SPURIOUS_INTID) return intid;
    const p = this.dist.hppiPriority(intid, this.pe);
    if (p >= this.pmr || (p & group1PriorityMask(this.bpr1)) >= this.readRpr()) return SPURIOUS_INTID;
    return intid;
  }
  /** The INTID field: [23:0] with 24 ID bits, [15:0] with 16 (higher bits RES0). */
  private intidOf(value: number): number {
    return this.dist.idBits === 24 ? value & 0xffffff : value & 0xffff;
  }
  /** Deactivates a written INTID; one this GIC does not implement, or not active, is UNPREDICTABLE (counted). */
  private deactivate(reg: number, intid: number): void {
    if (this.dist.isLpi(intid)) return; // an LPI has no active state: deactivating it has no effect
    if (!this.dist.isValidIntid(intid)) this.unpredictable(reg, U.NOT_IMPLEMENTED, intid);
    else if (!this.dist.deactivate(intid, this.pe)) this.unpredictable(reg, U.INACTIVE, intid);
  }

  private unpredictable(reg: number, why: number, intid: number): void {
    this.unpredictableCount++;
    this.dist.onUnpredictable?.(this.pe, reg, why, intid);
  }
  private setAprBit(groupPrio: number): void {
    const i = groupPrio >> this.levelShift;
    this.apr[i >> 5]! |= 1 << (i & 31);
  }
  /** Clears the highest-priority active level (priority drop). */
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
