// GICv2 virtualization extensions for one physical CPU (ARM IHI 0048B Ch. 5): the hypervisor control interface
// GICH (§5.3) and the guest-facing virtual CPU interface GICV, backed by the list registers.
import { ModelError } from '../../sim/errors.js';
import * as U from '../../trace/gicUnpredictable.js';
import type { VirqLineSink } from './cpuInterface.js';
import type { GicDistributor } from './distributor.js';
import {
  checkLr,
  LrState,
  lrCpuId,
  lrHasEoi,
  lrIsGroup1,
  lrIsHw,
  lrPhysicalId,
  lrPriority,
  lrState,
  lrVirtualId,
  lrWithState,
} from './listRegister.js';
import * as R from './regs.js';

export { decodeLr, LrState, makeLr } from './listRegister.js';

export interface GicVirtualInterfaceOptions {
  cpu: number;
  distributor: GicDistributor;
  /** Number of list registers, 1..64 (default 4, as on GIC-400). */
  nrLrs?: number;
  /** Where the virtual IRQ output goes (the engine). */
  virqSink?: VirqLineSink;
}

const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);
/** GICC_IAR/GICV_IAR special INTID: the highest-priority pending interrupt is Group 1 and AckCtl is 0. */
const GROUP1_NOT_ACKED_INTID = 1022;
const VMCR_WRITABLE =
  R.GICH_VMCR_CTLR_MASK | R.GICH_VMCR_PRIMASK_MASK | R.GICH_VMCR_BINPOINT_MASK | R.GICH_VMCR_ALIAS_BINPOINT_MASK;

/** What scanLrs found (a constant scratch object: nothing is allocated per access, nothing is model state). */
const scan = { valid: 0, pending: 0, eoi: false, best: -1 };

export class GicVirtualInterface {
  readonly cpu: number;
  readonly nrLrs: number;
  /** UNPREDICTABLE guest accesses absorbed (EOI with no active priority, DIR with EOImode 0), for checkers. */
  unpredictableCount = 0;
  private readonly dist: GicDistributor;
  private readonly virqSink: VirqLineSink | undefined;
  private readonly lrs: Uint32Array;
  private hcr = 0;
  private vmcr = (R.GICV_MIN_BPR << R.GICH_VMCR_BINPOINT_SHIFT) | (R.GICV_MIN_ABPR << R.GICH_VMCR_ALIAS_BINPOINT_SHIFT);
  /** GICH_APR / GICV_APR0: bit i ↔ virtual group priority i << 3 (5 preemption bits). */
  private apr = 0;
  private vline = false;
  private mline = false;

  constructor(opts: GicVirtualInterfaceOptions) {
    if (!Number.isInteger(opts.cpu) || opts.cpu < 0 || opts.cpu >= opts.distributor.nrCpus) {
      throw new ModelError(`bad CPU ${opts.cpu} (nrCpus ${opts.distributor.nrCpus})`);
    }
    const nrLrs = opts.nrLrs ?? 4;
    if (!Number.isInteger(nrLrs) || nrLrs < 1 || nrLrs > R.MAX_LRS) throw new ModelError(`bad nrLrs ${nrLrs}`);
    this.cpu = opts.cpu;
    this.nrLrs = nrLrs;
    this.dist = opts.distributor;
    this.virqSink = opts.virqSink;
    this.lrs = new Uint32Array(nrLrs);
  }

  /** Virtual IRQ output to the vCPU running on this physical CPU. */
  get virqLine(): boolean {
    return this.vline;
  }
  /** Maintenance interrupt output (HCR.En && MISR != 0); it drives PPI 25 of this CPU in the distributor. */
  get maintenanceLine(): boolean {
    return this.mline;
  }
  get eoiCount(): number {
    return this.hcr >>> R.GICH_HCR_EOICOUNT_SHIFT;
  }
  get eoiMode(): boolean {
    return (this.vmcr & R.GICH_VMCR_EOI_MODE_MASK) !== 0;
  }

