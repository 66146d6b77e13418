// GICv3 virtualization for one PE (ARM IHI 0069 Ch. 6 "Virtual interrupt handling and prioritization", §12.4 ICH_*
// registers): the hypervisor's ICH_*_EL2 control registers and the guest's virtual CPU interface (ICV_*_EL1, what
// the guest's ICC_* accesses reach with HCR_EL2.IMO = 1), backed by the list registers. As KVM's vgic-v3 drives it
// (arch/arm64/kvm/vgic/vgic-v3.c vgic_v3_populate_lr / vgic_v3_fold_lr_state, hyp/vgic-v3-sr.c save/restore).
// Group 1 only on the guest side: a Group 0 LR would be a vFIQ, which is not modelled (it is never signalled).
// With GICv4.1 (`vlpis`) the redistributor also presents the resident vPE's vLPIs directly (redistributorVpe.ts): the
// interface signals the higher-priority of its best LR and its best direct vLPI (ties to the LR), ICV_IAR1_EL1
// acknowledges a direct vLPI without any LR (it has no active state: only its priority becomes the running one), and
// its EOI is a priority drop that deactivates nothing and leaves ICH_HCR_EL2.EOIcount alone; an LPI held in an LR is
// deactivated by its EOI whatever VEOIM says (IHI 0069 VirtualWriteEOIR1 pseudocode; QEMU arm_gicv3_cpuif.c
// icv_eoir_write, commit 82a65e3188).
import { ModelError } from '../../sim/errors.js';
import * as U from '../../trace/gicUnpredictable.js';
import type { VirqLineSink } from './cpuInterface.js';
import type { Gicv3Distributor } from './distributor.js';
import {
  LrState,
  lrHasEoi,
  lrIsGroup1,
  lrIsHw,
  lrPhysicalId,
  lrPriority,
  lrState,
  lrToBigInt,
  lrWithState,
} from './listRegister.js';
import { LPI_BASE } from './lpi.js';
import type { Gicv3Vlpis, VlpiListener } from './redistributorVpe.js';
import * as R from './regs.js';

export { decodeLr, LrState, makeLr } from './listRegister.js';

export interface Gicv3VirtualInterfaceOptions {
  pe: number;
  distributor: Gicv3Distributor;
  /** Number of list registers, 1..16 (default 4, as on Cortex-A CPU interfaces). */
  nrLrs?: number;
  /** Where the virtual IRQ output goes (the engine). */
  virqSink?: VirqLineSink;
  /** GICv4.1: the redistributors' vPE state, whose resident vPE's vLPIs this interface presents. */
  vlpis?: Gicv3Vlpis;
}

const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);
const HCR_WRITABLE =
  R.ICH_HCR_EN |
  R.ICH_HCR_UIE |
  R.ICH_HCR_LRENPIE |
  R.ICH_HCR_NPIE |
  R.ICH_HCR_VGRP0EIE |
  R.ICH_HCR_VGRP0DIE |
  R.ICH_HCR_VGRP1EIE |
  R.ICH_HCR_VGRP1DIE |
  R.ICH_HCR_EOICOUNT_MASK;
/** Minimum VBPR1 with 5 preemption bits: minimum VBPR0 (2) + 1. */
const MIN_VBPR1 = 8 - R.VIRTUAL_PRIORITY_BITS;
const VPMR_MASK = (0xff << (8 - R.VIRTUAL_PRIORITY_BITS)) & 0xff;

export class Gicv3VirtualInterface implements VlpiListener {
  readonly pe: number;
  readonly nrLrs: number;
  /** UNPREDICTABLE accesses absorbed (bad LR values, EOI with no active priority, DIR with EOImode 0), for checkers. */
  unpredictableCount = 0;
  private readonly dist: Gicv3Distributor;
  private readonly virqSink: VirqLineSink | undefined;
  private readonly vlpis: Gicv3Vlpis | null;
  /** ICH_LR<n>_EL2 halves: vINTID, and bits [63:32]. */
  private readonly lrLo: Uint32Array;
  private readonly lrHi: Uint32Array;
  private hcr = 0;
  private vmcr = MIN_VBPR1 << R.ICH_VMCR_BPR1_SHIFT;
  /** ICH_AP1R0_EL2: bit i ↔ active virtual group priority i << 3 (32 levels with 5 preemption bits). */
  private apr = 0;
  private vline = false;
  private mline = false;

