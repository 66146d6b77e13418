// GICv4.1 vPE residency in the redistributors (ARM IHI 0069 §9 "GICv4.1", §12.10 GICR_VPROPBASER/GICR_VPENDBASER):
// each redistributor has at most one resident vPE, named by GICR_VPENDBASER.vPEID with Valid = 1. A vLPI the ITS
// translates for a resident vPE becomes pending in the redistributor and is presented straight to the PE's virtual
// CPU interface (virtualInterface.ts: ICV_IAR1_EL1 acknowledges it, no list register, no hypervisor); for a
// non-resident vPE it is recorded in the vPE's VPT in memory and, when the vPE was made non-resident with
// Doorbell = 1 and read back PendingLast = 0, the redistributor raises the vPE's default doorbell (a physical LPI)
// once. QEMU's hw/intc/arm_gicv3_redist.c is the reference: gicr_write_vpendbaser (residency, PendingLast),
// gicv3_redist_process_vlpi (resident or VPT + doorbell), gicv3_redist_vlpi_pending, gicv3_redist_mov_vlpi.
//
// Making a vPE resident reads its VPT and its VCONF into the redistributor; making it non-resident writes the pending state back
// and computes PendingLast (a pending, enabled vLPI was left); both complete at once, so Dirty always reads 0.
// vSGIs (GICv4.1 GITS_TYPER.VSGI) and VGrp0 delivery are not modelled (VGrp0En is kept as written).
import { ModelError } from '../../sim/errors.js';
import { touch } from '../../sim/footprint.js';
import * as U from '../../trace/gicUnpredictable.js';
import type { Gicv3TraceHooks } from './gicv3Trace.js';
import type { Gicv3Lpis } from './lpi.js';
import { bestPendingLpi, LPI_BASE } from './lpi.js';
import * as R from './regs.js';
import type { Gicv3VpeTable } from './vpeTable.js';

/** What a PE's virtual interface implements to hear that its resident vPE's best vLPI may have changed. */
export interface VlpiListener {
  vlpiChanged(pe: number): void;
}

export class Gicv3Vlpis {
  readonly table: Gicv3VpeTable;
  /** GICR_VPENDBASER writes that are UNPREDICTABLE (absorbed and counted, for checkers). */
  unpredictableCount = 0;
  /** Observer of each (gicUnpredictable.ts), for traces. */
  onUnpredictable: U.UnpredictableObserver | null = null;
  trace: Gicv3TraceHooks | null = null;
  /** Per PE: one oid for its resident vPE's vLPI state, -1 when not tracked. */
  readonly vlpiOid: Int32Array;
  private readonly nrPes: number;
  private readonly lpis: Gicv3Lpis;
  private readonly words: number;
  private readonly listeners: (VlpiListener | null)[];
  /** Per PE: the resident vPEID or -1, GICR_VPENDBASER/VPROPBASER as written, the pending bits of the resident vPE. */
  private readonly resident: Int32Array;
  private readonly vpendLo: Uint32Array;
  private readonly vpendHi: Uint32Array;
  private readonly vpropLo: Uint32Array;
  private readonly vpropHi: Uint32Array;
  private readonly pending: Uint32Array;
  private readonly pendingCount: Int32Array;

  constructor(nrPes: number, table: Gicv3VpeTable, lpis: Gicv3Lpis, newOid?: (name: string) => number) {
    this.nrPes = nrPes;
    this.table = table;
    this.lpis = lpis;
    this.words = table.nrVlpis / 32;
    this.listeners = new Array<VlpiListener | null>(nrPes).fill(null);
    this.resident = new Int32Array(nrPes).fill(-1);
    this.vpendLo = new Uint32Array(nrPes);
    this.vpendHi = new Uint32Array(nrPes);
    this.vpropLo = new Uint32Array(nrPes);
    this.vpropHi = new Uint32Array(nrPes);
    this.pending = new Uint32Array(nrPes * this.words);
    this.pendingCount = new Int32Array(nrPes);
    this.vlpiOid = new Int32Array(nrPes).fill(-1);
    if (newOid !== undefined) for (let pe = 0; pe < nrPes; pe++) this.vlpiOid[pe] = newOid(`vlpis${pe}`);
  }

  attach(pe: number, l: VlpiListener): void {
    this.listeners[pe] = l;
  }

  /** The vPEID resident on `pe`, or -1. */
  residentVpe(pe: number): number {
    return this.resident[pe]!;
  }

  // ---- GICR_VPROPBASER / GICR_VPENDBASER (VLPI_base frame) ----

  readReg(pe: number, offset: number): number {
    switch (offset) {
      case R.GICR_VPROPBASER:
        return this.vpropLo[pe]!;
      case R.GICR_VPROPBASER + 4:
        return this.vpropHi[pe]!;
      case R.GICR_VPENDBASER:
        return this.vpendLo[pe]!;
      case R.GICR_VPENDBASER + 4:
        return this.vpendHi[pe]!; // Dirty never set: parsing completes within the write
    }
    return 0;
  }

