/**
 * The machine's physical memory as the interrupt hardware sees it: GICv3 redistributors read the LPI configuration
 * table and the ITS reads its command queue from it (IHI 0069 §5.1.1, §5.3.3). Sparse 4 KiB pages, created on first
 * write; unwritten memory reads as zero. Little-endian, as arm64 Linux lays the tables out.
 */
import { ModelError } from '../sim/errors.js';

const PAGE_SHIFT = 12;
const PAGE_SIZE = 1 << PAGE_SHIFT;
/** 52-bit physical addresses (ARMv8.2 LPA): beyond 2^53 a JS number is not exact. */
const PA_LIMIT = 2 ** 52;

export class PhysicalMemory {
  /** Page number → page; filled in address order of first write (deterministic for a deterministic run). */
  private readonly pages = new Map<number, Uint8Array>();

  readU8(pa: number): number {
    const page = this.pages.get(this.pageOf(pa, 1));
    return page === undefined ? 0 : page[pa & (PAGE_SIZE - 1)]!;
  }

  writeU8(pa: number, v: number): void {
    this.page(this.pageOf(pa, 1))[pa & (PAGE_SIZE - 1)] = v & 0xff;
  }

  /** A little-endian 64-bit value as two 32-bit halves [lo, hi] (what the ITS command fields are cut from). */
  readU64(pa: number, out: Uint32Array, at: number): void {
    this.pageOf(pa, 8);
    out[at] = this.readU32(pa);
    out[at + 1] = this.readU32(pa + 4);
  }

  readU32(pa: number): number {
    this.pageOf(pa, 4);
    return (
      (this.readU8(pa) | (this.readU8(pa + 1) << 8) | (this.readU8(pa + 2) << 16) | (this.readU8(pa + 3) << 24)) >>> 0
    );
  }

  writeU32(pa: number, v: number): void {
    this.pageOf(pa, 4);
    for (let i = 0; i < 4; i++) this.writeU8(pa + i, v >>> (8 * i));
  }

  /** Writes a 64-bit value given as halves (software building an ITS command or a table entry). */
  writeU64(pa: number, lo: number, hi: number): void {
    this.pageOf(pa, 8);
    this.writeU32(pa, lo);
    this.writeU32(pa + 4, hi);
  }

  /** Pages written so far. */
  get pageCount(): number {
    return this.pages.size;
  }

  private pageOf(pa: number, size: number): number {
    if (!Number.isInteger(pa) || pa < 0 || pa + size > PA_LIMIT || pa % size !== 0) {
      throw new ModelError(`bad physical address 0x${pa.toString(16)} for a ${size}-byte access`);
    }
    return Math.floor(pa / PAGE_SIZE);
  }

  private page(n: number): Uint8Array {
    let p = this.pages.get(n);
    if (p === undefined) {
      p = new Uint8Array(PAGE_SIZE);
      this.pages.set(n, p);
    }
    return p;
  }
}
