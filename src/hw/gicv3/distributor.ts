// GICv3 Interrupt Routing Infrastructure (ARM IHI 0069 Ch. 2-4): the distributor's SPIs and, for each PE, the
// SGIs/PPIs its redistributor holds, with affinity routing always enabled (GICD_CTLR.ARE RAO/WI, §2.3) and a single
// Security state (GICD_CTLR.DS = 1) where every interrupt is Group 1. Dense per-INTID state lives in 32-bit words:
// word `pe` holds the redistributor's INTIDs 0-31 of that PE, words nrPes.. hold the SPIs 32.. (one word per 32
// INTIDs), then the GICv3.1 Extended SPIs 4096.. when the GIC has them (nrEspis). The shared (SPI and ESPI) INTIDs
// have a dense "shared index": an SPI's is its INTID, ESPI 4096 + e's is nrIrqs + e, so the ESPI words follow the
// SPI words and both are handled alike. Nothing is allocated per interrupt. LPIs (lpi.ts) exist when the GIC is built
// with nrLpis; GICD_TYPER.IDbits reports the configured INTID width (16 or 24 bits).
import { ModelError } from '../../sim/errors.js';
import { touch, touchRead } from '../../sim/footprint.js';
import { markShared } from '../../sim/snapshot.js';
import type { UnpredictableObserver } from '../../trace/gicUnpredictable.js';
import type { BitmapKind, DeactivateObserver, IrqTrigger } from '../gic/distributor.js';
import type { PhysicalMemory } from '../physMem.js';
import { Gicv3Lpis, LPI_BASE, type LpiListener } from './lpi.js';
import { gicdRead, gicdWrite } from './mmio.js';
import {
  ESPI_BASE,
  GICD_CTLR_ARE,
  GICD_CTLR_DS,
  GICD_CTLR_ENABLE_G0,
  GICD_CTLR_ENABLE_G1,
  GICD_IROUTER_AFF_MASK,
  GICD_IROUTER_IRM,
  GICD_TYPER_A3V,
  GICD_TYPER_CPUNUMBER_SHIFT,
  GICD_TYPER_ESPI,
  GICD_TYPER_ESPI_RANGE_SHIFT,
  GICD_TYPER_IDBITS_SHIFT,
  GICD_TYPER_LPIS,
  GICD_TYPER_NUM_LPIS_SHIFT,
  isSgi,
  MAX_ESPIS,
  MAX_PES,
  packAffinity,
  SPI_BASE,
  SPURIOUS_INTID,
} from './regs.js';

export type { BitmapKind, IrqTrigger } from '../gic/distributor.js';

/** Told after every state change (one per PE: that PE's CPU interface). */
export interface Gicv3DistributorListener {
  update(): void;
}

export interface Gicv3DistributorOptions {
  nrPes: number;
  /** Number of INTIDs below 1024 (multiple of 32, 32..1024; 1020-1023 are never valid). */
  nrIrqs: number;
  /** GICv3.1 Extended SPIs, INTIDs 4096 .. 4096 + nrEspis - 1 (multiple of 32, 0..1024; default 0: a GICv3.0). */
  nrEspis?: number;
  /** Implemented priority bits, 4..8 (§4.8: at least 16 levels with one Security state); low bits read as zero. */
  priorityBits?: number;
  /** Interrupt identifier bits, 16 or 24 (GICD_TYPER.IDbits + 1, ICC_CTLR_EL1.IDbits). Default 16. */
  idBits?: 16 | 24;
  /** Affinity of each PE (packAffinity(Aff3, Aff2, Aff1, Aff0)); default PE i → 0.0.(i >> 4).(i & 15). Aff0 ≤ 15. */
  affinities?: readonly number[];
  /** Allocates the checker's object ids: one per INTID and one per CPU interface (none: accesses are not declared). */
  newOid?: (name: string) => number;
  /** LPIs implemented (INTIDs 8192 .. 8192 + nrLpis - 1, lpi.ts), 0 for none (default): GICD_TYPER.LPIS = nrLpis > 0. */
  nrLpis?: number;
  /** The memory the redistributors read the LPI configuration table from (required with nrLpis). */
  memory?: PhysicalMemory;
}

const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);
/** route[] value of an SPI with Interrupt_Routing_Mode = 1 (1 of N). */
const ROUTE_ANY = -2;
/** route[] value of an SPI whose affinity names no implemented PE. */
const ROUTE_NONE = -1;

