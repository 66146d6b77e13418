/**
 * The host's generic IRQ layer instance: the irq domain of the root interrupt controller and the descriptors it
 * created. Model code reaches descriptors through it by Linux IRQ number, as kernel code does with irq_to_desc().
 */
import type { Engine } from '../../sim/engine.js';
import { ModelError } from '../../sim/errors.js';
import { type FlowKind, type IrqChip, IrqDesc, type IrqReturn, type IrqTrigger, KstatIrqs } from './irqDesc.js';
import { IrqDomain } from './irqDomain.js';

/** Observer of handler runs (the irq_handler_entry / irq_handler_exit tracepoints). */
export interface IrqTraceHooks {
  handlerEntry(desc: IrqDesc, name: string): void;
  handlerExit(desc: IrqDesc, ret: IrqReturn): void;
  /** The root chip's IRQ vector read GICC_IAR: `intid` acknowledged (1023 when the first read found nothing). */
  gicIar?(cpu: number, intid: number): void;
  /** The root chip's IRQ vector wrote GICC_EOIR: priority drop only (EOImode=1; the DIR comes later). */
  gicEoir?(cpu: number, intid: number): void;
}

export class Genirq {
  readonly domain: IrqDomain;
  /** The per-CPU kstat_irqs areas of every descriptor of this host. */
  readonly kstatIrqs: KstatIrqs;
  trace: IrqTraceHooks | null = null;
  /** INTIDs acknowledged with no descriptor (ack_bad_irq), in order. */
  readonly badIrqs: string[] = [];
  /** Kernel log lines the IRQ layer printed (note_interrupt's "irq N: nobody cared" report), in order. */
  readonly log: string[] = [];

  constructor(
    readonly engine: Engine,
    readonly chip: IrqChip,
    domainName = 'GICv2',
  ) {
    this.domain = new IrqDomain(domainName);
    this.kstatIrqs = new KstatIrqs(engine.cpus.length);
  }

  /** irq_create_mapping + irq_set_irq_type: give `hwirq` a Linux IRQ number and a descriptor. */
  createMapping(hwirq: number, trigger: IrqTrigger): IrqDesc {
    const existing = this.domain.findByHwirq(hwirq);
    if (existing !== undefined) {
      if (existing.trigger !== trigger) {
        throw new ModelError(`hwirq ${hwirq} is already mapped as ${existing.trigger}, not ${trigger}`);
      }
      return existing;
    }
    // drivers/irqchip/irq-gic.c gic_irq_domain_map: INTIDs 16..31 are per-CPU (handle_percpu_devid_irq).
    const flow: FlowKind = hwirq < 32 ? 'percpu_devid' : 'fasteoi';
    const desc = new IrqDesc(this.engine, this.kstatIrqs, this.domain.allocIrq(hwirq), hwirq, trigger, this.chip, flow);
    this.domain.add(desc);
    return desc;
  }

  /**
   * __irq_domain_alloc_irqs for a hierarchical domain above the GIC (the ITS MSI domain): a descriptor for `hwirq`
   * (an LPI) whose chip is the domain's, with the fasteoi flow the GIC's domain gives LPIs (gic_irq_domain_map).
   */
  allocHierarchyDesc(hwirq: number, trigger: IrqTrigger, chip: IrqChip): IrqDesc {
    const desc = new IrqDesc(this.engine, this.kstatIrqs, this.domain.allocIrq(hwirq), hwirq, trigger, chip, 'fasteoi');
    this.domain.add(desc);
    return desc;
  }

  /** irq_to_desc, for code that must have one (a missing descriptor is a model bug here). */
  desc(irq: number): IrqDesc {
    const d = this.domain.irqToDesc(irq);
    if (d === undefined) throw new ModelError(`no irq_desc for Linux IRQ ${irq}`);
    return d;
  }

  /** irq_find_mapping: the Linux IRQ number of an INTID, or 0 when unmapped (as the kernel returns). */
  findMapping(hwirq: number): number {
    return this.domain.findByHwirq(hwirq)?.irq ?? 0;
  }

  /** Every WARN recorded on any descriptor, in IRQ order (for invariants). */
  warnings(): string[] {
    const out: string[] = [];
    for (const d of this.domain.descs()) for (const w of d.warnings) out.push(w);
    return out;
  }
}
