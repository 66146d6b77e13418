// GICv2 distributor (ARM IHI 0048B Ch. 3 and §4.3), single security state, all interrupts signalled as IRQ.
// Dense per-INTID state lives in 32-bit words: word `cpu` holds the banked INTIDs 0-31 of that CPU, words
// nrCpus.. hold the shared SPIs 32.. (one word per 32 INTIDs). Nothing is allocated per interrupt.
import { ModelError } from '../../sim/errors.js';
import { touch, touchRead } from '../../sim/footprint.js';
import { markShared } from '../../sim/snapshot.js';
import type { UnpredictableObserver } from '../../trace/gicUnpredictable.js';
import { gicdRead, gicdWrite } from './distributorMmio.js';
import {
  GICC_IAR_CPUID_SHIFT,
  GICC_IAR_INT_ID_MASK,
  GICD_ENABLE,
  GICD_TYPER_CPUNUMBER_SHIFT,
  isSgi,
  MAX_CPUS,
  NR_SGIS,
  SGIR_FILTER_ALL_BUT_SELF,
  SGIR_FILTER_LIST,
  SGIR_FILTER_SELF,
  SPI_BASE,
  SPURIOUS_INTID,
} from './regs.js';

export type IrqTrigger = 'level' | 'edge';
/** Word-addressable per-INTID bitmaps (the GICD_IS*R / GICD_IC*R families). */
export type BitmapKind = 'enable' | 'pend' | 'active';

/** Told after every distributor state change (one per CPU: that CPU's interface). */
export interface GicDistributorListener {
  update(): void;
}

export interface GicDistributorOptions {
  nrCpus: number;
  /** Number of INTIDs (multiple of 32, 32..1024; INTIDs 1020-1023 are never valid). */
  nrIrqs: number;
  /** Implemented priority bits, 4..8 (IHI 0048B §3.3: at least 16 levels); the low 8-n bits read as zero. */
  priorityBits?: number;
  /** Allocates the checker's object ids: one per INTID and one per CPU interface (none: accesses are not declared). */
  newOid?: (name: string) => number;
}

const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);

/** An observer of deactivations: an object, not a closure, so a machine holding one can be copied (sim/snapshot.ts). */
export interface DeactivateObserver {
  deactivated(intid: number, cpu: number): void;
}

export class GicDistributor {
  readonly nrCpus: number;
  readonly nrIrqs: number;
  readonly priorityBits: number;
  readonly priorityMask: number;
  readonly cpuMask: number;
  private ctlr = 0;
  private readonly nrSpiWords: number;
  private readonly enabledW: Uint32Array;
  private readonly latchW: Uint32Array;
  private readonly lineW: Uint32Array;
  private readonly activeW: Uint32Array;
  private readonly edgeW: Uint32Array;
  private readonly prio: Uint8Array;
  private readonly targets: Uint8Array;
  /** [targetCpu * 16 + sgi] = bitmask of source CPUs with that SGI pending (IHI 0048B §4.3 GICD_SPENDSGIRn). */
  private readonly sgiSources: Uint8Array;
  /** Per CPU: IAR value of the highest-priority pending, enabled, inactive interrupt targeting it, or 1023. */
  private readonly hppi: Uint16Array;
  /** Bit k set when shared SPI word k has a candidate (pending, enabled, not active) for some CPU; nrSpiWords ≤ 31. */
  private spiCand = 0;
  private readonly listeners: (GicDistributorListener | undefined)[];
  /**
   * Object ids for a checker's footprints (sim/footprint.ts), -1 when not tracked: every access declares the INTIDs it
   * reads or writes, and a change of a CPU's best candidate declares that CPU interface (what its GICC_IAR reads).
   */
  readonly intidOid: Int32Array;
  readonly giccOid: Int32Array;