export class Gicv3Distributor implements LpiListener {
  readonly nrPes: number;
  readonly nrIrqs: number;
  readonly nrEspis: number;
  readonly priorityBits: number;
  readonly priorityMask: number;
  readonly idBits: 16 | 24;
  readonly peMask: number;
  /** Packed affinity per PE (GICR_TYPER.Affinity_Value, MPIDR_EL1.Aff3-0). */
  readonly affinity: Float64Array;
  private ctlr = 0;
  private readonly nrSpiWords: number;
  private readonly enabledW: Uint32Array;
  private readonly latchW: Uint32Array;
  private readonly lineW: Uint32Array;
  private readonly activeW: Uint32Array;
  private readonly edgeW: Uint32Array;
  private readonly prio: Uint8Array;
  /** GICD_IROUTER<n>(E) low word (IRM, Aff2.Aff1.Aff0) and Aff3 as written, and route[] the PE they name; by shared index. */
  private readonly irouterLo: Uint32Array;
  private readonly irouterAff3: Uint8Array;
  private readonly route: Int8Array;
  /** PEs with GICR_WAKER.ProcessorSleep = 0 and with ICC_IGRPEN1_EL1.Enable = 1 (bit per PE). */
  private awake = 0;
  private grp1Enabled = 0;
  /** Per PE: INTID of the highest-priority pending, enabled, inactive interrupt forwarded to it, or 1023. */
  private readonly hppi: Uint32Array;
  /** Bit k of word k >> 5 set when shared word k has a candidate (pending, enabled, not active) for some PE. */
  private readonly sharedCand: Uint32Array;
  private readonly listeners: (Gicv3DistributorListener | undefined)[];
  /**
   * Object ids for a checker's footprints (sim/footprint.ts), -1 when not tracked: every access declares the INTIDs it
   * reads or writes, and a change of a PE's best candidate declares that PE's CPU interface (what ICC_IAR1_EL1 reads).
   */
  readonly intidOid: Int32Array;
  readonly iccOid: Int32Array;
  /** The redistributors' LPI state, or null when the GIC implements no LPIs. */
  readonly lpis: Gicv3Lpis | null;