  /** A 64-bit register is written low half first, then high half (what carries Valid acts). */
  writeReg(pe: number, offset: number, value: number): void {
    const v = value >>> 0;
    switch (offset) {
      case R.GICR_VPROPBASER: // the vPE configuration table: changing it with a vPE resident is UNPREDICTABLE
      case R.GICR_VPROPBASER + 4:
        if (this.resident[pe]! >= 0) this.unpredictable(pe, U.GICR_VPROPBASER, U.VPE_RESIDENT, this.resident[pe]!);
        else if (offset === R.GICR_VPROPBASER) this.vpropLo[pe] = v;
        else this.vpropHi[pe] = v;
        return;
      case R.GICR_VPENDBASER:
        if (this.resident[pe]! >= 0) this.unpredictable(pe, U.GICR_VPENDBASER, U.VPE_RESIDENT, this.resident[pe]!);
        else this.vpendLo[pe] = v;
        return;
      case R.GICR_VPENDBASER + 4:
        this.writeVpendbaserHi(pe, v);
        return;
    }
  }

  /** gicr_write_vpendbaser: Valid 0→1 makes vPEID resident, 1→0 makes it non-resident; 1→1 is UNPREDICTABLE. */
  private writeVpendbaserHi(pe: number, hi: number): void {
    touch(this.vlpiOid[pe]!);
    const was = this.resident[pe]! >= 0;
    const valid = (hi & R.GICR_VPENDBASER_VALID_HI) !== 0;
    const kept = R.GICR_VPENDBASER_4_1_VGRP0EN_HI | R.GICR_VPENDBASER_4_1_VGRP1EN_HI;
    if (was && valid) {
      this.unpredictable(pe, U.GICR_VPENDBASER, U.VPE_RESIDENT, this.resident[pe]!);
      return;
    }
    if (!was && !valid) {
      this.vpendHi[pe] = (this.vpendHi[pe]! & R.GICR_VPENDBASER_PENDINGLAST_HI) | (hi & kept);
      return;
    }
    if (valid) {
      const vpeid = this.vpendLo[pe]! & R.GICR_VPENDBASER_4_1_VPEID_MASK;
      if (!this.makeResident(pe, vpeid)) {
        this.unpredictable(pe, U.GICR_VPENDBASER, U.VPE_NOT_MAPPED, vpeid);
        return;
      }
      this.vpendHi[pe] = (hi & kept) | R.GICR_VPENDBASER_VALID_HI | R.GICR_VPENDBASER_PENDINGLAST_HI; // RES1 here
      this.trace?.vpendbaser(pe, this.resident[pe]!, true, false, true);
    } else {
      const last = this.makeNonResident(pe, (hi & R.GICR_VPENDBASER_4_1_DB_HI) !== 0);
      this.vpendHi[pe] = (this.vpendHi[pe]! & kept) | (last ? R.GICR_VPENDBASER_PENDINGLAST_HI : 0);
      this.trace?.vpendbaser(
        pe,
        this.vpendLo[pe]! & R.GICR_VPENDBASER_4_1_VPEID_MASK,
        false,
        (hi & R.GICR_VPENDBASER_4_1_DB_HI) !== 0,
        last,
      );
    }
    this.listeners[pe]?.vlpiChanged(pe);
  }

  /**
   * The vPE must be mapped to this redistributor (VMAPP/VMOVP) and GICR_VPROPBASER valid; its VPT is read in and its
   * armed doorbell, if any, is disarmed (a resident vPE needs none).
   */
  private unpredictable(pe: number, reg: number, why: number, vpeid: number): void {
    this.unpredictableCount++;
    this.onUnpredictable?.(pe, reg, why, vpeid);
  }

  private makeResident(pe: number, vpeid: number): boolean {
    const e = this.table.get(vpeid);
    if (e === null || e.rd !== pe || (this.vpropHi[pe]! & R.GICR_VPROPBASER_4_1_VALID_HI) === 0) return false;
    for (let other = 0; other < this.nrPes; other++) if (this.resident[other] === vpeid) return false;
    this.resident[pe] = vpeid;
    e.doorbellArmed = false;
    this.table.reloadConfig(e); // the VCONF is parsed with the VPT (QEMU gicr_write_vpendbaser → update_for_all_lpis)
    const base = pe * this.words;
    let count = 0;
    for (let i = 0; i < this.table.nrVlpis; i++) {
      const intid = LPI_BASE + i;
      if (!this.table.inRange(e, intid) || !this.table.vptTest(e, intid)) continue;
      this.pending[base + (i >> 5)]! |= 1 << (i & 31);
      count++;
    }
    this.pendingCount[pe] = count;
    return true;
  }