  // ---- GICH: hypervisor control interface ----

  readHcr(): number {
    return this.hcr >>> 0;
  }
  writeHcr(value: number): void {
    this.hcr = (value & (R.GICH_HCR_EOICOUNT_MASK | 0xff)) >>> 0;
    this.recompute();
  }
  readVtr(): number {
    const bits = R.GICV_PRIORITY_BITS - 1;
    return ((bits << R.GICH_VTR_PRIBITS_SHIFT) | (bits << R.GICH_VTR_PREBITS_SHIFT) | (this.nrLrs - 1)) >>> 0;
  }
  readVmcr(): number {
    return this.vmcr >>> 0;
  }
  writeVmcr(value: number): void {
    let v = value & VMCR_WRITABLE;
    const bp = Math.max((v & R.GICH_VMCR_BINPOINT_MASK) >>> R.GICH_VMCR_BINPOINT_SHIFT, R.GICV_MIN_BPR);
    const abp = Math.max((v & R.GICH_VMCR_ALIAS_BINPOINT_MASK) >>> R.GICH_VMCR_ALIAS_BINPOINT_SHIFT, R.GICV_MIN_ABPR);
    v = (v & ~(R.GICH_VMCR_BINPOINT_MASK | R.GICH_VMCR_ALIAS_BINPOINT_MASK)) | (bp << R.GICH_VMCR_BINPOINT_SHIFT);
    this.vmcr = (v | (abp << R.GICH_VMCR_ALIAS_BINPOINT_SHIFT)) >>> 0;
    this.recompute();
  }
  /** GICH_MISR (§5.3): EOI (some EISR bit), U, LRENP, NP, VGrp0E/D, VGrp1E/D. */
  readMisr(): number {
    this.scanLrs();
    return this.misr();
  }
  /** GICH_EISRn: LR 32n+i is invalid with EOI=1, HW=0 (its deactivation requested maintenance). */
  readEisr(n: number): number {
    return this.lrBitmap(n, true);
  }
  /** GICH_ELRSRn: LR 32n+i is free: invalid and (HW=1 or EOI=0). */
  readElrsr(n: number): number {
    return this.lrBitmap(n, false);
  }
  readApr(): number {
    return this.apr >>> 0;
  }
  writeApr(value: number): void {
    this.apr = value >>> 0;
    this.recompute();
  }
  readLr(i: number): number {
    return this.lrs[this.lrIndex(i)]!;
  }
  /** Writes an LR; a pending+active LR with HW=1 (and other UNPREDICTABLE values) throws ModelError. */
  writeLr(i: number, value: number): void {
    const idx = this.lrIndex(i);
    checkLr(value);
    this.lrs[idx] = value >>> 0;
    this.recompute();
  }
  /** World switch out: copies the LRs into dst (length ≥ nrLrs); allocates nothing. */
  saveLrs(dst: Uint32Array): void {
    if (dst.length < this.nrLrs) throw new ModelError(`saveLrs: need ${this.nrLrs} slots, got ${dst.length}`);
    for (let i = 0; i < this.nrLrs; i++) dst[i] = this.lrs[i]!;
  }
  /** World switch in: loads the LRs from src (length ≥ nrLrs), all checked before any is written. */
  restoreLrs(src: Uint32Array): void {
    if (src.length < this.nrLrs) throw new ModelError(`restoreLrs: need ${this.nrLrs} values, got ${src.length}`);
    for (let i = 0; i < this.nrLrs; i++) checkLr(src[i]!);
    for (let i = 0; i < this.nrLrs; i++) this.lrs[i] = src[i]!;
    this.recompute();
  }
  clearLrs(): void {
    this.lrs.fill(0);
    this.recompute();
  }