  constructor(opts: Gicv3DistributorOptions) {
    const { nrPes, nrIrqs, nrEspis = 0, priorityBits = 5, idBits = 16 } = opts;
    if (!Number.isInteger(nrPes) || nrPes < 1 || nrPes > MAX_PES) throw new ModelError(`bad nrPes ${nrPes}`);
    if (!Number.isInteger(nrIrqs) || nrIrqs < 32 || nrIrqs > 1024 || nrIrqs % 32 !== 0) {
      throw new ModelError(`nrIrqs ${nrIrqs} must be a multiple of 32 in 32..1024`);
    }
    if (!Number.isInteger(nrEspis) || nrEspis < 0 || nrEspis > MAX_ESPIS || nrEspis % 32 !== 0) {
      throw new ModelError(`nrEspis ${nrEspis} must be a multiple of 32 in 0..${MAX_ESPIS}`);
    }
    if (!Number.isInteger(priorityBits) || priorityBits < 4 || priorityBits > 8) {
      throw new ModelError(`priorityBits ${priorityBits} must be 4..8`);
    }
    if (idBits !== 16 && idBits !== 24) throw new ModelError(`idBits ${idBits} must be 16 or 24`);
    this.nrPes = nrPes;
    this.nrIrqs = nrIrqs;
    this.nrEspis = nrEspis;
    this.priorityBits = priorityBits;
    this.priorityMask = (0xff << (8 - priorityBits)) & 0xff;
    this.idBits = idBits;
    this.peMask = nrPes === 32 ? 0xffffffff : (1 << nrPes) - 1;
    this.affinity = new Float64Array(nrPes);
    for (let pe = 0; pe < nrPes; pe++) {
      const a = opts.affinities?.[pe] ?? packAffinity(0, 0, pe >> 4, pe & 15);
      if (!Number.isInteger(a) || a < 0 || a > 0xffffffff) throw new ModelError(`bad affinity ${a} of PE ${pe}`);
      // ICC_CTLR_EL1.RSS = 0: SGIs reach only Aff0 0-15 (§12.2 ICC_SGI1R_EL1 TargetList)
      if ((a & 0xff) > 15) throw new ModelError(`PE ${pe}: Aff0 ${a & 0xff} > 15 needs range selector support`);
      for (let q = 0; q < pe; q++)
        if (this.affinity[q] === a) throw new ModelError(`PEs ${q} and ${pe}: same affinity`);
      this.affinity[pe] = a;
    }
    this.nrSpiWords = nrIrqs / 32 - 1;
    const sharedWords = this.nrSpiWords + nrEspis / 32; // SPI words, then ESPI words
    this.sharedCand = new Uint32Array((sharedWords + 31) >> 5);
    const words = nrPes + sharedWords;
    const shared = nrIrqs + nrEspis; // shared indices 32 .. shared - 1
    this.enabledW = new Uint32Array(words);
    this.latchW = new Uint32Array(words);
    this.lineW = new Uint32Array(words);
    this.activeW = new Uint32Array(words);
    this.edgeW = new Uint32Array(words);
    for (let pe = 0; pe < nrPes; pe++) this.edgeW[pe] = 0xffff; // SGIs are always edge-triggered (GICR_ICFGR0)
    this.prio = new Uint8Array(nrPes * 32 + shared - SPI_BASE);
    this.irouterLo = new Uint32Array(shared);
    this.irouterAff3 = new Uint8Array(shared);
    this.route = new Int8Array(shared).fill(ROUTE_NONE);
    for (let i = SPI_BASE; i < shared; i++) this.route[i] = this.peOfAffinity(0); // IROUTER resets to 0.0.0.0 here
    this.hppi = new Uint32Array(nrPes).fill(SPURIOUS_INTID);
    this.listeners = new Array<Gicv3DistributorListener | undefined>(nrPes).fill(undefined);
    // indexed by INTID (ESPIs included: what the host driver's callers index it with)
    this.intidOid = new Int32Array(nrEspis > 0 ? ESPI_BASE + nrEspis : nrIrqs).fill(-1);
    this.iccOid = new Int32Array(nrPes).fill(-1);
    const newOid = opts.newOid;
    if (newOid !== undefined) {
      for (let i = 0; i < nrIrqs; i++) this.intidOid[i] = newOid(`gicv3.intid${i}`);
      for (let i = ESPI_BASE; i < ESPI_BASE + nrEspis; i++) this.intidOid[i] = newOid(`gicv3.intid${i}`);
      for (let pe = 0; pe < nrPes; pe++) this.iccOid[pe] = newOid(`icc${pe}`);
    }
    // fixed from here on: every copy of a machine shares them, and a state key reads them as one value
    markShared(this.intidOid);
    markShared(this.iccOid);
    const nrLpis = opts.nrLpis ?? 0;
    if (nrLpis > 0 && (opts.memory === undefined || LPI_BASE + nrLpis > 2 ** idBits)) {
      throw new ModelError(`${nrLpis} LPIs need the memory their tables live in and INTIDs within ${idBits} bits`);
    }
    this.lpis =
      nrLpis > 0 ? new Gicv3Lpis({ nrPes, nrLpis, memory: opts.memory!, onChange: this, newOid: opts.newOid }) : null;
  }

  /** A redistributor's LPI state changed (lpi.ts): re-evaluate what its PE is offered. */
  lpiChanged(pe: number): void {
    this.recompute(pe);
  }

  isLpi(intid: number): boolean {
    return this.lpis?.isLpi(intid) === true;
  }

  /** Connects the CPU interface of `pe`; it is told after every state change. */
  attach(pe: number, listener: Gicv3DistributorListener): void {
    this.listeners[this.checkPe(pe)] = listener;
  }

  // ---- device inputs ----

  /** Drives the input line of a PPI (pe required) or SPI. Edge-triggered: a rising edge latches pending. */
  setLine(intid: number, level: boolean, pe?: number): void {
    if (isSgi(intid)) throw new ModelError(`INTID ${intid} is an SGI: it has no input line`);
    const w = this.word(intid, pe);
    const b = 1 << (intid & 31);
    if (((this.lineW[w]! & b) !== 0) === level) return;
    if (level) {
      this.lineW[w]! |= b;
      if ((this.edgeW[w]! & b) !== 0) this.latchW[w]! |= b; // §4.1 edge-triggered: an assertion latches pending
    } else {
      this.lineW[w]! &= ~b;
    }
    this.recompute(w, b);
  }

