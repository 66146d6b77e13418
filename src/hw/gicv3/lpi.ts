// LPIs (ARM IHI 0069 chapter 5 "Locality-specific Peripheral Interrupts and the ITS"): message-signalled interrupts with INTIDs from 8192, always edge-triggered, always
// Group 1 here, with no active state — an acknowledge makes one inactive at once, and deactivating one has no effect.
// The redistributor of a PE keeps the pending state of the LPIs sent to it (its pending table at GICR_PENDBASER: the
// model keeps it inside, which is allowed — software must not read the table while EnableLPIs = 1) and reads
// each LPI's configuration byte, Priority[7:2] | Enable[0], from the table at GICR_PROPBASER in memory. Redistributors
// may cache those bytes: this model caches one byte per LPI when LPIs are enabled and re-reads it only at an
// ITS INV/INVALL or a GICR_INVLPIR/INVALLR write, so a table edit without an invalidation has no effect, as on real
// parts. All redistributors share one configuration table (GICR_TYPER.CommonLPIAff = 0), as Linux programs them.

import { ModelError } from '../../sim/errors.js';
import { touch } from '../../sim/footprint.js';
import * as U from '../../trace/gicUnpredictable.js';
import type { PhysicalMemory } from '../physMem.js';
import { SPURIOUS_INTID } from './regs.js';

export const LPI_BASE = 8192;
/** Configuration byte: Enable[0], Priority[7:2] (bit [1] RES1 in the architecture, ignored here). */
export const LPI_PROP_ENABLE = 1;
export const LPI_PROP_PRIORITY_MASK = 0xfc;
/** GICR_PROPBASER: IDbits[4:0] (INTID bits the table covers, minus one), Physical_Address[51:12]. */
export const GICR_PROPBASER_IDBITS_MASK = 0x1f;

export interface Gicv3LpisOptions {
  nrPes: number;
  /** LPIs implemented, INTIDs 8192 .. 8192 + nrLpis - 1 (a multiple of 32). */
  nrLpis: number;
  memory: PhysicalMemory;
  /** Told when the best pending LPI of a PE may have changed. */
  onChange: LpiListener;
  newOid?: (name: string) => number;
}

/** What the distributor implements so a redistributor's LPI changes reach the PE's CPU interface. */
export interface LpiListener {
  lpiChanged(pe: number): void;
}

const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);

export class Gicv3Lpis {
  readonly nrPes: number;
  readonly nrLpis: number;
  /** UNPREDICTABLE programming absorbed (PROPBASER written with EnableLPIs set, differing tables), for checkers. */
  unpredictableCount = 0;
  /** Observer of each (gicUnpredictable.ts), for traces. */
  onUnpredictable: U.UnpredictableObserver | null = null;
  /** LPIs that reached a redistributor with EnableLPIs = 0 or an INTID beyond its configuration table: dropped. */
  droppedCount = 0;
  /** Per PE: one oid for its LPI pending state (sim/footprint.ts), -1 when not tracked. */
  readonly lpiOid: Int32Array;
  private readonly memory: PhysicalMemory;
  private readonly listener: LpiListener;
  private readonly words: number;
  /** GICR_CTLR.EnableLPIs, one bit per PE. */
  private enabled = 0;
  /** GICR_PROPBASER as written (shared): table base and IDbits; `propSet` until the first write. */
  private propBase = 0;
  private propIdBits = 0;
  private propSet = false;
  /** Pending bits, `words` per PE, and how many are set per PE (skips the scan when none). */
  private readonly pending: Uint32Array;
  private readonly pendingCount: Int32Array;
  /** The cached configuration byte of each LPI. */
  private readonly config: Uint8Array;

