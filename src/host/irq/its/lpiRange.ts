/**
 * The LPI allocator of irq-gic-v3-its.c (lpi_range_list, alloc_lpi_range, free_lpi_range, its_lpi_alloc): free
 * ranges of INTIDs kept sorted by base; an allocation takes the front of the first range that fits, a free inserts
 * its range in order and merges it with its neighbours. The kernel's lpi_range_lock only guards the list, with no
 * sleep inside: each call here is atomic, which is the same.
 */
import { LPI_BASE } from '../../../hw/gicv3/lpi.js';

interface LpiRange {
  base: number;
  span: number;
}

export class LpiRangeList {
  private readonly ranges: LpiRange[] = [];

  /** its_lpi_init: the whole range of `nrLpis` LPIs from 8192 is free. */
  constructor(readonly nrLpis: number) {
    this.free(LPI_BASE, nrLpis);
  }

  /** alloc_lpi_range: the base of `nr` LPIs, or -1 (-ENOSPC). */
  private allocRange(nr: number): number {
    const i = this.ranges.findIndex((r) => r.span >= nr);
    if (i < 0) return -1;
    const r = this.ranges[i]!;
    const base = r.base;
    r.base += nr;
    r.span -= nr;
    if (r.span === 0) this.ranges.splice(i, 1);
    return base;
  }

  /**
   * its_lpi_alloc: `nr` LPIs, or fewer — halving the request until a range fits — as { base, nr }; null when not
   * even one is free.
   */
  alloc(nr: number): { base: number; nr: number } | null {
    for (let n = nr; n > 0; n = Math.floor(n / 2)) {
      const base = this.allocRange(n);
      if (base >= 0) return { base, nr: n };
    }
    return null;
  }

  /** LPIs free now (a checker's count: all of them once every allocation was given back). */
  freeLpis(): number {
    return this.ranges.reduce((n, r) => n + r.span, 0);
  }

  /** free_lpi_range: insert in order, then merge with the previous and the next range. */
  free(base: number, nr: number): void {
    let i = this.ranges.findIndex((r) => r.base > base);
    if (i < 0) i = this.ranges.length;
    this.ranges.splice(i, 0, { base, span: nr });
    const next = this.ranges[i + 1];
    if (next !== undefined && base + nr === next.base) {
      this.ranges[i]!.span += next.span;
      this.ranges.splice(i + 1, 1);
    }
    const prev = this.ranges[i - 1];
    if (prev !== undefined && prev.base + prev.span === base) {
      prev.span += this.ranges[i]!.span;
      this.ranges.splice(i, 1);
    }
  }

  /** LPIs free (for leak checks). */
  get freeCount(): number {
    return this.ranges.reduce((n, r) => n + r.span, 0);
  }
}
