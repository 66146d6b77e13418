// One GICv3 redistributor (ARM IHI 0069 §12.10 RD_base, §12.11 SGI_base): the per-PE registers of the interrupt
// routing infrastructure. Its SGI/PPI state lives in the distributor's banked words (distributor.ts); this object
// decodes the two 64 KiB frames, reports its PE's affinity and the Last bit, and runs the GICR_WAKER handshake
// Linux's gic_enable_redist performs (clear ProcessorSleep, poll ChildrenAsleep until it reads 0). With GICv4.1 it
// also has the VLPI_base frame (GICR_VPROPBASER, GICR_VPENDBASER: redistributorVpe.ts).
import { ModelError } from '../../sim/errors.js';
import type { Gicv3Distributor } from './distributor.js';
import { type Frame, gicrSgiRead, gicrSgiWrite } from './mmio.js';
import type { Gicv3Vlpis } from './redistributorVpe.js';
import {
  GIC_PIDR2_ARCH_GICV3,
  GICD_IIDR_GIC600,
  GICR_CTLR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_IIDR,
  GICR_INVALLR,
  GICR_INVALLR_V_HI,
  GICR_PENDBASER,
  GICR_PIDR2,
  GICR_PROPBASER,
  GICR_SGI_BASE,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_TYPER_PLPIS,
  GICR_TYPER_PROCNUM_SHIFT,
  GICR_TYPER_RVPEID,
  GICR_TYPER_VLPIS,
  GICR_VLPI_BASE,
  GICR_WAKER,
  GICR_WAKER_CHILDREN_ASLEEP,
  GICR_WAKER_PROCESSOR_SLEEP,
} from './regs.js';

export class Gicv3Redistributor {
  readonly pe: number;
  private readonly dist: Gicv3Distributor;
  private readonly frame: Frame;
  private readonly vlpis: Gicv3Vlpis | null;
  /** GICR_PENDBASER as written: the model keeps the pending state inside (lpi.ts), the table is never read. */
  private pendbaserLo = 0;
  private pendbaserHi = 0;
  /** High half of a GICR_PROPBASER write, taken with the low half. */
  private propHi = 0;

  constructor(dist: Gicv3Distributor, pe: number, vlpis: Gicv3Vlpis | null = null) {
    if (!Number.isInteger(pe) || pe < 0 || pe >= dist.nrPes) throw new ModelError(`bad PE ${pe} (nrPes ${dist.nrPes})`);
    this.dist = dist;
    this.pe = pe;
    this.frame = { name: `GICR${pe} SGI_base`, pe };
    this.vlpis = vlpis;
  }

  /** GICR_TYPER[31:0]: Processor_Number, and Last on the highest-numbered redistributor of the contiguous region. */
  get typerLow(): number {
    return (
      (this.pe << GICR_TYPER_PROCNUM_SHIFT) |
      (this.pe === this.dist.nrPes - 1 ? GICR_TYPER_LAST : 0) |
      (this.dist.lpis !== null ? GICR_TYPER_PLPIS : 0) |
      (this.vlpis !== null ? GICR_TYPER_VLPIS | GICR_TYPER_RVPEID : 0)
    );
  }
  /** GICR_TYPER[63:32]: Affinity_Value Aff3.Aff2.Aff1.Aff0 (what gic_populate_rdist matches against MPIDR_EL1). */
  get typerHigh(): number {
    return this.dist.affinity[this.pe]!;
  }
  /** GICR_WAKER: ProcessorSleep resets to 1; ChildrenAsleep mirrors it (the handshake completes at once here). */
  get waker(): number {
    return this.dist.isProcessorAsleep(this.pe) ? GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP : 0;
  }
  writeWaker(value: number): void {
    this.dist.setProcessorSleep(this.pe, (value & GICR_WAKER_PROCESSOR_SLEEP) !== 0);
  }

  /** RD_base frame at offsets 0..0xFFFF, SGI_base frame at 0x10000.. (both relative to this redistributor). */
  read(offset: number, size: 1 | 4 = 4): number {
    if (this.isVlpiFrame(offset, size)) return this.vlpis!.readReg(this.pe, offset - GICR_VLPI_BASE);
    if (offset >= GICR_SGI_BASE) return gicrSgiRead(this.dist, this.frame, offset - GICR_SGI_BASE, size);
    if (size !== 4 || (offset & 3) !== 0)
      throw new ModelError(`GICR${this.pe} RD_base access 0x${offset.toString(16)}`);
    switch (offset) {
      case GICR_CTLR: // EnableLPIs; no DPG bits (left out), RWP/UWP read 0
        return this.dist.lpis?.isEnabled(this.pe) === true ? GICR_CTLR_ENABLE_LPIS : 0;
      case GICR_PROPBASER:
        return this.dist.lpis?.propbaserLo ?? 0;
      case GICR_PROPBASER + 4:
        return this.dist.lpis?.propbaserHi ?? 0;
      case GICR_PENDBASER:
        return this.pendbaserLo;
      case GICR_PENDBASER + 4:
        return this.pendbaserHi;
      case GICR_IIDR:
        return GICD_IIDR_GIC600;
      case GICR_TYPER:
        return this.typerLow;
      case GICR_TYPER + 4:
        return this.typerHigh;
      case GICR_WAKER:
        return this.waker;
      case GICR_PIDR2:
        return GIC_PIDR2_ARCH_GICV3;
    }
    return 0;
  }
  write(offset: number, value: number, size: 1 | 4 = 4): void {
    if (this.isVlpiFrame(offset, size)) {
      this.vlpis!.writeReg(this.pe, offset - GICR_VLPI_BASE, value);
      return;
    }
    if (offset >= GICR_SGI_BASE) {
      gicrSgiWrite(this.dist, this.frame, offset - GICR_SGI_BASE, value >>> 0, size);
      return;
    }
    if (size !== 4 || (offset & 3) !== 0)
      throw new ModelError(`GICR${this.pe} RD_base access 0x${offset.toString(16)}`);
    const lpis = this.dist.lpis;
    switch (offset) {
      case GICR_WAKER:
        this.writeWaker(value);
        return;
      case GICR_CTLR:
        lpis?.setEnabled(this.pe, (value & GICR_CTLR_ENABLE_LPIS) !== 0);
        return;
      case GICR_PROPBASER: // the low half carries IDbits: Linux writes the 64-bit register, low word last here
        lpis?.writePropbaser(this.pe, value >>> 0, this.propHi);
        return;
      case GICR_PROPBASER + 4:
        this.propHi = value >>> 0;
        return;
      case GICR_PENDBASER:
        if (lpis?.isEnabled(this.pe) !== true) this.pendbaserLo = value >>> 0;
        return;
      case GICR_PENDBASER + 4:
        if (lpis?.isEnabled(this.pe) !== true) this.pendbaserHi = value >>> 0;
        return;
      case GICR_INVALLR + 4: // the high word carries V and the vPEID (the 64-bit write's low word is RES0)
        if ((value & GICR_INVALLR_V_HI) !== 0) this.vlpis?.invalidateAll(value & 0xffff);
        return;
    }
  }

  /** The VLPI_base frame exists with GICv4 (GICR_TYPER.VLPIS); its registers are word-access. */
  private isVlpiFrame(offset: number, size: 1 | 4): boolean {
    if (this.vlpis === null || offset < GICR_VLPI_BASE || offset >= GICR_VLPI_BASE + GICR_SGI_BASE) return false;
    if (size !== 4 || (offset & 3) !== 0)
      throw new ModelError(`GICR${this.pe} VLPI_base access 0x${offset.toString(16)}`);
    return true;
  }
}