  constructor(opts: GicDistributorOptions) {
    const { nrCpus, nrIrqs, priorityBits = 5 } = opts;
    if (!Number.isInteger(nrCpus) || nrCpus < 1 || nrCpus > MAX_CPUS) throw new ModelError(`bad nrCpus ${nrCpus}`);
    if (!Number.isInteger(nrIrqs) || nrIrqs < 32 || nrIrqs > 1024 || nrIrqs % 32 !== 0) {
      throw new ModelError(`nrIrqs ${nrIrqs} must be a multiple of 32 in 32..1024`);
    }
    if (!Number.isInteger(priorityBits) || priorityBits < 4 || priorityBits > 8) {
      throw new ModelError(`priorityBits ${priorityBits} must be 4..8`);
    }
    this.nrCpus = nrCpus;
    this.nrIrqs = nrIrqs;
    this.priorityBits = priorityBits;
    this.priorityMask = (0xff << (8 - priorityBits)) & 0xff;
    this.cpuMask = (1 << nrCpus) - 1;
    this.nrSpiWords = nrIrqs / 32 - 1;
    const words = nrCpus + this.nrSpiWords;
    this.enabledW = new Uint32Array(words);
    this.latchW = new Uint32Array(words);
    this.lineW = new Uint32Array(words);
    this.activeW = new Uint32Array(words);
    this.edgeW = new Uint32Array(words);
    for (let c = 0; c < nrCpus; c++) this.edgeW[c] = 0xffff; // SGIs are always edge-triggered (§4.3 GICD_ICFGRn)
    this.prio = new Uint8Array(nrCpus * 32 + nrIrqs - SPI_BASE);
    this.targets = new Uint8Array(nrIrqs);
    // §4.3.12 GICD_ITARGETSRn: in a uniprocessor implementation every interrupt targets the one CPU (regs RAZ/WI).
    if (nrCpus === 1) this.targets.fill(1, SPI_BASE);
    this.sgiSources = new Uint8Array(nrCpus * NR_SGIS);
    this.hppi = new Uint16Array(nrCpus).fill(SPURIOUS_INTID);
    this.listeners = new Array<GicDistributorListener | undefined>(nrCpus).fill(undefined);
    this.intidOid = new Int32Array(nrIrqs).fill(-1);
    this.giccOid = new Int32Array(nrCpus).fill(-1);
    const newOid = opts.newOid;
    if (newOid !== undefined) {
      for (let i = 0; i < nrIrqs; i++) this.intidOid[i] = newOid(`gic.intid${i}`);
      for (let c = 0; c < nrCpus; c++) this.giccOid[c] = newOid(`gicc${c}`);
    }
    // fixed from here on: every copy of a machine shares them, and a state key reads them as one value
    markShared(this.intidOid);
    markShared(this.giccOid);
  }

  /** Connects the CPU interface of `cpu`; it is told after every state change. */
  attach(cpu: number, listener: GicDistributorListener): void {
    this.listeners[this.checkCpu(cpu)] = listener;
  }

  // ---- device inputs ----

  /** Drives the input line of a PPI (cpu required) or SPI. Edge-triggered: a rising edge latches pending. */
  setLine(intid: number, level: boolean, cpu?: number): void {
    if (isSgi(intid)) throw new ModelError(`INTID ${intid} is an SGI: it has no input line`);
    const w = this.word(intid, cpu);
    const b = 1 << (intid & 31);
    if (((this.lineW[w]! & b) !== 0) === level) return;
    if (level) {
      this.lineW[w]! |= b;
      if ((this.edgeW[w]! & b) !== 0) this.latchW[w]! |= b; // §3.2.4: edge latches pending on assertion
    } else {
      this.lineW[w]! &= ~b;
    }
    this.recompute(w, b);
  }

  lineLevel(intid: number, cpu?: number): boolean {
    return (this.lineW[this.word(intid, cpu, true)]! & (1 << (intid & 31))) !== 0;
  }

  // ---- CPU interface side ----

  /** IAR value (INTID | SGI source CPUID << 10) of the best candidate for `cpu`, or 1023; no priority masking here. */
  highestPending(cpu: number): number {
    touch(this.giccOid[this.checkCpu(cpu)]!);
    return this.hppi[cpu]!;
  }

  /** highestPending for the CPU interface's own output computation (its caller declared the access). */
  hppiOf(cpu: number): number {
    return this.hppi[cpu]!;
  }