  lineLevel(intid: number, pe?: number): boolean {
    return (this.lineW[this.word(intid, pe, true)]! & (1 << (intid & 31))) !== 0;
  }

  // ---- CPU interface side ----

  /** INTID of the best candidate forwarded to `pe`, or 1023 (ICC_HPPIR1_EL1 before the interface's own checks). */
  highestPending(pe: number): number {
    touch(this.iccOid[this.checkPe(pe)]!);
    return this.hppi[pe]!;
  }
  /** highestPending for the CPU interface's own output computation (its caller declared the access). */
  hppiOf(pe: number): number {
    return this.hppi[pe]!;
  }
  /** Priority of hppiOf(pe), without declaring the access. */
  hppiPriority(intid: number, pe: number): number {
    if (intid >= LPI_BASE) return this.lpis!.priorityOf(intid);
    return this.prio[intid < SPI_BASE ? pe * 32 + intid : this.nrPes * 32 + this.sharedIndex(intid) - SPI_BASE]!;
  }

  /** Acknowledges highestPending(pe): pending → active, or active-and-pending (§4.1.1 "Interrupt lifecycle"). */
  acknowledge(pe: number): number {
    const intid = this.hppi[this.checkPe(pe)]!;
    touch(this.iccOid[pe]!);
    if (intid === SPURIOUS_INTID) return intid;
    if (intid >= LPI_BASE) {
      this.lpis!.clearPending(pe, intid); // an LPI has no active state: acknowledged is inactive
      return intid;
    }
    const w = this.word(intid, pe);
    const b = 1 << (intid & 31);
    this.activeW[w]! |= b;
    // Edge and SGI: the latch clears; level: stays pending (active-and-pending) while its line is asserted.
    this.latchW[w]! &= ~b;
    this.recompute(w, b);
    return intid;
  }

  /** Active → inactive (active-and-pending → pending). Returns whether it was active. */
  deactivate(intid: number, pe: number): boolean {
    const w = this.word(intid, pe);
    const b = 1 << (intid & 31);
    if ((this.activeW[w]! & b) === 0) return false;
    this.activeW[w]! &= ~b;
    this.recompute(w, b);
    this.onDeactivate?.deactivated(intid, pe);
    return true;
  }

  /** Observer of every deactivation through the CPU interfaces (for metrics and traces; must not change GIC state). */
  onDeactivate: DeactivateObserver | null = null;

  /** Observer of the UNPREDICTABLE accesses the CPU and virtual interfaces absorb (gicUnpredictable.ts), for traces. */
  onUnpredictable: UnpredictableObserver | null = null;

  /** ICC_IGRPEN1_EL1.Enable of `pe` (its CPU interface tells): a PE participates in 1 of N only when it is set. */
  setGroup1Enabled(pe: number, enabled: boolean): void {
    const bit = 1 << this.checkPe(pe);
    this.grp1Enabled = enabled ? this.grp1Enabled | bit : this.grp1Enabled & ~bit;
    this.recompute();
  }

  // ---- redistributor power (§11.1 "Power management": GICR_WAKER) ----

  /**
   * GICR_WAKER.ProcessorSleep of `pe`. While set the redistributor forwards nothing to the CPU interface and the PE
   * does not take part in 1 of N distribution; ChildrenAsleep follows at once (the interface has no outstanding work).
   */
  setProcessorSleep(pe: number, sleep: boolean): void {
    const bit = 1 << this.checkPe(pe);
    touch(this.iccOid[pe]!);
    this.awake = sleep ? this.awake & ~bit : this.awake | bit;
    this.recompute();
  }
  isProcessorAsleep(pe: number): boolean {
    return (this.awake & (1 << this.checkPe(pe))) === 0;
  }

  // ---- typed helpers for model code (pe is required for SGIs and PPIs, ignored for SPIs) ----

