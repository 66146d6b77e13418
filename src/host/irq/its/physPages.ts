/**
 * The host kernel's physically contiguous allocations the GIC's tables live in (alloc_pages / kzalloc of
 * irq-gic-v3-its.c: the LPI property and pending tables, the ITS command queue, each device's ITT), handed out from
 * the machine's PhysicalMemory. A bump allocator: freed memory is counted, never reused, so every run lays its tables
 * out at the same addresses and a stale pointer the hardware still holds never aliases a new table.
 */
import type { PhysicalMemory } from '../../../hw/physMem.js';
import { ModelError } from '../../../sim/errors.js';

/** Where the allocator starts: the first GiB of the model's RAM is left to nothing else (informational). */
const PHYS_BASE = 0x4000_0000;
const PHYS_LIMIT = 2 ** 40;

export class PhysPages {
  private next = PHYS_BASE;
  /** Bytes allocated and not yet freed, and the allocations by address (leak checks). */
  private readonly live = new Map<number, number>();

  constructor(readonly memory: PhysicalMemory) {}

  /** A zeroed block of `size` bytes aligned to `align` (a power of two); its physical address. */
  alloc(size: number, align: number): number {
    if (!Number.isInteger(size) || size <= 0 || align <= 0 || (align & (align - 1)) !== 0) {
      throw new ModelError(`bad allocation of ${size} bytes aligned to ${align}`);
    }
    const pa = Math.ceil(this.next / align) * align;
    if (pa + size > PHYS_LIMIT) throw new ModelError('the GIC table allocator ran out of physical memory');
    this.next = pa + size;
    this.live.set(pa, size);
    return pa;
  }

  free(pa: number): void {
    if (!this.live.delete(pa)) throw new ModelError(`free of 0x${pa.toString(16)}, which is not allocated`);
  }

  /** memset of a block: `size` bytes of `v` from `pa`. */
  fill(pa: number, size: number, v: number): void {
    for (let i = 0; i < size; i++) this.memory.writeU8(pa + i, v);
  }

  /** Allocations not freed. */
  get liveCount(): number {
    return this.live.size;
  }
}
