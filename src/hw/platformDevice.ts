/**
 * A platform device as VFIO sees one: interrupt lines wired to GIC SPIs, and a small MMIO register block its
 * driver uses to read and clear the interrupt condition. A level line stays asserted until the driver writes the
 * condition's bit to IRQ_ACK; an edge line only pulses. Counters per line let invariants check that every
 * assertion was eventually acknowledged by a driver.
 */

import { ModelError } from '../sim/errors.js';
import { touch } from '../sim/footprint.js';

export type LineTrigger = 'level' | 'edge';

/** The interrupt controller input the lines drive: a GICv2 or GICv3 distributor's SPI inputs. */
export interface SpiInputs {
  setLine(intid: number, level: boolean): void;
}

export interface PlatformIrqLine {
  readonly intid: number;
  readonly trigger: LineTrigger;
}

/** Register offsets of the device's interrupt block. */
export const PDEV_IRQ_STATUS = 0x0;
export const PDEV_IRQ_ACK = 0x4;
export const PDEV_IRQ_RAISE = 0x8;
export const PDEV_MMIO_SIZE = 0x1000;

export class PlatformDevice {
  /** Bit i: the interrupt condition of line i (level lines drive their SPI from it). */
  private status = 0;
  /** Per line: times the device raised its condition, and times a driver acknowledged a raised condition. */
  readonly raised: Int32Array;
  readonly acked: Int32Array;
  /** Raises that found the condition already set and merged into it (an interrupt coalesced, not lost). */
  readonly coalesced: Int32Array;
  /** Conditions the device dropped by itself (deassert) before a driver acknowledged them. */
  readonly withdrawn: Int32Array;
  /** Called after any change of a line (tracing). */
  onLineChange: ((dev: PlatformDevice, index: number, level: boolean) => void) | null = null;

  constructor(
    readonly name: string,
    readonly lines: readonly PlatformIrqLine[],
    private readonly dist: SpiInputs,
    /** Guest-physical or host-physical base of the register block (informational). */
    readonly mmioBase = 0,
    /** The checker's object id of the device's state (its register block and lines); -1: not tracked. */
    readonly oid = -1,
  ) {
    if (lines.length > 32) throw new ModelError(`${name}: at most 32 interrupt lines, got ${lines.length}`);
    this.raised = new Int32Array(lines.length);
    this.acked = new Int32Array(lines.length);
    this.coalesced = new Int32Array(lines.length);
    this.withdrawn = new Int32Array(lines.length);
  }

  private line(index: number): PlatformIrqLine {
    touch(this.oid);
    const l = this.lines[index];
    if (l === undefined)
      throw new ModelError(`${this.name} has no interrupt line ${index} (it has ${this.lines.length})`);
    return l;
  }

  /** The device raises the condition of line `index` (a level line goes high; an edge line pulses). */
  assert(index: number): void {
    const l = this.line(index);
    this.raised[index]!++;
    if ((this.status & (1 << index)) !== 0) this.coalesced[index]!++;
    if (l.trigger === 'edge') {
      this.pulseLine(index, l);
      return;
    }
    this.status |= 1 << index;
    this.dist.setLine(l.intid, true);
    this.onLineChange?.(this, index, true);
  }

  /** The device drops the condition by itself (not through a driver acknowledge). */
  deassert(index: number): void {
    const l = this.line(index);
    if (l.trigger === 'edge' || (this.status & (1 << index)) === 0) return;
    this.status &= ~(1 << index);
    this.withdrawn[index]!++;
    this.dist.setLine(l.intid, false);
    this.onLineChange?.(this, index, false);
  }

  /** An edge on line `index` (for a level line: assert then deassert). */
  pulse(index: number): void {
    const l = this.line(index);
    this.raised[index]!++;
    if ((this.status & (1 << index)) !== 0) this.coalesced[index]!++;
    this.pulseLine(index, l);
  }

  private pulseLine(index: number, l: PlatformIrqLine): void {
    this.dist.setLine(l.intid, true);
    this.onLineChange?.(this, index, true);
    this.dist.setLine(l.intid, false);
    this.onLineChange?.(this, index, false);
    if (l.trigger === 'edge') this.status |= 1 << index;
  }

  isAsserted(index: number): boolean {
    this.line(index);
    return (this.status & (1 << index)) !== 0;
  }

  /** A driver's 32-bit read of the register block. */
  readReg(offset: number): number {
    touch(this.oid);
    if (offset === PDEV_IRQ_STATUS) return this.status >>> 0;
    return 0;
  }

  /** A driver's 32-bit write: IRQ_ACK clears condition bits (write-one-to-clear), IRQ_RAISE raises them. */
  writeReg(offset: number, value: number): void {
    touch(this.oid);
    if (offset === PDEV_IRQ_ACK) {
      for (let i = 0; i < this.lines.length; i++) {
        if ((value & (1 << i)) === 0 || (this.status & (1 << i)) === 0) continue;
        this.acked[i]!++;
        this.status &= ~(1 << i);
        const l = this.lines[i]!;
        if (l.trigger === 'level') {
          this.dist.setLine(l.intid, false);
          this.onLineChange?.(this, i, false);
        }
      }
    } else if (offset === PDEV_IRQ_RAISE) {
      for (let i = 0; i < this.lines.length; i++) if ((value & (1 << i)) !== 0) this.assert(i);
    }
  }
}