  /** Acknowledges highestPending(cpu): pending → active, or active-and-pending (§3.2.4). Returns the IAR value. */
  acknowledge(cpu: number): number {
    const v = this.hppi[this.checkCpu(cpu)]!;
    touch(this.giccOid[cpu]!);
    if (v === SPURIOUS_INTID) return v;
    const intid = v & GICC_IAR_INT_ID_MASK;
    const w = this.word(intid, cpu);
    const b = 1 << (intid & 31);
    this.activeW[w]! |= b;
    if (isSgi(intid)) {
      // §4.3 GICD_SPENDSGIRn: only the acknowledged source's pending bit clears; other sources stay pending.
      const i = cpu * NR_SGIS + intid;
      this.sgiSources[i]! &= ~(1 << (v >> GICC_IAR_CPUID_SHIFT));
      if (this.sgiSources[i] === 0) this.latchW[w]! &= ~b;
    } else {
      // The latch clears; a level interrupt stays pending (active-and-pending) only while its line is asserted.
      this.latchW[w]! &= ~b;
    }
    this.recompute(w, b);
    return v;
  }

  /** Active → inactive (active-and-pending → pending). Returns whether it was active. */
  deactivate(intid: number, cpu: number): boolean {
    const w = this.word(intid, cpu);
    const b = 1 << (intid & 31);
    if ((this.activeW[w]! & b) === 0) return false;
    this.activeW[w]! &= ~b;
    this.recompute(w, b);
    this.onDeactivate?.deactivated(intid, cpu);
    return true;
  }

  /**
   * Observer of every deactivation through the CPU interfaces (host EOIR/DIR, a guest EOI on a HW list register),
   * for metrics and traces; it must not change GIC state.
   */
  onDeactivate: DeactivateObserver | null = null;

  /** Observer of the UNPREDICTABLE accesses the CPU and virtual interfaces absorb (gicUnpredictable.ts), for traces. */
  onUnpredictable: UnpredictableObserver | null = null;

  // ---- typed helpers for model code (cpu is required for SGIs and PPIs, ignored for SPIs) ----

  enable(intid: number, cpu?: number): void {
    this.writeBits('enable', this.word(intid, cpu), 1 << (intid & 31), true);
  }
  disable(intid: number, cpu?: number): void {
    this.writeBits('enable', this.word(intid, cpu), 1 << (intid & 31), false);
  }
  isEnabled(intid: number, cpu?: number): boolean {
    return (this.enabledW[this.word(intid, cpu, true)]! & (1 << (intid & 31))) !== 0;
  }
  /** Sets the pending latch; for an SGI, `source` (default: cpu) is the sending CPU. */
  setPending(intid: number, cpu?: number, source?: number): void {
    const w = this.word(intid, cpu);
    if (isSgi(intid)) this.sgiSources[w * NR_SGIS + intid]! |= 1 << this.checkCpu(source ?? w);
    this.writeBits('pend', w, 1 << (intid & 31), true);
  }
  /** Clears the pending latch; a level interrupt whose line is asserted stays pending (§4.3 GICD_ICPENDRn). */
  clearPending(intid: number, cpu?: number): void {
    const w = this.word(intid, cpu);
    if (isSgi(intid)) this.sgiSources[w * NR_SGIS + intid] = 0;
    this.writeBits('pend', w, 1 << (intid & 31), false);
  }
  isPending(intid: number, cpu?: number): boolean {
    return (this.pendingWord(this.word(intid, cpu, true)) & (1 << (intid & 31))) !== 0;
  }
  setActive(intid: number, active: boolean, cpu?: number): void {
    this.writeBits('active', this.word(intid, cpu), 1 << (intid & 31), active);
  }
  isActive(intid: number, cpu?: number): boolean {
    return (this.activeW[this.word(intid, cpu, true)]! & (1 << (intid & 31))) !== 0;
  }
  /** GICD_IPRIORITYRn byte: only the top `priorityBits` bits are implemented, the rest read as zero (§3.3). */
  setPriority(intid: number, priority: number, cpu?: number): void {
    if (!Number.isInteger(priority) || priority < 0 || priority > 0xff) {
      throw new ModelError(`bad priority ${priority} for INTID ${intid} (0..255)`);
    }
    this.prio[this.slot(intid, cpu)] = priority & this.priorityMask;
    this.recompute();
  }
  priorityOf(intid: number, cpu?: number): number {
    return this.prio[this.slot(intid, cpu, true)]!;
  }
  /** priorityOf for a CPU interface's own output computation, without declaring the access (hppiOf's INTID). */
  hppiPriority(intid: number, cpu: number): number {
    return this.prio[intid < SPI_BASE ? cpu * 32 + intid : this.nrCpus * 32 + intid - SPI_BASE]!;
  }
  /**
   * ITARGETSR CPU mask of an SPI (§4.3.12 GICD_ITARGETSRn); bits for absent CPUs are dropped (RAZ/WI). An SPI
   * with an empty mask is never forwarded. On a uniprocessor GIC the targets are fixed at CPU 0 (writes ignored).
   */
  setTargets(intid: number, cpuMask: number): void {
    this.checkIntid(intid);
    if (intid < SPI_BASE) throw new ModelError(`INTID ${intid} is private: its target is fixed`);
    if (!Number.isInteger(cpuMask) || cpuMask < 0 || cpuMask > 0xff) throw new ModelError(`bad CPU mask ${cpuMask}`);
    if (this.nrCpus === 1) return;
    this.targets[intid] = cpuMask & this.cpuMask;
    this.recompute();
  }
  /** For a private INTID the (read-only) target is the accessing CPU. */
  targetsOf(intid: number, cpu?: number): number {
    this.checkIntid(intid);
    return intid < SPI_BASE ? 1 << this.checkCpu(cpu) : this.targets[intid]!;
  }
  setConfig(intid: number, trigger: IrqTrigger, cpu?: number): void {
    if (isSgi(intid)) {
      if (trigger === 'edge') return;
      throw new ModelError(`INTID ${intid} is an SGI: always edge-triggered`);
    }
    const w = this.word(intid, cpu);
    const b = 1 << (intid & 31);
    if (trigger === 'edge') this.edgeW[w]! |= b;
    else this.edgeW[w]! &= ~b;
    this.recompute(w, b);
  }
  configOf(intid: number, cpu?: number): IrqTrigger {
    return (this.edgeW[this.word(intid, cpu, true)]! & (1 << (intid & 31))) !== 0 ? 'edge' : 'level';
  }
  /** GICD_CTLR.Enable: when clear, no CPU interface is forwarded anything (state still changes). */
  setCtlr(value: number): void {
    this.ctlr = value & GICD_ENABLE;
    this.recompute();
  }
  get ctlrValue(): number {
    return this.ctlr;
  }