  constructor(opts: Gicv3VirtualInterfaceOptions) {
    const { pe, distributor, nrLrs = 4 } = opts;
    if (!Number.isInteger(pe) || pe < 0 || pe >= distributor.nrPes) {
      throw new ModelError(`bad PE ${pe} (nrPes ${distributor.nrPes})`);
    }
    if (!Number.isInteger(nrLrs) || nrLrs < 1 || nrLrs > R.MAX_LRS) throw new ModelError(`nrLrs ${nrLrs} (1..16)`);
    this.pe = pe;
    this.dist = distributor;
    this.nrLrs = nrLrs;
    this.virqSink = opts.virqSink;
    this.vlpis = opts.vlpis ?? null;
    this.vlpis?.attach(pe, this);
    this.lrLo = new Uint32Array(nrLrs);
    this.lrHi = new Uint32Array(nrLrs);
  }

  /** The virtual IRQ output to the PE (taken when running at EL1 with HCR_EL2.IMO = 1). */
  get virqLine(): boolean {
    return this.vline;
  }
  /** The maintenance interrupt output (drives PPI 25 of this PE's redistributor). */
  get maintenanceLine(): boolean {
    return this.mline;
  }
  private get eoiMode(): boolean {
    return (this.vmcr & R.ICH_VMCR_EOIM) !== 0;
  }
  private get eoiCount(): number {
    return this.hcr >>> R.ICH_HCR_EOICOUNT_SHIFT;
  }

  // ---- ICH_*_EL2: the hypervisor's control interface ----

