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
  // What a register access and a line change touch first (an object's fields are laid out in declaration order,
  // parameter properties before the others, so none here), the names and set-up data after them.
  /** Bit i: the interrupt condition of line i (level lines drive their SPI from it). */
  private status = 0;
  /** The checker's object id of the device's state (its register block and lines); -1: not tracked. */
  readonly oid: number;
  /**
   * What an IRQ touches per line, in one block (not one array and object per line and per counter): the line's INTID
   * at [i], then the counters below at [n + i], [2n + i], [3n + i], [4n + i].
   */
  private readonly state: Int32Array;
  private readonly n: number;
  /** Bit i: line i is edge-triggered. */
  private readonly edge: number;
  private readonly dist: SpiInputs;
  /** Called after any change of a line (tracing). */
  onLineChange: ((dev: PlatformDevice, index: number, level: boolean) => void) | null = null;
  readonly name: string;
  readonly lines: readonly PlatformIrqLine[];
  /** Guest-physical or host-physical base of the register block (informational). */
  readonly mmioBase: number;

  constructor(name: string, lines: readonly PlatformIrqLine[], dist: SpiInputs, mmioBase = 0, oid = -1) {
    if (lines.length > 32) throw new ModelError(`${name}: at most 32 interrupt lines, got ${lines.length}`);
    const n = lines.length;
    this.oid = oid;
    this.name = name;
    this.lines = lines;
    this.mmioBase = mmioBase;
    this.n = n;
    this.dist = dist;
    this.state = new Int32Array(5 * n);
    let edge = 0;
    for (let i = 0; i < n; i++) {
      this.state[i] = lines[i]!.intid;
      if (lines[i]!.trigger === 'edge') edge |= 1 << i;
    }
    this.edge = edge;
  }

  // Per-line counters for invariants, metrics and tests: views of `state`, made when read (a view kept in a field
  // would stop aliasing `state` once the checker copies the machine).
  /** Per line: times the device raised its condition. */
  get raised(): Int32Array {
    return this.state.subarray(this.n, 2 * this.n);
  }
  /** Per line: times a driver acknowledged a raised condition. */
  get acked(): Int32Array {
    return this.state.subarray(2 * this.n, 3 * this.n);
  }
  /** Raises that found the condition already set and merged into it (an interrupt coalesced, not lost). */
  get coalesced(): Int32Array {
    return this.state.subarray(3 * this.n, 4 * this.n);
  }
  /** Conditions the device dropped by itself (deassert) before a driver acknowledged them. */
  get withdrawn(): Int32Array {
    return this.state.subarray(4 * this.n, 5 * this.n);
  }

  /** Validates `index` and declares the access to the device's state. */
  private line(index: number): void {
    touch(this.oid);
    if (!((index | 0) === index && index >= 0 && index < this.n)) {
      throw new ModelError(`${this.name} has no interrupt line ${index} (it has ${this.n})`);
    }
  }

  /** The device raises the condition of line `index` (a level line goes high; an edge line pulses). */
  assert(index: number): void {
    this.line(index);
    const s = this.state;
    const bit = 1 << index;
    s[this.n + index]!++;
    if ((this.status & bit) !== 0) s[3 * this.n + index]!++;
    if ((this.edge & bit) !== 0) {
      this.pulseLine(index);
      return;
    }
    this.status |= bit;
    this.dist.setLine(s[index]!, true);
    this.onLineChange?.(this, index, true);
  }

  /** The device drops the condition by itself (not through a driver acknowledge). */
  deassert(index: number): void {
    this.line(index);
    const bit = 1 << index;
    if ((this.edge & bit) !== 0 || (this.status & bit) === 0) return;
    this.status &= ~bit;
    this.state[4 * this.n + index]!++;
    this.dist.setLine(this.state[index]!, false);
    this.onLineChange?.(this, index, false);
  }

  /** An edge on line `index` (for a level line: assert then deassert). */
  pulse(index: number): void {
    this.line(index);
    const bit = 1 << index;
    this.state[this.n + index]!++;
    if ((this.status & bit) !== 0) this.state[3 * this.n + index]!++;
    this.pulseLine(index);
  }

  private pulseLine(index: number): void {
    const intid = this.state[index]!;
    this.dist.setLine(intid, true);
    this.onLineChange?.(this, index, true);
    this.dist.setLine(intid, false);
    this.onLineChange?.(this, index, false);
    if ((this.edge & (1 << index)) !== 0) this.status |= 1 << index;
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
      const n = this.n;
      for (let m = value & this.status & (n === 32 ? -1 : (1 << n) - 1); m !== 0; m &= m - 1) {
        const i = 31 - Math.clz32(m & -m);
        this.state[2 * n + i]!++;
        this.status &= ~(1 << i);
        if ((this.edge & (1 << i)) === 0) {
          this.dist.setLine(this.state[i]!, false);
          this.onLineChange?.(this, i, false);
        }
      }
    } else if (offset === PDEV_IRQ_RAISE) {
      for (let i = 0; i < this.n; i++) if ((value & (1 << i)) !== 0) this.assert(i);
    }
  }
}
