// One GICv3 redistributor (ARM IHI 0069 §12.10 RD_base, §12.11 SGI_base): the per-PE registers of the interrupt
// routing infrastructure. Its SGI/PPI state lives in the distributor's banked words (distributor.ts); this object
// decodes the two 64 KiB frames, reports its PE's affinity and the Last bit, and runs the GICR_WAKER handshake
// Linux's gic_enable_redist performs (clear ProcessorSleep, poll ChildrenAsleep until it reads 0).
import { ModelError } from '../../sim/errors.js';
import type { Gicv3Distributor } from './distributor.js';
import { type Frame, gicrSgiRead, gicrSgiWrite } from './mmio.js';
import {
  GIC_PIDR2_ARCH_GICV3,
  GICD_IIDR_GIC600,
  GICR_CTLR,
  GICR_IIDR,
  GICR_PIDR2,
  GICR_SGI_BASE,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_TYPER_PROCNUM_SHIFT,
  GICR_WAKER,
  GICR_WAKER_CHILDREN_ASLEEP,
  GICR_WAKER_PROCESSOR_SLEEP,
} from './regs.js';

export class Gicv3Redistributor {
  readonly pe: number;
  private readonly dist: Gicv3Distributor;
  private readonly frame: Frame;

  constructor(dist: Gicv3Distributor, pe: number) {
    if (!Number.isInteger(pe) || pe < 0 || pe >= dist.nrPes) throw new ModelError(`bad PE ${pe} (nrPes ${dist.nrPes})`);
    this.dist = dist;
    this.pe = pe;
    this.frame = { name: `GICR${pe} SGI_base`, pe };
  }

  /** GICR_TYPER[31:0]: Processor_Number, and Last on the highest-numbered redistributor of the contiguous region. */
  get typerLow(): number {
    return (this.pe << GICR_TYPER_PROCNUM_SHIFT) | (this.pe === this.dist.nrPes - 1 ? GICR_TYPER_LAST : 0);
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
    if (offset >= GICR_SGI_BASE) return gicrSgiRead(this.dist, this.frame, offset - GICR_SGI_BASE, size);
    if (size !== 4 || (offset & 3) !== 0)
      throw new ModelError(`GICR${this.pe} RD_base access 0x${offset.toString(16)}`);
    switch (offset) {
      case GICR_CTLR:
        return 0; // EnableLPIs = 0 (no LPIs), no DPG bits (left out), RWP/UWP read 0
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
    if (offset >= GICR_SGI_BASE) {
      gicrSgiWrite(this.dist, this.frame, offset - GICR_SGI_BASE, value >>> 0, size);
      return;
    }
    if (size !== 4 || (offset & 3) !== 0)
      throw new ModelError(`GICR${this.pe} RD_base access 0x${offset.toString(16)}`);
    if (offset === GICR_WAKER) this.writeWaker(value);
  }
}