  readHcr(): number {
    return this.hcr >>> 0;
  }
  writeHcr(value: number): void {
    this.hcr = (value & HCR_WRITABLE) >>> 0;
    this.recompute();
  }
  /** ICH_VTR_EL2: ListRegs = nrLrs - 1, PRIbits = PREbits = 4 (5 bits), IDbits = 0 (16), A3V = 1, nV4 = 1 unless GICv4. */
  readVtr(): number {
    const b = R.VIRTUAL_PRIORITY_BITS - 1;
    return (
      ((b << R.ICH_VTR_PRIBITS_SHIFT) |
        (b << R.ICH_VTR_PREBITS_SHIFT) |
        R.ICH_VTR_A3V |
        (this.vlpis === null ? R.ICH_VTR_NV4 : 0) |
        (this.nrLrs - 1)) >>>
      0
    );
  }
  readVmcr(): number {
    return this.vmcr >>> 0;
  }
  /** ICH_VMCR_EL2: VENG0, VENG1, VEOIM, VBPR1 (a value below the minimum reads as the minimum) and VPMR's 5 bits. */
  writeVmcr(value: number): void {
    const bpr1 = Math.max((value & R.ICH_VMCR_BPR1_MASK) >>> R.ICH_VMCR_BPR1_SHIFT, MIN_VBPR1);
    const pmr = (value >>> R.ICH_VMCR_PMR_SHIFT) & VPMR_MASK;
    this.vmcr =
      ((value & (R.ICH_VMCR_ENG0 | R.ICH_VMCR_ENG1 | R.ICH_VMCR_EOIM)) |
        (bpr1 << R.ICH_VMCR_BPR1_SHIFT) |
        (pmr << R.ICH_VMCR_PMR_SHIFT)) >>>
      0;
    this.recompute();
  }
  /** ICH_MISR_EL2 (§12.4 ICH_MISR_EL2): the maintenance conditions, each gated by its ICH_HCR_EL2 enable. */
  readMisr(): number {
    const h = this.hcr;
    let m = 0;
    if (this.readEisr() !== 0) m |= R.ICH_MISR_EOI;
    if ((h & R.ICH_HCR_UIE) !== 0) {
      let valid = 0;
      for (let i = 0; i < this.nrLrs; i++) if (lrState(this.lrHi[i]!) !== LrState.Invalid) valid++;
      if (valid <= 1) m |= R.ICH_MISR_U; // underflow: zero or one valid LR
    }
    if ((h & R.ICH_HCR_LRENPIE) !== 0 && this.eoiCount !== 0) m |= R.ICH_MISR_LRENP;
    if ((h & R.ICH_HCR_NPIE) !== 0) {
      let pending = false;
      for (let i = 0; i < this.nrLrs; i++) if (lrState(this.lrHi[i]!) === LrState.Pending) pending = true;
      if (!pending) m |= R.ICH_MISR_NP;
    }
    const g0 = (this.vmcr & R.ICH_VMCR_ENG0) !== 0;
    const g1 = (this.vmcr & R.ICH_VMCR_ENG1) !== 0;
    if ((h & R.ICH_HCR_VGRP0EIE) !== 0 && g0) m |= R.ICH_MISR_VGRP0E;
    if ((h & R.ICH_HCR_VGRP0DIE) !== 0 && !g0) m |= R.ICH_MISR_VGRP0D;
    if ((h & R.ICH_HCR_VGRP1EIE) !== 0 && g1) m |= R.ICH_MISR_VGRP1E;
    if ((h & R.ICH_HCR_VGRP1DIE) !== 0 && !g1) m |= R.ICH_MISR_VGRP1D;
    return m;
  }
  /** ICH_EISR_EL2: LR i is invalid with HW = 0 and EOI = 1 (its deactivation asked for maintenance). */
  readEisr(): number {
    return this.lrBitmap(true);
  }
  /** ICH_ELRSR_EL2: LR i is free: invalid and not an EOI-maintenance LR. */
  readElrsr(): number {
    return this.lrBitmap(false);
  }
  readAp1r(n: number): number {
    return n === 0 ? this.apr >>> 0 : 0;
  }
  /** ICH_AP1R<n>_EL2: only AP1R0 is implemented with 5 preemption bits; the others are RAZ/WI. */
  writeAp1r(n: number, value: number): void {
    if (n !== 0) return;
    this.apr = value >>> 0;
    this.recompute();
  }
  readLr(i: number): bigint {
    const idx = this.lrIndex(i);
    return lrToBigInt(this.lrLo[idx]!, this.lrHi[idx]!);
  }
  writeLr(i: number, value: bigint): void {
    this.writeLrWords(i, Number(value & 0xffffffffn), Number((value >> 32n) & 0xffffffffn));
  }
  /**
   * Writes ICH_LR<i>_EL2 as its two halves (the allocation-free path). UNPREDICTABLE values are stored and counted:
   * HW = 1 with pending+active (vgic-v3.c vgic_v3_populate_lr never sets it: the pending state stays at the physical
   * distributor), HW = 1 with a pINTID that is an SGI, special or absent from this GIC, and a valid LR with vINTID 1020-1023.
   */
  writeLrWords(i: number, lo: number, hi: number): void {
    const idx = this.lrIndex(i);
    this.lrLo[idx] = lo >>> 0;
    this.lrHi[idx] = hi >>> 0;
    if (!this.lrIsPredictable(idx)) this.unpredictable(U.ICH_LR_EL2, U.LR_CONTENT, this.lrLo[idx]!);
    this.recompute();
  }
  lrLow(i: number): number {
    return this.lrLo[this.lrIndex(i)]!;
  }
  lrHigh(i: number): number {
    return this.lrHi[this.lrIndex(i)]!;
  }
  /** World switch out (__vgic_v3_save_state): copies the LRs as lo, hi pairs into dst (length ≥ 2·nrLrs). */
  saveLrs(dst: Uint32Array): void {
    if (dst.length < 2 * this.nrLrs) throw new ModelError(`saveLrs: need ${2 * this.nrLrs} words, got ${dst.length}`);
    for (let i = 0; i < this.nrLrs; i++) {
      dst[2 * i] = this.lrLo[i]!;
      dst[2 * i + 1] = this.lrHi[i]!;
    }
  }
  /** World switch in (__vgic_v3_restore_state): loads lo, hi pairs from src (length ≥ 2·nrLrs). */
  restoreLrs(src: Uint32Array): void {
    if (src.length < 2 * this.nrLrs)
      throw new ModelError(`restoreLrs: need ${2 * this.nrLrs} words, got ${src.length}`);
    for (let i = 0; i < this.nrLrs; i++) {
      this.lrLo[i] = src[2 * i]!;
      this.lrHi[i] = src[2 * i + 1]!;
      if (!this.lrIsPredictable(i)) this.unpredictable(U.ICH_LR_EL2, U.LR_CONTENT, this.lrLo[i]!);
    }
    this.recompute();
  }

