import { describe, expect, it } from 'vitest';
import { Engine } from '../../sim/engine.js';
import { type IrqChip, IrqDesc, KstatIrqs } from './irqDesc.js';

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

describe('irq_data state bits (include/linux/irq.h IRQD_*)', () => {
  it('a new descriptor is disabled and masked (desc_set_defaults); each irqd flag is its own bit of the one state word', () => {
    const desc = new IrqDesc(new Engine({ cpus: 1 }), new KstatIrqs(1), 3, 32, 'level', {} as IrqChip, 'fasteoi');
    expect(desc.irqd).toBe((1 << 16) | (1 << 17));
    desc.disabled = false;
    desc.forwardedToVcpu = true;
    desc.inprogress = true;
    expect(desc.irqd).toBe((1 << 17) | (1 << 18) | (1 << 20));
    expect([desc.disabled, desc.masked, desc.inprogress, desc.forwardedToVcpu, desc.started, desc.activated]).toEqual([
      false,
      true,
      true,
      true,
      false,
      false,
    ]);
    desc.masked = false;
    desc.inprogress = false;
    desc.started = true;
    desc.activated = true;
    expect(desc.irqd).toBe((1 << 9) | (1 << 20) | (1 << 22));
  });
});