  // ---- SGIs ----

  /**
   * GICD_SGIR write by `fromCpu` (§4.3.15 GICD_SGIR): filter 0 = the CPUs in targetList, 1 = all but the sender,
   * 2 = the sender only; filter 3 is reserved and ignored. Target bits for absent CPUs are ignored.
   */
  sendSgi(fromCpu: number, sgi: number, filter: number, targetList = 0): void {
    this.checkCpu(fromCpu);
    if (!Number.isInteger(sgi) || sgi < 0 || sgi >= NR_SGIS) throw new ModelError(`bad SGI ${sgi} (0..15)`);
    let mask = 0;
    if (filter === SGIR_FILTER_LIST) mask = targetList & this.cpuMask;
    else if (filter === SGIR_FILTER_ALL_BUT_SELF) mask = this.cpuMask & ~(1 << fromCpu);
    else if (filter === SGIR_FILTER_SELF) mask = 1 << fromCpu;
    if (mask === 0) return;
    touch(this.intidOid[sgi]!);
    for (let t = 0; t < this.nrCpus; t++) {
      if ((mask & (1 << t)) === 0) continue;
      this.sgiSources[t * NR_SGIS + sgi]! |= 1 << fromCpu;
      this.latchW[t]! |= 1 << sgi;
    }
    this.recompute();
  }
  /** Bitmask of the source CPUs whose `sgi` is pending on `cpu` (GICD_SPENDSGIRn byte). */
  sgiSourcesOf(cpu: number, sgi: number): number {
    return this.sgiSources[this.checkCpu(cpu) * NR_SGIS + (sgi & 15)]!;
  }
  /** GICD_TYPER (§4.3.2): ITLinesNumber[4:0] = nrIrqs/32 - 1, CPUNumber[7:5] = nrCpus - 1, SecurityExtn = 0. */
  get typer(): number {
    return (this.nrIrqs / 32 - 1) | ((this.nrCpus - 1) << GICD_TYPER_CPUNUMBER_SHIFT);
  }
  /** GICD_SPENDSGIRn / GICD_CPENDSGIRn byte write for one SGI of `cpu`. */
  writeSgiSources(cpu: number, sgi: number, bits: number, set: boolean): void {
    const i = this.checkCpu(cpu) * NR_SGIS + (sgi & 15);
    touch(this.intidOid[sgi & 15]!);
    const v = set ? this.sgiSources[i]! | (bits & this.cpuMask) : this.sgiSources[i]! & ~bits;
    this.sgiSources[i] = v;
    this.writeBits('pend', cpu, 1 << (sgi & 15), v !== 0);
  }