  // ---- ICV_*_EL1: the guest's virtual CPU interface ----

  /**
   * ICV_IAR1_EL1: the signalled pending Group 1 LR becomes active and its group priority the running one; or a
   * signalled direct vLPI becomes inactive (acknowledged at the redistributor) with its group priority running; or 1023.
   */
  readIar1(): number {
    const i = this.signalledLr();
    const v = this.signalledVlpi();
    if (v !== R.SPURIOUS_INTID && (i < 0 || this.vlpis!.priorityOf(this.pe, v) < lrPriority(this.lrHi[i]!))) {
      this.apr = (this.apr | (1 << ((this.vlpis!.priorityOf(this.pe, v) & this.groupMask()) >> 3))) >>> 0;
      this.vlpis!.acknowledge(this.pe, v); // recomputes through vlpiChanged
      this.recompute();
      return v;
    }
    if (i < 0) return R.SPURIOUS_INTID;
    const hi = this.lrHi[i]!;
    this.apr = (this.apr | (1 << ((lrPriority(hi) & this.groupMask()) >> 3))) >>> 0;
    this.lrHi[i] = lrWithState(hi, LrState.Active);
    this.recompute();
    return this.lrLo[i]!;
  }
  /**
   * ICV_EOIR1_EL1: priority drop; with VEOIM = 0 also deactivation of the LR holding the vINTID (§6.3 "Virtual
   * interrupt handling"). With no active priority the write is UNPREDICTABLE: counted and ignored.
   */
  writeEoir1(value: number): void {
    const intid = value & 0xffff;
    if (R.isSpecialIntid(intid)) return;
    if (this.apr === 0) {
      this.unpredictable(U.ICV_EOIR1_EL1, U.NO_ACTIVE_PRIORITY, intid);
      return;
    }
    this.apr = (this.apr & (this.apr - 1)) >>> 0;
    if (!this.eoiMode || intid >= LPI_BASE) this.deactivate(U.ICV_EOIR1_EL1, intid);
    this.recompute();
  }
  /** ICV_DIR_EL1: deactivation only; UNPREDICTABLE with VEOIM = 0 (counted and ignored). */
  writeDir(value: number): void {
    const intid = value & 0xffff;
    if (R.isSpecialIntid(intid)) return;
    if (!this.eoiMode) {
      this.unpredictable(U.ICV_DIR_EL1, U.DIR_EOIMODE_0, intid);
      return;
    }
    this.deactivate(U.ICV_DIR_EL1, intid);
    this.recompute();
  }
  /** ICV_RPR_EL1: group priority of the highest active virtual priority level, 0xFF when idle. */
  readRpr(): number {
    return this.apr === 0 ? R.IDLE_PRIORITY : lowestBit(this.apr) << 3;
  }
  /** ICV_HPPIR1_EL1: vINTID of the highest-priority pending Group 1 LR or direct vLPI (no masking), or 1023. */
  readHppir1(): number {
    const i = this.bestPendingLr();
    const v = this.bestVlpi();
    if (v !== R.SPURIOUS_INTID && (i < 0 || this.vlpis!.priorityOf(this.pe, v) < lrPriority(this.lrHi[i]!))) return v;
    return i < 0 ? R.SPURIOUS_INTID : this.lrLo[i]!;
  }
  /** The redistributor's resident vPE changed or one of its vLPIs did (redistributorVpe.ts). */
  vlpiChanged(): void {
    this.recompute();
  }
  /** ICV_PMR_EL1, an alias of ICH_VMCR_EL2.VPMR. */
  setPmr(value: number): void {
    this.writeVmcr((this.vmcr & ~R.ICH_VMCR_PMR_MASK) | ((value & 0xff) << R.ICH_VMCR_PMR_SHIFT));
  }
  get pmrValue(): number {
    return this.vmcr >>> R.ICH_VMCR_PMR_SHIFT;
  }
  /** ICV_BPR1_EL1, an alias of ICH_VMCR_EL2.VBPR1. */
  setBpr1(value: number): void {
    this.writeVmcr((this.vmcr & ~R.ICH_VMCR_BPR1_MASK) | ((value & 7) << R.ICH_VMCR_BPR1_SHIFT));
  }
  get bpr1Value(): number {
    return (this.vmcr & R.ICH_VMCR_BPR1_MASK) >>> R.ICH_VMCR_BPR1_SHIFT;
  }
  /** ICV_IGRPEN1_EL1, an alias of ICH_VMCR_EL2.VENG1. */
  setIgrpen1(value: number): void {
    this.writeVmcr((this.vmcr & ~R.ICH_VMCR_ENG1) | ((value & 1) !== 0 ? R.ICH_VMCR_ENG1 : 0));
  }
  /** ICV_CTLR_EL1.EOImode (bit 1), an alias of ICH_VMCR_EL2.VEOIM. */
  setCtlr(value: number): void {
    this.writeVmcr((this.vmcr & ~R.ICH_VMCR_EOIM) | ((value & R.ICC_CTLR_EOIMODE) !== 0 ? R.ICH_VMCR_EOIM : 0));
  }
  get ctlrValue(): number {
    const b = R.VIRTUAL_PRIORITY_BITS - 1;
    return (this.eoiMode ? R.ICC_CTLR_EOIMODE : 0) | (b << R.ICC_CTLR_PRIBITS_SHIFT) | R.ICC_CTLR_A3V;
  }