  enable(intid: number, pe?: number): void {
    this.writeBits('enable', this.word(intid, pe), 1 << (intid & 31), true);
  }
  disable(intid: number, pe?: number): void {
    this.writeBits('enable', this.word(intid, pe), 1 << (intid & 31), false);
  }
  isEnabled(intid: number, pe?: number): boolean {
    return (this.enabledW[this.word(intid, pe, true)]! & (1 << (intid & 31))) !== 0;
  }
  setPending(intid: number, pe?: number): void {
    this.writeBits('pend', this.word(intid, pe), 1 << (intid & 31), true);
  }
  /** Clears the pending latch; a level interrupt whose line is asserted stays pending (§12.9 GICD_ICPENDR<n>). */
  clearPending(intid: number, pe?: number): void {
    this.writeBits('pend', this.word(intid, pe), 1 << (intid & 31), false);
  }
  isPending(intid: number, pe?: number): boolean {
    return (this.pendingWord(this.word(intid, pe, true)) & (1 << (intid & 31))) !== 0;
  }
  setActive(intid: number, active: boolean, pe?: number): void {
    this.writeBits('active', this.word(intid, pe), 1 << (intid & 31), active);
  }
  isActive(intid: number, pe?: number): boolean {
    return (this.activeW[this.word(intid, pe, true)]! & (1 << (intid & 31))) !== 0;
  }
  /** IPRIORITYR byte: only the top `priorityBits` bits are implemented, the rest read as zero (§4.8.1). */
  setPriority(intid: number, priority: number, pe?: number): void {
    if (!Number.isInteger(priority) || priority < 0 || priority > 0xff) {
      throw new ModelError(`bad priority ${priority} for INTID ${intid} (0..255)`);
    }
    this.prio[this.slot(intid, pe)] = priority & this.priorityMask;
    this.recompute();
  }
  priorityOf(intid: number, pe?: number): number {
    if (this.lpis?.isLpi(intid) === true) return this.lpis.priorityOf(intid);
    return this.prio[this.slot(intid, pe, true)]!;
  }
  setConfig(intid: number, trigger: IrqTrigger, pe?: number): void {
    if (isSgi(intid)) {
      if (trigger === 'edge') return;
      throw new ModelError(`INTID ${intid} is an SGI: always edge-triggered`);
    }
    const w = this.word(intid, pe);
    const b = 1 << (intid & 31);
    if (trigger === 'edge') this.edgeW[w]! |= b;
    else this.edgeW[w]! &= ~b;
    this.recompute(w, b);
  }
  configOf(intid: number, pe?: number): IrqTrigger {
    return (this.edgeW[this.word(intid, pe, true)]! & (1 << (intid & 31))) !== 0 ? 'edge' : 'level';
  }

  // ---- affinity routing (§4.5 "Affinity routing", §12.9 GICD_IROUTER<n>) ----

  /**
   * GICD_IROUTER<n> of an SPI: `lo` = Interrupt_Routing_Mode[31] | Aff2[23:16] | Aff1[15:8] | Aff0[7:0], `aff3` =
   * Aff3 (bits [39:32]). With IRM = 0 an affinity naming no implemented PE is CONSTRAINED UNPREDICTABLE; this model
   * takes the first permitted behaviour: the SPI is forwarded to no PE and reads return the written value.
   */
  writeIrouter(intid: number, lo: number, aff3: number): void {
    this.checkIntid(intid);
    if (intid < SPI_BASE) throw new ModelError(`INTID ${intid} is private: it has no GICD_IROUTER`);
    touch(this.intidOid[intid]!);
    const si = this.sharedIndex(intid);
    this.irouterLo[si] = (lo & (GICD_IROUTER_IRM | GICD_IROUTER_AFF_MASK)) >>> 0;
    this.irouterAff3[si] = aff3 & 0xff;
    this.route[si] =
      (lo & GICD_IROUTER_IRM) !== 0
        ? ROUTE_ANY
        : this.peOfAffinity((aff3 & 0xff) * 0x1000000 + (lo & GICD_IROUTER_AFF_MASK));
    this.recompute();
  }
  /** Routes an SPI to `pe` (IRM = 0 with that PE's affinity) or, with pe = 'any', 1 of N. */
  setRoute(intid: number, pe: number | 'any'): void {
    if (pe === 'any') {
      this.writeIrouter(intid, GICD_IROUTER_IRM, 0);
      return;
    }
    const a = this.affinity[this.checkPe(pe)]!;
    this.writeIrouter(intid, a % 0x1000000, Math.floor(a / 0x1000000));
  }
  irouterLow(intid: number): number {
    this.checkIntid(intid);
    return this.irouterLo[this.sharedIndex(intid)]!;
  }
  irouterHigh(intid: number): number {
    this.checkIntid(intid);
    return this.irouterAff3[this.sharedIndex(intid)]!;
  }
  /** The PE an SPI is routed to, 'any' for 1 of N, or null when its affinity names no implemented PE. */
  routeOf(intid: number): number | 'any' | null {
    this.checkIntid(intid);
    if (intid < SPI_BASE) throw new ModelError(`INTID ${intid} is private: it has no route`);
    const r = this.route[this.sharedIndex(intid)]!;
    return r === ROUTE_ANY ? 'any' : r === ROUTE_NONE ? null : r;
  }
  /** The PE with affinity `aff` (packed), or -1. */
  peOfAffinity(aff: number): number {
    for (let pe = 0; pe < this.nrPes; pe++) if (this.affinity[pe] === aff) return pe;
    return ROUTE_NONE;
  }