  readGich(offset: number): number {
    switch (offset) {
      case R.GICH_HCR:
        return this.readHcr();
      case R.GICH_VTR:
        return this.readVtr();
      case R.GICH_VMCR:
        return this.readVmcr();
      case R.GICH_MISR:
        return this.readMisr();
      case R.GICH_EISR0:
      case R.GICH_EISR1:
        return this.readEisr((offset - R.GICH_EISR0) >> 2);
      case R.GICH_ELRSR0:
      case R.GICH_ELRSR1:
        return this.readElrsr((offset - R.GICH_ELRSR0) >> 2);
      case R.GICH_APR:
        return this.readApr();
    }
    const i = (offset - R.GICH_LR0) >> 2;
    return offset >= R.GICH_LR0 && (offset & 3) === 0 && i < this.nrLrs ? this.lrs[i]! : 0;
  }
  writeGich(offset: number, value: number): void {
    if (offset === R.GICH_HCR) this.writeHcr(value);
    else if (offset === R.GICH_VMCR) this.writeVmcr(value);
    else if (offset === R.GICH_APR) this.writeApr(value);
    else if (offset >= R.GICH_LR0 && (offset & 3) === 0 && (offset - R.GICH_LR0) >> 2 < this.nrLrs) {
      this.writeLr((offset - R.GICH_LR0) >> 2, value);
    }
  }

  // ---- GICV: the guest's CPU interface ----

  /**
   * GICV_IAR: the signalled pending LR becomes active and its group priority the running priority; 1023 when
   * nothing is signalled. A Group 1 interrupt with GICV_CTLR.AckCtl = 0 is not acknowledged: 1022 (§4.4.4, the
   * virtual CPU interface behaves as a GIC without Security Extensions).
   */
  readIar(): number {
    const i = this.signalledLr();
    if (i < 0) return R.SPURIOUS_INTID;
    const lr = this.lrs[i]!;
    if (lrIsGroup1(lr) && (this.vmcr & R.GICH_VMCR_ACK_CTL_MASK) === 0) return GROUP1_NOT_ACKED_INTID;
    this.setAprBit(lrPriority(lr) & this.groupMask(lr));
    this.lrs[i] = lrWithState(lr, LrState.Active);
    this.recompute();
    return this.iarValue(lr);
  }
  /** GICV_EOIR: priority drop; with virtual EOImode 0 also deactivation of the matching LR. */
  writeEoir(value: number): void {
    const intid = value & R.GICC_IAR_INT_ID_MASK;
    if (intid >= 1020) return;
    if (this.apr === 0) {
      this.unpredictable(U.GICV_EOIR, U.NO_ACTIVE_PRIORITY, intid); // §5.3 GICH_HCR.EOICount: not counted there
      return;
    }
    this.apr = (this.apr & (this.apr - 1)) >>> 0;
    if (!this.eoiMode) this.deactivate(U.GICV_EOIR, intid, (value >>> R.GICC_IAR_CPUID_SHIFT) & R.GICC_IAR_CPUID_MASK);
    this.recompute();
  }
  /** GICV_DIR: deactivation only; UNPREDICTABLE with virtual EOImode 0, modelled as ignored. */
  writeDir(value: number): void {
    const intid = value & R.GICC_IAR_INT_ID_MASK;
    if (intid >= 1020) return;
    if (!this.eoiMode) {
      this.unpredictable(U.GICV_DIR, U.DIR_EOIMODE_0, intid);
      return;
    }
    this.deactivate(U.GICV_DIR, intid, (value >>> R.GICC_IAR_CPUID_SHIFT) & R.GICC_IAR_CPUID_MASK);
    this.recompute();
  }
  /** GICV_CTLR (alias of GICH_VMCR bits 0-4 and 9: EnableGrp0/1, AckCtl, FIQEn, CBPR, EOImode). */
  setCtlr(value: number): void {
    this.write(R.GIC_CPU_CTRL, value);
  }
  get ctlrValue(): number {
    return this.read(R.GIC_CPU_CTRL);
  }
  /** GICV_PMR (alias of GICH_VMCR.VMPriMask; 5 implemented bits, low 3 read as zero). */
  setPmr(value: number): void {
    this.write(R.GIC_CPU_PRIMASK, value);
  }
  get pmrValue(): number {
    return this.read(R.GIC_CPU_PRIMASK);
  }
  /** GICV_BPR (alias of GICH_VMCR.VMBP, minimum 2). */
  setBpr(value: number): void {
    this.write(R.GIC_CPU_BINPOINT, value);
  }
  get bprValue(): number {
    return this.read(R.GIC_CPU_BINPOINT);
  }
  /** GICV_RPR: group priority of the highest active virtual priority level (from GICH_APR), 0xFF when idle. */
  readRpr(): number {
    return this.apr === 0 ? R.IDLE_PRIORITY : lowestBit(this.apr) << 3;
  }
  readHppir(): number {
    const i = (this.hcr & R.GICH_HCR_EN) !== 0 ? this.bestPendingLr() : -1;
    return i < 0 ? R.SPURIOUS_INTID : this.iarValue(this.lrs[i]!);
  }