  /** Writes the pending state back to the VPT; returns PendingLast (a pending, enabled vLPI was left). */
  private makeNonResident(pe: number, doorbell: boolean): boolean {
    const e = this.table.get(this.resident[pe]!)!;
    const base = pe * this.words;
    let last = false;
    for (let i = 0; i < this.table.nrVlpis; i++) {
      const intid = LPI_BASE + i;
      if (!this.table.inRange(e, intid)) continue;
      const p = (this.pending[base + (i >> 5)]! & (1 << (i & 31))) !== 0;
      this.table.vptWrite(e, intid, p);
      if (p && this.table.isEnabled(e, intid)) last = true;
    }
    this.pending.fill(0, base, base + this.words);
    this.pendingCount[pe] = 0;
    this.resident[pe] = -1;
    // its_vpe_4_1_deschedule: "if we read-back PendingLast clear, then a doorbell will be delivered"
    e.doorbellArmed = doorbell && !last;
    return last;
  }

  // ---- vLPI state (the ITS's side) ----

  /** gicv3_redist_process_vlpi: a vLPI for vpeid becomes pending. False when dropped (vPE unmapped, out of range). */
  setPending(vpeid: number, intid: number): boolean {
    const e = this.table.get(vpeid);
    if (e === null || !this.table.inRange(e, intid)) return false;
    touch(this.vlpiOid[e.rd]!);
    if (this.resident[e.rd] === vpeid) {
      this.setResidentBit(e.rd, intid, true);
      return true;
    }
    if (this.table.vptTest(e, intid)) return true; // already pending: edge-triggered, the two merge
    this.table.vptWrite(e, intid, true);
    if (e.doorbellArmed && this.table.isEnabled(e, intid) && this.lpis.isLpi(e.doorbell)) {
      e.doorbellArmed = false; // GICv4.1: one default doorbell until the vPE is resident again
      this.trace?.vpeDoorbell(e.rd, vpeid, e.doorbell, intid);
      this.lpis.setPending(e.rd, e.doorbell);
    }
    return true;
  }

  clearPending(vpeid: number, intid: number): void {
    const e = this.table.get(vpeid);
    if (e === null || !this.table.inRange(e, intid)) return;
    touch(this.vlpiOid[e.rd]!);
    if (this.resident[e.rd] === vpeid) this.setResidentBit(e.rd, intid, false);
    else this.table.vptWrite(e, intid, false);
  }

  isPending(vpeid: number, intid: number): boolean {
    const e = this.table.get(vpeid);
    if (e === null || !this.table.inRange(e, intid)) return false;
    if (this.resident[e.rd] !== vpeid) return this.table.vptTest(e, intid);
    const i = intid - LPI_BASE;
    return (this.pending[e.rd * this.words + (i >> 5)]! & (1 << (i & 31))) !== 0;
  }

  /** VINVALL / INV / VMAPP: the vPE's VCONF was re-read; its resident PE re-evaluates. */
  configChanged(vpeid: number): void {
    const e = this.table.get(vpeid);
    if (e !== null && this.resident[e.rd] === vpeid) this.listeners[e.rd]?.vlpiChanged(e.rd);
  }

  /** GICR_INVALLR with V = 1: every VCONF byte of the vPE is re-read (as VINVALL does through the ITS). */
  invalidateAll(vpeid: number): void {
    const e = this.table.get(vpeid);
    if (e === null) return;
    this.table.reloadConfig(e);
    this.configChanged(vpeid);
  }

  /** Whether vpeid is resident anywhere (VMAPP V=0 and VMOVP of a resident vPE are UNPREDICTABLE). */
  isResident(vpeid: number): boolean {
    for (let pe = 0; pe < this.nrPes; pe++) if (this.resident[pe] === vpeid) return true;
    return false;
  }

  // ---- the virtual CPU interface's side ----

  /** The highest-priority (ties → lowest vINTID) pending, enabled vLPI of the vPE resident on `pe` with VGrp1En, or 1023. */
  best(pe: number): number {
    if (this.pendingCount[pe]! === 0 || (this.vpendHi[pe]! & R.GICR_VPENDBASER_4_1_VGRP1EN_HI) === 0) {
      return R.SPURIOUS_INTID;
    }
    const e = this.table.get(this.resident[pe]!)!;
    return bestPendingLpi(this.pending, pe * this.words, this.words, e.config);
  }

  priorityOf(pe: number, intid: number): number {
    const e = this.table.get(this.resident[pe]!);
    if (e === null) throw new ModelError(`no vPE resident on PE ${pe}`);
    return this.table.priorityOf(e, intid);
  }

  /** ICV_IAR1_EL1 took vINTID: a vLPI has no active state, acknowledged is inactive. */
  acknowledge(pe: number, intid: number): void {
    touch(this.vlpiOid[pe]!);
    this.trace?.vlpiAcknowledge(pe, this.resident[pe]!, intid);
    this.setResidentBit(pe, intid, false);
  }

  private setResidentBit(pe: number, intid: number, on: boolean): void {
    const i = intid - LPI_BASE;
    const w = pe * this.words + (i >> 5);
    const b = 1 << (i & 31);
    if (((this.pending[w]! & b) !== 0) === on) return;
    this.pending[w] = on ? this.pending[w]! | b : this.pending[w]! & ~b;
    this.pendingCount[pe]! += on ? 1 : -1;
    this.listeners[pe]?.vlpiChanged(pe);
  }
}