  /** GICD_CTLR: EnableGrp0 and EnableGrp1 are writable; ARE and DS read as one (single Security state, §12.9.4). */
  setCtlr(value: number): void {
    this.ctlr = value & (GICD_CTLR_ENABLE_G0 | GICD_CTLR_ENABLE_G1);
    this.recompute();
  }
  /** RWP (bit 31) always reads 0: register writes take effect synchronously here. */
  get ctlrValue(): number {
    return this.ctlr | GICD_CTLR_ARE | GICD_CTLR_DS;
  }
  /**
   * GICD_TYPER (§12.9.38): ITLinesNumber, CPUNumber (min(nrPes, 8) - 1), IDbits, A3V = 1, LPIS, num_LPIs
   * (2^(num_LPIs + 1) LPIs: the largest power of two within nrLpis, so software allocates only implemented ones), and
   * with Extended SPIs ESPI = 1 and ESPI_range = nrEspis / 32 - 1; MBIS = 0.
   */
  get typer(): number {
    const cpuNumber = Math.min(this.nrPes, 8) - 1;
    const espi = this.nrEspis > 0 ? GICD_TYPER_ESPI | ((this.nrEspis / 32 - 1) << GICD_TYPER_ESPI_RANGE_SHIFT) : 0;
    const numLpis = this.lpis !== null ? (31 - Math.clz32(this.lpis.nrLpis) - 1) << GICD_TYPER_NUM_LPIS_SHIFT : 0;
    return (
      ((this.nrIrqs / 32 - 1) |
        (cpuNumber << GICD_TYPER_CPUNUMBER_SHIFT) |
        ((this.idBits - 1) << GICD_TYPER_IDBITS_SHIFT) |
        GICD_TYPER_A3V |
        (this.lpis !== null ? GICD_TYPER_LPIS : 0) |
        espi |
        numLpis) >>>
      0
    );
  }

  // ---- SGIs (§12.2 ICC_SGI1R_EL1, sent through a CPU interface) ----

  /**
   * Makes SGI `sgi` pending on the PEs an ICC_SGI1R_EL1 write of `fromPe` names: with irm every PE but the sender,
   * else the PEs whose affinity is aff3.aff2.aff1.(16·rs + i) for each bit i of targetList. With affinity routing an
   * SGI has one pending bit per target PE, not one per source (§4.4 "Software Generated Interrupts").
   */
  sendSgi(fromPe: number, sgi: number, irm: boolean, targetList: number, aff: number, rs = 0): void {
    this.checkPe(fromPe);
    if (!Number.isInteger(sgi) || sgi < 0 || sgi > 15) throw new ModelError(`bad SGI ${sgi} (0..15)`);
    let mask = 0;
    if (irm) mask = this.peMask & ~(1 << fromPe);
    else {
      for (let pe = 0; pe < this.nrPes; pe++) {
        const a = this.affinity[pe]!;
        const aff0 = a % 0x100;
        if (a - aff0 !== aff - (aff % 0x100) || aff0 >> 4 !== rs) continue;
        if ((targetList & (1 << (aff0 & 15))) !== 0) mask |= 1 << pe;
      }
    }
    if (mask === 0) return;
    touch(this.intidOid[sgi]!);
    for (let pe = 0; pe < this.nrPes; pe++) if ((mask & (1 << pe)) !== 0) this.latchW[pe]! |= 1 << sgi;
    this.recompute();
  }

  // ---- word-level access for the MMIO decoders: register n covers INTIDs 32n..32n+31 (n = 0: `pe`'s own), or
  // with `extended` (the GICD_*RnE registers) ESPIs 4096 + 32n .. 4096 + 32n + 31 ----