  // ---- word-level access for the MMIO decoder: register n covers INTIDs 32n..32n+31 (n = 0 is banked) ----

  readBitmap(kind: BitmapKind, n: number, cpu: number): number {
    const w = this.regWord(n, cpu);
    if (w < 0) return 0;
    this.touchWord(n, 0xffffffff, true);
    if (kind === 'pend') return this.pendingWord(w) >>> 0;
    return (kind === 'enable' ? this.enabledW[w]! : this.activeW[w]!) >>> 0;
  }
  writeBitmap(kind: BitmapKind, n: number, cpu: number, bits: number, set: boolean): void {
    const w = this.regWord(n, cpu);
    if (w < 0) return;
    // INTIDs 1020-1023 do not exist; SGI pending bits are read-only here (use GICD_[CS]PENDSGIRn, §4.3).
    let mask = n === 31 ? 0x0fffffff : 0xffffffff;
    if (kind === 'pend' && n === 0) mask = 0xffff0000;
    this.touchWord(n, bits & mask);
    this.writeBits(kind, w, bits & mask, set);
  }

  read(offset: number, cpu: number, size: 1 | 4 = 4): number {
    return gicdRead(this, offset, this.checkCpu(cpu), size);
  }
  write(offset: number, value: number, cpu: number, size: 1 | 4 = 4): void {
    gicdWrite(this, offset, value >>> 0, this.checkCpu(cpu), size);
  }

  /** Whether `intid` exists on this distributor. */
  isValidIntid(intid: number): boolean {
    return Number.isInteger(intid) && intid >= 0 && intid < this.nrIrqs && intid < 1020;
  }

  // ---- internals ----

  /** Declare the INTIDs `bits` of register word n (32n..32n+31). */
  private touchWord(n: number, bits: number, readOnly = false): void {
    for (let m = bits; m !== 0; m &= m - 1) {
      const intid = n * 32 + lowestBit(m);
      if (intid >= this.nrIrqs) continue;
      if (readOnly) touchRead(this.intidOid[intid]!);
      else touch(this.intidOid[intid]!);
    }
  }

  private writeBits(kind: BitmapKind, w: number, bits: number, set: boolean): void {
    const arr = kind === 'enable' ? this.enabledW : kind === 'pend' ? this.latchW : this.activeW;
    if (set) arr[w]! |= bits;
    else arr[w]! &= ~bits;
    this.recompute(w, bits);
  }
  /** Level: pending = latch | line; edge (and SGI): pending = latch (§3.2.4). */
  private pendingWord(w: number): number {
    return this.latchW[w]! | (this.lineW[w]! & ~this.edgeW[w]!);
  }
  private regWord(n: number, cpu: number): number {
    if (n === 0) return this.checkCpu(cpu);
    return n <= this.nrSpiWords ? this.nrCpus + n - 1 : -1;
  }