  // ---- internals ----

  /**
   * Deactivates the LR holding vINTID: active → invalid, pending+active → pending. HW = 1 also deactivates pINTID at
   * the physical distributor for this PE (a PPI is this PE's own), never with maintenance; HW = 0 with EOI = 1 leaves
   * an EISR bit and MISR.EOI. No LR holds it → ICH_HCR_EL2.EOIcount++ (5 bits, wraps). An LR holding it but not active
   * is UNPREDICTABLE (counted, ignored).
   */
  private deactivate(reg: number, intid: number): void {
    for (let i = 0; i < this.nrLrs; i++) {
      const hi = this.lrHi[i]!;
      const st = lrState(hi);
      if (st === LrState.Invalid || this.lrLo[i] !== intid) continue;
      if ((st & LrState.Active) === 0) {
        this.unpredictable(reg, U.LR_PENDING, intid);
        return;
      }
      this.lrHi[i] = lrWithState(hi, st === LrState.PendingActive ? LrState.Pending : LrState.Invalid);
      if (lrIsHw(hi)) {
        const p = lrPhysicalId(hi);
        // An SGI/special/unimplemented pINTID was counted when written; nothing is forwarded for it.
        if (this.isValidPintid(p) && !this.dist.deactivate(p, this.pe)) this.unpredictable(reg, U.INACTIVE, p);
      }
      return;
    }
    if (intid >= LPI_BASE) return; // an LPI in no LR (a direct vLPI): nothing to deactivate, no EOIcount
    const count = (this.eoiCount + 1) & 0x1f;
    this.hcr = ((this.hcr & ~R.ICH_HCR_EOICOUNT_MASK) | (count << R.ICH_HCR_EOICOUNT_SHIFT)) >>> 0;
  }

