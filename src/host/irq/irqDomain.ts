/**
 * The GIC's irq domain (kernel/irq/irqdomain.c): maps hardware INTIDs to Linux IRQ numbers. Linux numbers are
 * allocated in mapping order and are deliberately never equal to the INTID they map, as on real systems, so that
 * code confusing the two (as the seed patch does with "hwirq") fails loudly. `identitySpis` opts into the 2014 arm32
 * legacy domain (Linux IRQ = INTID for SPIs), where that confusion was latent.
 */
import { ModelError } from '../../sim/errors.js';
import type { IrqDesc } from './irqDesc.js';

/** Hardware INTIDs below this (SGIs, PPIs, SPIs, Extended SPIs) resolve through the domain's linear revmap. */
const REVMAP_SIZE = 8192;
const linear = (hwirq: number): boolean => hwirq >= 0 && hwirq < REVMAP_SIZE && (hwirq | 0) === hwirq;

export class IrqDomain {
  /**
   * irq_find_mapping's two stores (kernel/irq/irqdomain.c __irq_resolve_mapping): the linear revmap[] for hwirq <
   * revmap_size — every interrupt the GIC handler takes looks its INTID up here, one slot, no hashing — and the
   * tree (a map here) for the sparse ones above it (LPIs). The revmap grows to the highest INTID mapped (the
   * checker copies and hashes it with the machine).
   */
  private readonly revmap: (IrqDesc | null)[] = [];
  private readonly byHwirq = new Map<number, IrqDesc>();
  private readonly byIrq = new Map<number, IrqDesc>();
  private nextIrq: number;
  /** The 2014 arm32 legacy GIC domain: an SPI's Linux IRQ number is its INTID (HostOptions.irqNumbering). */
  identitySpis = false;

  constructor(
    readonly name: string,
    firstIrq = 1,
  ) {
    this.nextIrq = firstIrq;
  }

  /** Allocate the next Linux IRQ number for `hwirq` (skipping the INTID's own value). */
  allocIrq(hwirq: number): number {
    if (this.findByHwirq(hwirq) !== undefined) throw new ModelError(`hwirq ${hwirq} is already mapped in ${this.name}`);
    if (this.identitySpis && hwirq >= 32 && !this.byIrq.has(hwirq)) return hwirq;
    let irq = this.nextIrq++;
    while (irq === hwirq || this.byIrq.has(irq)) irq = this.nextIrq++;
    return irq;
  }

  add(desc: IrqDesc): void {
    if (linear(desc.hwirq)) {
      while (this.revmap.length <= desc.hwirq) this.revmap.push(null);
      this.revmap[desc.hwirq] = desc;
    } else this.byHwirq.set(desc.hwirq, desc);
    this.byIrq.set(desc.irq, desc);
  }

  /** irq_domain_free_irqs: the descriptor and its mapping are gone (its Linux IRQ number is not reused). */
  remove(desc: IrqDesc): void {
    if (this.findByHwirq(desc.hwirq) !== desc) throw new ModelError(`${desc} is not mapped in ${this.name}`);
    if (linear(desc.hwirq)) this.revmap[desc.hwirq] = null;
    else this.byHwirq.delete(desc.hwirq);
    this.byIrq.delete(desc.irq);
    desc.kstatIrqs.free(desc.irq);
  }

  /** irq_find_mapping + irq_to_desc. */
  findByHwirq(hwirq: number): IrqDesc | undefined {
    return linear(hwirq) ? (this.revmap[hwirq] ?? undefined) : this.byHwirq.get(hwirq);
  }

  /** irq_to_desc. */
  irqToDesc(irq: number): IrqDesc | undefined {
    return this.byIrq.get(irq);
  }

  /** All descriptors in Linux IRQ order. */
  descs(): IrqDesc[] {
    return [...this.byIrq.values()].sort((a, b) => a.irq - b.irq);
  }
}