  readBitmap(kind: BitmapKind, n: number, pe: number, extended = false): number {
    const w = extended ? this.espiRegWord(n) : this.regWord(n, pe);
    if (w < 0) return 0;
    this.touchWord(extended ? ESPI_BASE + n * 32 : n * 32, 0xffffffff, true);
    if (kind === 'pend') return this.pendingWord(w) >>> 0;
    return (kind === 'enable' ? this.enabledW[w]! : this.activeW[w]!) >>> 0;
  }
  writeBitmap(kind: BitmapKind, n: number, pe: number, bits: number, set: boolean, extended = false): void {
    const w = extended ? this.espiRegWord(n) : this.regWord(n, pe);
    if (w < 0) return;
    const mask = n === 31 && !extended ? 0x0fffffff : 0xffffffff; // INTIDs 1020-1023 do not exist
    this.touchWord(extended ? ESPI_BASE + n * 32 : n * 32, bits & mask);
    this.writeBits(kind, w, bits & mask, set);
  }

  read(offset: number, size: 1 | 4 = 4): number {
    return gicdRead(this, offset, size);
  }
  write(offset: number, value: number, size: 1 | 4 = 4): void {
    gicdWrite(this, offset, value >>> 0, size);
  }

  /** Whether `intid` (SGI, PPI, SPI or Extended SPI) exists on this distributor. */
  isValidIntid(intid: number): boolean {
    if (!Number.isInteger(intid) || intid < 0) return false;
    return intid < ESPI_BASE ? intid < this.nrIrqs && intid < 1020 : intid < ESPI_BASE + this.nrEspis;
  }
  isEspi(intid: number): boolean {
    return intid >= ESPI_BASE && intid < ESPI_BASE + this.nrEspis;
  }

  // ---- internals ----

