import { describe, expect, it } from 'vitest';
import { KstatIrqs } from './irqDesc.js';

describe('kstat_irqs per-CPU areas (kernel/irq/irqdesc.c alloc_desc, free_desc)', () => {
  it("keeps every IRQ's per-CPU counts when the areas grow past the first IRQ numbers", () => {
    const k = new KstatIrqs(3);
    k.alloc(5);
    k.inc(5, 0);
    k.inc(5, 2);
    k.inc(5, 2);
    k.alloc(1000); // grows every CPU's area
    k.inc(1000, 1);
    expect([0, 1, 2].map((c) => k.get(5, c))).toEqual([1, 0, 2]);
    expect([0, 1, 2].map((c) => k.get(1000, c))).toEqual([0, 1, 0]);
  });

  it("clears a freed descriptor's counts on every CPU, so a number given again starts from zero", () => {
    const k = new KstatIrqs(2);
    k.alloc(40);
    k.inc(40, 0);
    k.inc(40, 1);
    k.inc(41, 1);
    k.free(40);
    expect([k.get(40, 0), k.get(40, 1), k.get(41, 1)]).toEqual([0, 0, 1]);
  });
});