  /**
   * After a state change: of the INTIDs `bits` of word `w`, or of anything (w = -1: priorities, targets, enables of
   * the whole distributor). Refreshes the word's bit in `spiCand`, the best candidate of the CPUs those INTIDs can
   * reach (a banked word's own CPU, an SPI's targets; every other CPU's best candidate cannot have changed), then
   * tells every CPU interface.
   */
  private recompute(w = -1, bits = 0): void {
    let cpus = this.cpuMask;
    const k = w - this.nrCpus;
    if (k >= 0) {
      if ((this.pendingWord(w) & this.enabledW[w]! & ~this.activeW[w]!) !== 0) this.spiCand |= 1 << k;
      else this.spiCand &= ~(1 << k);
      cpus = 0;
      for (let m = bits; m !== 0; m &= m - 1) cpus |= this.targets[(k + 1) * 32 + lowestBit(m)]!;
    } else if (w >= 0) cpus = 1 << w;
    const spiCand = (this.ctlr & GICD_ENABLE) !== 0 ? this.spiCand : 0;
    for (let c = 0; c < this.nrCpus; c++) {
      if ((cpus & (1 << c)) === 0) continue;
      const v = this.computeHppi(c, spiCand);
      // What GICC_IAR of that CPU reads changed; an unchanged best candidate leaves its readers unaffected.
      if (v !== this.hppi[c]) touch(this.giccOid[c]!);
      this.hppi[c] = v;
    }
    // Only those CPUs' outputs can change: a CPU interface's line follows its best candidate and that candidate's
    // priority (both unchanged elsewhere), and the interface updates itself when its own registers change.
    for (let c = 0; c < this.nrCpus; c++) if ((cpus & (1 << c)) !== 0) this.listeners[c]?.update();
  }

  /**
   * Highest priority (lowest value; ties → lowest INTID) pending, enabled, not active INTID targeting `cpu`.
   * `spiCand` has bit k set when SPI word k has a candidate for some CPU (0 while GICD_CTLR.Enable is clear).
   */
  private computeHppi(cpu: number, spiCand: number): number {
    if ((this.ctlr & GICD_ENABLE) === 0) return SPURIOUS_INTID;
    let best = SPURIOUS_INTID;
    let bestPrio = 0x100;
    let cand = this.pendingWord(cpu) & this.enabledW[cpu]! & ~this.activeW[cpu]!;
    while (cand !== 0) {
      const b = lowestBit(cand);
      cand &= cand - 1;
      const p = this.prio[cpu * 32 + b]!;
      if (p < bestPrio) {
        best = b;
        bestPrio = p;
      }
    }
    const cpuBit = 1 << cpu;
    const base = this.nrCpus;
    let words = spiCand;
    while (words !== 0) {
      const k = lowestBit(words);
      words &= words - 1;
      const w = base + k;
      cand = this.pendingWord(w) & this.enabledW[w]! & ~this.activeW[w]!;
      while (cand !== 0) {
        const b = lowestBit(cand);
        cand &= cand - 1;
        const intid = (k + 1) * 32 + b;
        if ((this.targets[intid]! & cpuBit) === 0) continue;
        const p = this.prio[base * 32 + intid - SPI_BASE]!;
        if (p < bestPrio) {
          best = intid;
          bestPrio = p;
        }
      }
    }
    if (best < NR_SGIS) return best | (lowestBit(this.sgiSources[cpu * NR_SGIS + best]!) << GICC_IAR_CPUID_SHIFT);
    return best;
  }

  private checkCpu(cpu: number | undefined): number {
    if (cpu === undefined || !Number.isInteger(cpu) || cpu < 0 || cpu >= this.nrCpus) {
      throw new ModelError(`bad CPU ${cpu} (nrCpus ${this.nrCpus})`);
    }
    return cpu;
  }
  private checkIntid(intid: number): void {
    if (!this.isValidIntid(intid)) throw new ModelError(`bad INTID ${intid} (nrIrqs ${this.nrIrqs})`);
  }
  /** Banked INTIDs 0-31 need the CPU whose copy is meant. */
  private privateCpu(intid: number, cpu: number | undefined): number {
    if (cpu === undefined) throw new ModelError(`INTID ${intid} is private (SGI/PPI): a CPU is required`);
    return this.checkCpu(cpu);
  }
  private word(intid: number, cpu: number | undefined, readOnly = false): number {
    this.checkIntid(intid);
    if (readOnly) touchRead(this.intidOid[intid]!);
    else touch(this.intidOid[intid]!);
    return intid < SPI_BASE ? this.privateCpu(intid, cpu) : this.nrCpus + (intid >> 5) - 1;
  }
  private slot(intid: number, cpu: number | undefined, readOnly = false): number {
    this.checkIntid(intid);
    if (readOnly) touchRead(this.intidOid[intid]!);
    else touch(this.intidOid[intid]!);
    return intid < SPI_BASE ? this.privateCpu(intid, cpu) * 32 + intid : this.nrCpus * 32 + intid - SPI_BASE;
  }
}