  private recompute(): void {
    const m = (this.hcr & R.ICH_HCR_EN) !== 0 && this.readMisr() !== 0;
    if (m !== this.mline) {
      this.mline = m;
      this.dist.setLine(R.MAINTENANCE_PPI, m, this.pe);
    }
    const v = this.signalledLr() >= 0 || this.signalledVlpi() !== R.SPURIOUS_INTID;
    if (v !== this.vline) {
      this.vline = v;
      this.virqSink?.setVirqLine(this.pe, v);
    }
  }

  /** Highest-priority pending Group 1 LR while VENG1 is set (ties → lowest LR index), or -1. */
  private bestPendingLr(): number {
    if ((this.vmcr & R.ICH_VMCR_ENG1) === 0) return -1;
    let best = -1;
    let bestPrio = 0x100;
    for (let i = 0; i < this.nrLrs; i++) {
      const hi = this.lrHi[i]!;
      if (lrState(hi) !== LrState.Pending || !lrIsGroup1(hi)) continue; // a pending+active LR waits for its EOI
      const p = lrPriority(hi);
      if (p < bestPrio) {
        best = i;
        bestPrio = p;
      }
    }
    return best;
  }
  /** The LR signalled to the vPE: with ICH_HCR_EL2.En, above VPMR and the virtual running priority (§6.3). */
  private signalledLr(): number {
    if ((this.hcr & R.ICH_HCR_EN) === 0) return -1;
    const i = this.bestPendingLr();
    if (i < 0) return -1;
    const p = lrPriority(this.lrHi[i]!);
    return p < this.vmcr >>> R.ICH_VMCR_PMR_SHIFT && (p & this.groupMask()) < this.readRpr() ? i : -1;
  }
  /** The resident vPE's best vLPI while ICH_HCR_EL2.En and VENG1 are set, or 1023. */
  private bestVlpi(): number {
    if (this.vlpis === null || (this.vmcr & R.ICH_VMCR_ENG1) === 0) return R.SPURIOUS_INTID;
    return this.vlpis.best(this.pe);
  }
  /** bestVlpi when it passes the same masking as an LR: VPMR and the virtual running priority (§6.3). */
  private signalledVlpi(): number {
    if ((this.hcr & R.ICH_HCR_EN) === 0) return R.SPURIOUS_INTID;
    const v = this.bestVlpi();
    if (v === R.SPURIOUS_INTID) return v;
    const p = this.vlpis!.priorityOf(this.pe, v);
    return p < this.vmcr >>> R.ICH_VMCR_PMR_SHIFT && (p & this.groupMask()) < this.readRpr() ? v : R.SPURIOUS_INTID;
  }
  private groupMask(): number {
    return R.group1PriorityMask(this.bpr1Value);
  }
  private isValidPintid(p: number): boolean {
    return p >= R.NR_SGIS && this.dist.isValidIntid(p);
  }
  private unpredictable(reg: number, why: number, intid: number): void {
    this.unpredictableCount++;
    this.dist.onUnpredictable?.(this.pe, reg, why, intid);
  }
  private lrIsPredictable(i: number): boolean {
    const hi = this.lrHi[i]!;
    const st = lrState(hi);
    if (st === LrState.Invalid) return true;
    if (R.isSpecialIntid(this.lrLo[i]!)) return false;
    if (!lrIsHw(hi)) return true;
    return st !== LrState.PendingActive && this.isValidPintid(lrPhysicalId(hi));
  }
  private lrBitmap(eisr: boolean): number {
    let bits = 0;
    for (let i = 0; i < this.nrLrs; i++) {
      const hi = this.lrHi[i]!;
      if (lrState(hi) === LrState.Invalid && lrHasEoi(hi) === eisr) bits |= 1 << i;
    }
    return bits >>> 0;
  }
  private lrIndex(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.nrLrs) throw new ModelError(`LR index ${i} (nrLrs ${this.nrLrs})`);
    return i;
  }
}