  /** The guest's MMIO view (GICV_* at the GICC offsets). CTLR, PMR, BPR and ABPR are aliases of GICH_VMCR fields. */
  read(offset: number): number {
    const v = this.vmcr;
    switch (offset) {
      case R.GIC_CPU_CTRL:
        return v & R.GICH_VMCR_CTLR_MASK;
      case R.GIC_CPU_PRIMASK:
        return (v >>> R.GICH_VMCR_PRIMASK_SHIFT) << R.GICV_PMR_PRIORITY_SHIFT;
      case R.GIC_CPU_BINPOINT:
        return (v & R.GICH_VMCR_BINPOINT_MASK) >>> R.GICH_VMCR_BINPOINT_SHIFT;
      case R.GIC_CPU_ALIAS_BINPOINT:
        return (v & R.GICH_VMCR_ALIAS_BINPOINT_MASK) >>> R.GICH_VMCR_ALIAS_BINPOINT_SHIFT;
      case R.GIC_CPU_INTACK:
        return this.readIar();
      case R.GIC_CPU_RUNNINGPRI:
        return this.readRpr();
      case R.GIC_CPU_HIGHPRI:
        return this.readHppir();
      case R.GIC_CPU_ACTIVEPRIO:
        return this.readApr();
      case R.GIC_CPU_IDENT:
        return R.GICC_IIDR_GIC400;
    }
    return 0;
  }
  write(offset: number, value: number): void {
    const v = this.vmcr;
    if (offset === R.GIC_CPU_CTRL) this.writeVmcr((v & ~R.GICH_VMCR_CTLR_MASK) | (value & R.GICH_VMCR_CTLR_MASK));
    else if (offset === R.GIC_CPU_PRIMASK) {
      const pm = ((value & R.GICV_PMR_PRIORITY_MASK) >>> R.GICV_PMR_PRIORITY_SHIFT) << R.GICH_VMCR_PRIMASK_SHIFT;
      this.writeVmcr((v & ~R.GICH_VMCR_PRIMASK_MASK) | pm);
    } else if (offset === R.GIC_CPU_BINPOINT) {
      this.writeVmcr((v & ~R.GICH_VMCR_BINPOINT_MASK) | ((value & 7) << R.GICH_VMCR_BINPOINT_SHIFT));
    } else if (offset === R.GIC_CPU_ALIAS_BINPOINT) {
      this.writeVmcr((v & ~R.GICH_VMCR_ALIAS_BINPOINT_MASK) | ((value & 7) << R.GICH_VMCR_ALIAS_BINPOINT_SHIFT));
    } else if (offset === R.GIC_CPU_EOI) this.writeEoir(value);
    else if (offset === R.GIC_CPU_DEACTIVATE) this.writeDir(value);
    else if (offset === R.GIC_CPU_ACTIVEPRIO) this.writeApr(value);
  }

  // ---- internals ----