  /** Declares the INTIDs `bits` of the 32 starting at `base` (read only, or read and written). */
  private touchWord(base: number, bits: number, readOnly = false): void {
    for (let m = bits; m !== 0; m &= m - 1) {
      const intid = base + lowestBit(m);
      if (intid >= this.intidOid.length) continue;
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
  /** Level: pending = latch | line; edge (and SGI): pending = latch (§4.1). */
  private pendingWord(w: number): number {
    return this.latchW[w]! | (this.lineW[w]! & ~this.edgeW[w]!);
  }
  private regWord(n: number, pe: number): number {
    if (n === 0) return this.checkPe(pe);
    return n <= this.nrSpiWords ? this.nrPes + n - 1 : -1;
  }
  private espiRegWord(n: number): number {
    return n < this.nrEspis / 32 ? this.nrPes + this.nrSpiWords + n : -1;
  }
  /** PEs that take part in 1 of N distribution: awake and with Group 1 enabled at their CPU interface. */
  private participating(): number {
    return this.awake & this.grp1Enabled;
  }

  /**
   * After a state change of the INTIDs `bits` of word `w` (w = -1: anything). Refreshes the word's bit in
   * `sharedCand` and the best candidate of every PE those INTIDs can reach (a private word's own PE, a shared
   * INTID's routed PE, every participating PE for 1 of N), then tells those PEs' CPU interfaces.
   */
  private recompute(w = -1, bits = 0): void {
    let pes = this.peMask;
    const k = w - this.nrPes;
    if (k >= 0) {
      if ((this.pendingWord(w) & this.enabledW[w]! & ~this.activeW[w]!) !== 0)
        this.sharedCand[k >> 5]! |= 1 << (k & 31);
      else this.sharedCand[k >> 5]! &= ~(1 << (k & 31));
      pes = 0;
      for (let m = bits; m !== 0; m &= m - 1) {
        const r = this.route[(k + 1) * 32 + lowestBit(m)]!;
        if (r >= 0) pes |= 1 << r;
        else if (r === ROUTE_ANY) pes = this.peMask;
      }
    } else if (w >= 0) pes = 1 << w;
    const anyMask = this.participating();
    for (let pe = 0; pe < this.nrPes; pe++) {
      if ((pes & (1 << pe)) === 0) continue;
      const v = this.computeHppi(pe, anyMask);
      if (v !== this.hppi[pe]) touch(this.iccOid[pe]!); // what this PE's ICC_IAR1_EL1 reads changed
      this.hppi[pe] = v;
    }
    // only those PEs' CPU interfaces: another PE's output depends on its unchanged hppi and its own registers
    for (let pe = 0; pe < this.nrPes; pe++) if ((pes & (1 << pe)) !== 0) this.listeners[pe]?.update();
  }

  /**
   * Highest priority (lowest value; ties → lowest INTID) pending, enabled, inactive INTID forwarded to `pe`: nothing
   * while GICD_CTLR.EnableGrp1 is clear or the PE sleeps; an SPI when routed to it, or 1 of N and the PE participates.
   * A 1 of N SPI may be offered to several PEs at once; the first acknowledge makes it active and withdraws it from
   * the others (§1.2.3 "Models for handling interrupts": only one PE acknowledges it).
   */
  private computeHppi(pe: number, anyMask: number): number {
    const peBit = 1 << pe;
    if ((this.ctlr & GICD_CTLR_ENABLE_G1) === 0 || (this.awake & peBit) === 0) return SPURIOUS_INTID;
    let best = SPURIOUS_INTID;
    let bestPrio = 0x100;
    let cand = this.pendingWord(pe) & this.enabledW[pe]! & ~this.activeW[pe]!;
    while (cand !== 0) {
      const b = lowestBit(cand);
      cand &= cand - 1;
      const p = this.prio[pe * 32 + b]!;
      if (p < bestPrio) {
        best = b;
        bestPrio = p;
      }
    }
    const base = this.nrPes;
    const isAny = (anyMask & peBit) !== 0;
    // shared words in INTID order (SPIs, then ESPIs), so that ties still go to the lowest INTID
    for (let c = 0; c < this.sharedCand.length; c++) {
      let words = this.sharedCand[c]!;
      while (words !== 0) {
        const k = c * 32 + lowestBit(words);
        words &= words - 1;
        const w = base + k;
        cand = this.pendingWord(w) & this.enabledW[w]! & ~this.activeW[w]!;
        while (cand !== 0) {
          const b = lowestBit(cand);
          cand &= cand - 1;
          const si = (k + 1) * 32 + b;
          const r = this.route[si]!;
          if (r !== pe && !(r === ROUTE_ANY && isAny)) continue;
          const p = this.prio[base * 32 + si - SPI_BASE]!;
          if (p < bestPrio) {
            best = si < this.nrIrqs ? si : ESPI_BASE + si - this.nrIrqs;
            bestPrio = p;
          }
        }
      }
    }
    if (this.lpis !== null) {
      const lpi = this.lpis.best(pe); // ties go to the SPI or PPI: its INTID is lower
      if (lpi !== SPURIOUS_INTID && this.lpis.priorityOf(lpi) < bestPrio) best = lpi;
    }
    return best;
  }

  private checkPe(pe: number | undefined): number {
    if (pe === undefined || !Number.isInteger(pe) || pe < 0 || pe >= this.nrPes) {
      throw new ModelError(`bad PE ${pe} (nrPes ${this.nrPes})`);
    }
    return pe;
  }
  private checkIntid(intid: number): void {
    if (!this.isValidIntid(intid)) throw new ModelError(`bad INTID ${intid} (nrIrqs ${this.nrIrqs})`);
  }
  private privatePe(intid: number, pe: number | undefined): number {
    if (pe === undefined) throw new ModelError(`INTID ${intid} is private (SGI/PPI): a PE is required`);
    return this.checkPe(pe);
  }
  /** An SPI's or ESPI's dense index: the SPI's INTID, or nrIrqs + (intid - 4096) for an ESPI. */
  private sharedIndex(intid: number): number {
    return intid < ESPI_BASE ? intid : this.nrIrqs + intid - ESPI_BASE;
  }
  private word(intid: number, pe: number | undefined, readOnly = false): number {
    this.checkIntid(intid);
    if (readOnly) touchRead(this.intidOid[intid]!);
    else touch(this.intidOid[intid]!);
    return intid < SPI_BASE ? this.privatePe(intid, pe) : this.nrPes + (this.sharedIndex(intid) >> 5) - 1;
  }
  private slot(intid: number, pe: number | undefined, readOnly = false): number {
    this.checkIntid(intid);
    if (readOnly) touchRead(this.intidOid[intid]!);
    else touch(this.intidOid[intid]!);
    if (intid < SPI_BASE) return this.privatePe(intid, pe) * 32 + intid;
    return this.nrPes * 32 + this.sharedIndex(intid) - SPI_BASE;
  }
}