  constructor(opts: Gicv3LpisOptions) {
    if (!Number.isInteger(opts.nrLpis) || opts.nrLpis < 32 || opts.nrLpis % 32 !== 0 || opts.nrLpis > 1 << 20) {
      throw new ModelError(`nrLpis ${opts.nrLpis} must be a multiple of 32 in 32..2^20`);
    }
    this.nrPes = opts.nrPes;
    this.nrLpis = opts.nrLpis;
    this.memory = opts.memory;
    this.listener = opts.onChange;
    this.words = opts.nrLpis / 32;
    this.pending = new Uint32Array(opts.nrPes * this.words);
    this.pendingCount = new Int32Array(opts.nrPes);
    this.config = new Uint8Array(opts.nrLpis);
    this.lpiOid = new Int32Array(opts.nrPes).fill(-1);
    if (opts.newOid !== undefined) for (let pe = 0; pe < opts.nrPes; pe++) this.lpiOid[pe] = opts.newOid(`lpis${pe}`);
  }

  isLpi(intid: number): boolean {
    return intid >= LPI_BASE && intid < LPI_BASE + this.nrLpis;
  }

  // ---- redistributor registers ----

  /**
   * GICR_PROPBASER write (two halves) through `pe`'s redistributor. UNPREDICTABLE while that redistributor's
   * EnableLPIs is set (counted and ignored); the model's table is one for all redistributors (CommonLPIAff), so a
   * value other than the one already programmed is UNPREDICTABLE too. Linux programs each CPU's redistributor as the
   * CPU comes up, with the same table, while earlier CPUs already have LPIs on (irq-gic-v3-its.c its_cpu_init_lpis).
   */
  writePropbaser(pe: number, lo: number, hi: number): void {
    if (this.isEnabled(pe)) {
      this.unpredictable(pe, U.ENABLE_LPIS);
      return;
    }
    const base = (hi & 0xfffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
    const idBits = lo & GICR_PROPBASER_IDBITS_MASK;
    if (this.propSet && (base !== this.propBase || idBits !== this.propIdBits)) this.unpredictable(pe, U.OTHER_TABLE);
    this.propBase = base;
    this.propIdBits = idBits;
    this.propSet = true;
  }
  private unpredictable(pe: number, why: number): void {
    this.unpredictableCount++;
    this.onUnpredictable?.(pe, U.GICR_PROPBASER, why, 0);
  }
  get propbaserLo(): number {
    return ((this.propBase % 2 ** 32) | this.propIdBits) >>> 0;
  }
  get propbaserHi(): number {
    return Math.floor(this.propBase / 2 ** 32);
  }

  /** GICR_CTLR.EnableLPIs of `pe`: enabling reads the whole configuration table (the redistributor fills its cache). */
  setEnabled(pe: number, on: boolean): void {
    const bit = 1 << pe;
    if (((this.enabled & bit) !== 0) === on) return;
    touch(this.lpiOid[pe]!);
    this.enabled = on ? this.enabled | bit : this.enabled & ~bit;
    if (on) this.invalidateAll();
    this.listener.lpiChanged(pe);
  }
  isEnabled(pe: number): boolean {
    return (this.enabled & (1 << pe)) !== 0;
  }

  // ---- configuration cache ----

  /** Re-reads one LPI's configuration byte (ITS INV, GICR_INVLPIR), then re-evaluates every PE it may be pending on. */
  invalidate(intid: number): void {
    if (!this.isLpi(intid)) return;
    this.config[intid - LPI_BASE] = this.readConfig(intid);
    for (let pe = 0; pe < this.nrPes; pe++) if (this.isPending(pe, intid)) this.listener.lpiChanged(pe);
  }

  /** Re-reads every configuration byte (ITS INVALL, GICR_INVALLR, EnableLPIs). */
  invalidateAll(): void {
    for (let i = 0; i < this.nrLpis; i++) this.config[i] = this.readConfig(LPI_BASE + i);
    for (let pe = 0; pe < this.nrPes; pe++) if (this.pendingCount[pe]! > 0) this.listener.lpiChanged(pe);
  }

  /** The configuration byte in memory; 0 (disabled) for an INTID beyond the table's IDbits or before PROPBASER is set. */
  private readConfig(intid: number): number {
    if (!this.propSet || intid >= 2 ** (this.propIdBits + 1)) return 0;
    return this.memory.readU8(this.propBase + intid - LPI_BASE) & (LPI_PROP_PRIORITY_MASK | LPI_PROP_ENABLE);
  }

  priorityOf(intid: number): number {
    return this.config[intid - LPI_BASE]! & LPI_PROP_PRIORITY_MASK;
  }
  isConfigEnabled(intid: number): boolean {
    return (this.config[intid - LPI_BASE]! & LPI_PROP_ENABLE) !== 0;
  }

  // ---- pending state ----

  /** An LPI arrives at `pe`'s redistributor (from the ITS). False when the redistributor drops it. */
  setPending(pe: number, intid: number): boolean {
    touch(this.lpiOid[pe]!);
    if (!this.isEnabled(pe) || !this.isLpi(intid) || (this.propSet && intid >= 2 ** (this.propIdBits + 1))) {
      this.droppedCount++;
      return false;
    }
    const i = pe * this.words + ((intid - LPI_BASE) >> 5);
    const b = 1 << (intid & 31);
    if ((this.pending[i]! & b) !== 0) return true; // already pending: edge-triggered, the two merge
    this.pending[i]! |= b;
    this.pendingCount[pe]!++;
    this.listener.lpiChanged(pe);
    return true;
  }

  clearPending(pe: number, intid: number): void {
    touch(this.lpiOid[pe]!);
    if (!this.isLpi(intid)) return;
    const i = pe * this.words + ((intid - LPI_BASE) >> 5);
    const b = 1 << (intid & 31);
    if ((this.pending[i]! & b) === 0) return;
    this.pending[i]! &= ~b;
    this.pendingCount[pe]!--;
    this.listener.lpiChanged(pe);
  }

  isPending(pe: number, intid: number): boolean {
    if (!this.isLpi(intid)) return false;
    return (this.pending[pe * this.words + ((intid - LPI_BASE) >> 5)]! & (1 << (intid & 31))) !== 0;
  }

  /** MOVALL: every LPI pending at `from` becomes pending at `to` instead (gicv3_redist_movall_lpis in QEMU). */
  moveAll(from: number, to: number): void {
    if (from === to) return;
    touch(this.lpiOid[from]!);
    touch(this.lpiOid[to]!);
    for (let w = 0; w < this.words; w++) {
      let m = this.pending[from * this.words + w]!;
      while (m !== 0) {
        const b = lowestBit(m);
        m &= m - 1;
        this.clearPending(from, LPI_BASE + w * 32 + b);
        this.setPending(to, LPI_BASE + w * 32 + b);
      }
    }
  }

  /** The highest-priority (lowest value; ties → lowest INTID) pending, enabled LPI of `pe`, or 1023. */
  best(pe: number): number {
    if (this.pendingCount[pe]! === 0 || !this.isEnabled(pe)) return SPURIOUS_INTID;
    return bestPendingLpi(this.pending, pe * this.words, this.words, this.config);
  }
}

/**
 * The highest-priority (ties → lowest INTID) pending LPI whose cached configuration byte is enabled, or 1023: `pending`
 * holds `words` words of pending bits from `base` (bit i ↔ INTID 8192 + i), `config` one byte per LPI. Shared by the
 * physical LPIs and a resident vPE's vLPIs (redistributorVpe.ts).
 */
export function bestPendingLpi(pending: Uint32Array, base: number, words: number, config: Uint8Array): number {
  let best = SPURIOUS_INTID;
  let bestPrio = 0x100;
  for (let w = 0; w < words; w++) {
    let m = pending[base + w]!;
    while (m !== 0) {
      const b = lowestBit(m);
      m &= m - 1;
      const c = config[w * 32 + b]!;
      if ((c & LPI_PROP_ENABLE) === 0) continue;
      const p = c & LPI_PROP_PRIORITY_MASK;
      if (p < bestPrio) {
        bestPrio = p;
        best = LPI_BASE + w * 32 + b;
      }
    }
  }
  return best;
}