  /**
   * Deactivates the LR holding vINTID (and, for HW=0 SGIs, the source CPUID): active → invalid, pending+active →
   * pending. HW=1 also deactivates PhysicalID in the distributor for this CPU and never signals maintenance; HW=0
   * with EOI=1 leaves an invalid EOI LR, i.e. an EISR bit and MISR.EOI. No LR holds the INTID → EOICount++
   * (§5.3.1 GICH_HCR.EOICount, GICV_DIR). An LR holding it but not active → UNPREDICTABLE (counted, ignored).
   */
  private deactivate(reg: number, intid: number, cpuid: number): void {
    for (let i = 0; i < this.nrLrs; i++) {
      const lr = this.lrs[i]!;
      const st = lrState(lr);
      if (st === LrState.Invalid || lrVirtualId(lr) !== intid) continue;
      if (!lrIsHw(lr) && intid < R.NR_SGIS && lrCpuId(lr) !== cpuid) continue;
      if ((st & LrState.Active) === 0) {
        this.unpredictable(reg, U.LR_PENDING, intid); // §5.4 GICV_DIR/GICV_EOIR: the LR is only pending
        return;
      }
      this.lrs[i] = lrWithState(lr, st === LrState.PendingActive ? LrState.Pending : LrState.Invalid);
      // §5.3.6 HW=1: the deactivation is forwarded to the physical Distributor for PhysicalID.
      if (lrIsHw(lr) && !this.dist.deactivate(lrPhysicalId(lr), this.cpu))
        this.unpredictable(reg, U.INACTIVE, lrPhysicalId(lr));
      return;
    }
    const count = (this.eoiCount + 1) & 0x1f; // 5-bit field, wraps at 31 → 0
    this.hcr = ((this.hcr & ~R.GICH_HCR_EOICOUNT_MASK) | (count << R.GICH_HCR_EOICOUNT_SHIFT)) >>> 0;
  }

  private unpredictable(reg: number, why: number, intid: number): void {
    this.unpredictableCount++;
    this.dist.onUnpredictable?.(this.cpu, reg, why, intid);
  }

  /**
   * The outputs after a change: the maintenance line (HCR.En and MISR ≠ 0) and the virtual IRQ line (an LR is
   * signalled), from one pass over the LRs (scanLrs) — this runs on every LR, HCR, VMCR and APR write and every
   * GICV_IAR/EOIR access.
   */
  private recompute(): void {
    let m = false;
    let v = false;
    if ((this.hcr & R.GICH_HCR_EN) !== 0) {
      this.scanLrs();
      m = this.misr() !== 0;
      v = this.signalled(scan.best);
    }
    if (m !== this.mline) {
      this.mline = m;
      this.dist.setLine(R.MAINTENANCE_PPI, m, this.cpu);
    }
    if (v !== this.vline) {
      this.vline = v;
      this.virqSink?.setVirqLine(this.cpu, v);
    }
  }

  /** One pass over the LRs into `scan`: what GICH_MISR and the signalled LR are computed from. */
  private scanLrs(): void {
    let valid = 0;
    let pending = 0;
    let eoi = false;
    let best = -1;
    let bestPrio = 0x100;
    const vmcr = this.vmcr;
    for (let i = 0; i < this.nrLrs; i++) {
      const lr = this.lrs[i]!;
      const st = lrState(lr);
      if (st === LrState.Invalid) {
        if (lrHasEoi(lr)) eoi = true;
        continue;
      }
      valid++;
      if (st !== LrState.Pending) continue; // a pending+active LR is not signalled while active
      pending++;
      // the highest-priority pending LR of an enabled group (ties → lowest LR index)
      const grpEn = lrIsGroup1(lr) ? R.GICH_VMCR_ENABLE_GRP1_MASK : R.GICH_VMCR_ENABLE_GRP0_MASK;
      if ((vmcr & grpEn) === 0) continue;
      const p = lrPriority(lr);
      if (p < bestPrio) {
        best = i;
        bestPrio = p;
      }
    }
    scan.valid = valid;
    scan.pending = pending;
    scan.eoi = eoi;
    scan.best = best;
  }

