// The GICv4.1 vPE table (ARM IHI 0069 §5.3 "GICv4 ... vPE table", §9 "GICv4.1"): what VMAPP records per vPEID — the
// redistributor the vPE belongs to, its virtual LPI pending table (VPT) and virtual LPI configuration table (VCONF)
// in memory, and its default doorbell, a physical LPI. In GICv4.1 the ITS (GITS_BASER type vPE) and the
// redistributors (GICR_VPROPBASER) share one table; its format is IMPLEMENTATION DEFINED, so the model keeps the
// entries inside, as QEMU keeps them in its own vPE table format (hw/intc/arm_gicv3_its.c process_vmapp, vte_*).
//
// The VPT is real memory (one bit per INTID, like GICR_PENDBASER's table; the first 8192 bits are the IMPLEMENTATION
// DEFINED area, unused here): a non-resident vPE's pending vLPIs live there and nowhere else. Its VCONF bytes
// (Priority[7:2] | Enable[0]) are cached per vPE, re-read at VMAPP, at residency, at a VMAPTI/VMAPI of the vINTID,
// at VINVALL, INV and GICR_INVALLR, and carried over by a VMOVI (a VCONF edit of a resident vPE needs an
// invalidation, as a physical one does: lpi.ts).
import { ModelError } from '../../sim/errors.js';
import type { PhysicalMemory } from '../physMem.js';
import { LPI_BASE, LPI_PROP_ENABLE, LPI_PROP_PRIORITY_MASK } from './lpi.js';
import { SPURIOUS_INTID } from './regs.js';

/** One vPE table entry. */
export interface VpeEntry {
  valid: boolean;
  /** The redistributor (PE number, GITS_TYPER.PTA = 0) the vPE is mapped to: VMAPP's or VMOVP's RDbase. */
  rd: number;
  vptAddr: number;
  /** VPT_size + 1: vINTIDs below 2^vptIdBits are covered. */
  vptIdBits: number;
  vconfAddr: number;
  /** The default doorbell pINTID, 1023 for none (VMAPP DW1[31:0], VMOVP DW3[31:0]). */
  doorbell: number;
  /** Made non-resident with GICR_VPENDBASER.Doorbell = 1 and PendingLast = 0: the next vLPI raises the doorbell once. */
  doorbellArmed: boolean;
  /** Cached VCONF bytes, one per vLPI (allocated at the first VMAPP of this vPEID). */
  config: Uint8Array;
}

export class Gicv3VpeTable {
  readonly nrVpes: number;
  /** vINTIDs implemented per vPE: 8192 .. 8192 + nrVlpis - 1 (the GIC's physical LPI range). */
  readonly nrVlpis: number;
  private readonly memory: PhysicalMemory;
  private readonly entries: VpeEntry[] = [];

  constructor(nrVpes: number, nrVlpis: number, memory: PhysicalMemory) {
    if (!Number.isInteger(nrVpes) || nrVpes < 1 || nrVpes > 1 << 16)
      throw new ModelError(`nrVpes ${nrVpes} (1..65536)`);
    this.nrVpes = nrVpes;
    this.nrVlpis = nrVlpis;
    this.memory = memory;
    for (let i = 0; i < nrVpes; i++) {
      this.entries.push({
        valid: false,
        rd: -1,
        vptAddr: 0,
        vptIdBits: 0,
        vconfAddr: 0,
        doorbell: SPURIOUS_INTID,
        doorbellArmed: false,
        config: new Uint8Array(0),
      });
    }
  }

  /** The valid entry of vpeid, or null (out of range or unmapped). */
  get(vpeid: number): VpeEntry | null {
    const e = this.entries[vpeid];
    return e?.valid === true ? e : null;
  }

  /** VMAPP V=1: (re)maps the vPE and reads its whole VCONF. */
  map(vpeid: number, rd: number, vptAddr: number, vptIdBits: number, vconfAddr: number, doorbell: number): VpeEntry {
    const e = this.entries[vpeid]!;
    if (e.config.length === 0) e.config = new Uint8Array(this.nrVlpis);
    e.valid = true;
    e.rd = rd;
    e.vptAddr = vptAddr;
    e.vptIdBits = vptIdBits;
    e.vconfAddr = vconfAddr;
    e.doorbell = doorbell;
    e.doorbellArmed = false;
    this.reloadConfig(e);
    return e;
  }

  unmap(vpeid: number): void {
    this.entries[vpeid]!.valid = false;
  }

  /** Whether vINTID is one this vPE's tables cover. */
  inRange(e: VpeEntry, intid: number): boolean {
    return intid >= LPI_BASE && intid < LPI_BASE + this.nrVlpis && intid < 2 ** e.vptIdBits;
  }

  /** VINVALL (and VMAPP): every VCONF byte re-read. */
  reloadConfig(e: VpeEntry): void {
    for (let i = 0; i < this.nrVlpis; i++) this.reloadOne(e, LPI_BASE + i);
  }
  /** INV of a virtual event: one VCONF byte re-read (0, disabled, beyond the VPT's range). */
  reloadOne(e: VpeEntry, intid: number): void {
    e.config[intid - LPI_BASE] = this.inRange(e, intid)
      ? this.memory.readU8(e.vconfAddr + intid - LPI_BASE) & (LPI_PROP_PRIORITY_MASK | LPI_PROP_ENABLE)
      : 0;
  }
  isEnabled(e: VpeEntry, intid: number): boolean {
    return (e.config[intid - LPI_BASE]! & LPI_PROP_ENABLE) !== 0;
  }
  priorityOf(e: VpeEntry, intid: number): number {
    return e.config[intid - LPI_BASE]! & LPI_PROP_PRIORITY_MASK;
  }

  // ---- the VPT in memory (bit n of byte n / 8 ↔ INTID n) ----

  vptTest(e: VpeEntry, intid: number): boolean {
    return (this.memory.readU8(e.vptAddr + (intid >> 3)) & (1 << (intid & 7))) !== 0;
  }
  vptWrite(e: VpeEntry, intid: number, pending: boolean): void {
    const at = e.vptAddr + (intid >> 3);
    const byte = this.memory.readU8(at);
    const v = pending ? byte | (1 << (intid & 7)) : byte & ~(1 << (intid & 7));
    if (v !== byte) this.memory.writeU8(at, v);
  }
}