  /** GICH_MISR from the last scanLrs. */
  private misr(): number {
    const h = this.hcr;
    const g0 = (this.vmcr & R.GICH_VMCR_ENABLE_GRP0_MASK) !== 0;
    const g1 = (this.vmcr & R.GICH_VMCR_ENABLE_GRP1_MASK) !== 0;
    let m = scan.eoi ? R.GICH_MISR_EOI : 0;
    if ((h & R.GICH_HCR_UIE) !== 0 && scan.valid <= 1) m |= R.GICH_MISR_U; // underflow: none or one valid LR
    if ((h & R.GICH_HCR_LRENPIE) !== 0 && this.eoiCount !== 0) m |= R.GICH_MISR_LRENP;
    if ((h & R.GICH_HCR_NPIE) !== 0 && scan.pending === 0) m |= R.GICH_MISR_NP; // no LR in the pending state
    if ((h & R.GICH_HCR_VGRP0EIE) !== 0 && g0) m |= R.GICH_MISR_VGRP0E;
    if ((h & R.GICH_HCR_VGRP0DIE) !== 0 && !g0) m |= R.GICH_MISR_VGRP0D;
    if ((h & R.GICH_HCR_VGRP1EIE) !== 0 && g1) m |= R.GICH_MISR_VGRP1E;
    if ((h & R.GICH_HCR_VGRP1DIE) !== 0 && !g1) m |= R.GICH_MISR_VGRP1D;
    return m;
  }

  /** Whether best pending LR `i` (-1: none) is signalled: above the virtual PMR and running priority. */
  private signalled(i: number): boolean {
    if (i < 0) return false;
    const lr = this.lrs[i]!;
    const p = lrPriority(lr);
    const pmr = (this.vmcr >>> R.GICH_VMCR_PRIMASK_SHIFT) << 3;
    return p < pmr && (p & this.groupMask(lr)) < this.readRpr();
  }

  /** Highest-priority pending LR of an enabled group (ties → lowest LR index), or -1. */
  private bestPendingLr(): number {
    this.scanLrs();
    return scan.best;
  }
  /** The LR signalled to the vCPU: above the virtual PMR and the virtual running priority, with HCR.En. */
  private signalledLr(): number {
    if ((this.hcr & R.GICH_HCR_EN) === 0) return -1;
    const i = this.bestPendingLr();
    return this.signalled(i) ? i : -1;
  }
  /** Group 0 (or CBPR) uses VMBP; group 1 uses VMABP, whose value n splits like BPR n - 1 (§3.3 priority grouping). */
  private groupMask(lr: number): number {
    if (lrIsGroup1(lr) && (this.vmcr & R.GICH_VMCR_CBPR_MASK) === 0) {
      return R.groupPriorityMask(
        ((this.vmcr & R.GICH_VMCR_ALIAS_BINPOINT_MASK) >>> R.GICH_VMCR_ALIAS_BINPOINT_SHIFT) - 1,
      );
    }
    return R.groupPriorityMask((this.vmcr & R.GICH_VMCR_BINPOINT_MASK) >>> R.GICH_VMCR_BINPOINT_SHIFT);
  }
  private setAprBit(groupPrio: number): void {
    this.apr = (this.apr | (1 << (groupPrio >> 3))) >>> 0;
  }
  private iarValue(lr: number): number {
    const id = lrVirtualId(lr);
    return !lrIsHw(lr) && id < R.NR_SGIS ? id | (lrCpuId(lr) << R.GICC_IAR_CPUID_SHIFT) : id;
  }
  private lrBitmap(n: number, eisr: boolean): number {
    let bits = 0;
    for (let b = 0; b < 32; b++) {
      const i = n * 32 + b;
      if (i >= this.nrLrs) break;
      const lr = this.lrs[i]!;
      if (lrState(lr) === LrState.Invalid && lrHasEoi(lr) === eisr) bits |= 1 << b;
    }
    return bits >>> 0;
  }
  private lrIndex(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.nrLrs) throw new ModelError(`LR index ${i} (nrLrs ${this.nrLrs})`);
    return i;
  }
}
