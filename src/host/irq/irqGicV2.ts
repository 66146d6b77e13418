/**
 * The host's GICv2 driver (drivers/irqchip/irq-gic.c) in the mode KVM hosts run it: EOImode=1 (split priority
 * drop and deactivation, `supports_deactivate_key`). gic_handle_irq acknowledges and immediately writes EOIR (the
 * priority drop); the flow handler's irq_eoi is the deactivation (DIR) — skipped for an INTID forwarded to a vCPU,
 * whose deactivation the guest performs through a HW list register.
 */
import type { Gic } from '../../hw/gic/gic.js';
import {
  GIC_CPU_CTRL_EOImodeNS,
  GICC_ENABLE,
  GICC_IAR_INT_ID_MASK,
  GICC_INT_PRI_THRESHOLD,
  isPrivate,
  isSgi,
  NR_PRIVATE_IRQS,
  SPI_BASE,
} from '../../hw/gic/regs.js';
import { defineCost } from '../../sim/costs.js';
import { current, eret, op, type TaskGen } from '../../sim/task.js';
import { handleDomainIrq } from './chip.js';
import type { Genirq } from './genirq.js';
import type { IrqChip, IrqchipState, IrqDesc, IrqTrigger } from './irqDesc.js';

const NO_DATA = 'perf-anchors §2: no published figure for GICv2 CPU interface access; estimate';
export const C_GICC_IAR = defineCost('gicc_iar', 100, `GICC_IAR read + isb; ${NO_DATA}`);
export const C_GICC_EOIR = defineCost('gicc_eoir', 80, `GICC_EOIR write (priority drop); ${NO_DATA}`);
export const C_GICC_DIR = defineCost('gicc_dir', 80, `GICC_DIR write (deactivate); ${NO_DATA}`);
export const C_GICD_WRITE = defineCost(
  'gicd_write',
  300,
  'GICD set/clear-enable or pending write; estimate below the 700-cycle active-state access (Zyngier 9b4a3004)',
);
export const C_GICD_ACTIVE = defineCost(
  'gicd_active',
  700,
  'GICD ISACTIVER/ICACTIVER access on a 2 GHz GICv2 (Zyngier commit 9b4a3004, perf-anchors §1.5)',
);
export const C_GICD_READ = defineCost(
  'gicd_read',
  500,
  'GICD state read ("notoriously slow", Dall b6909a659f8d); estimate',
);

/** GICD_INT_DEF_PRI (include/linux/irqchip/arm-gic-common.h): the priority Linux gives every interrupt. */
const GICD_INT_DEF_PRI = 0xa0;

export class GicV2Chip implements IrqChip {
  readonly name = 'GICv2';
  readonly eoiIfHandled = false;
  /** Per-INTID object ids (distributor state of that INTID) and per-CPU ids (the CPU interface): the GIC's own. */
  readonly intidOid: Int32Array;
  readonly giccOid: Int32Array;
  /** gic_handle_irq stashes the IAR of an SGI (with its source CPU) for the later DIR (sgi_intid). */
  private readonly sgiIar: Int32Array;
  /**
   * Per CPU: IRQ exceptions whose first GICC_IAR read found nothing to acknowledge (1023) — the line dropped, or
   * another CPU of a 1-of-N SPI took it, between the signal and the read. irq-gic.c just returns; this counts it.
   */
  readonly spurious: Int32Array;

  constructor(readonly gic: Gic) {
    this.intidOid = gic.distributor.intidOid;
    this.giccOid = gic.distributor.giccOid;
    this.sgiIar = new Int32Array(gic.nrCpus);
    this.spurious = new Int32Array(gic.nrCpus);
  }

  /** The banked copy a private INTID's register access reaches: the current CPU's. */
  private bank(d: IrqDesc): number | undefined {
    return isPrivate(d.hwirq) ? current().cpu : undefined;
  }

  *irqMask(d: IrqDesc): TaskGen<void> {
    yield op(C_GICD_WRITE, this.intidOid[d.hwirq]!);
    this.gic.distributor.disable(d.hwirq, this.bank(d));
    // gic_eoimode1_mask_irq: masking a forwarded interrupt also deactivates it, or it would stay active forever.
    if (d.forwardedToVcpu) {
      yield op(C_GICD_ACTIVE, this.intidOid[d.hwirq]!);
      this.gic.distributor.setActive(d.hwirq, false, this.bank(d));
    }
  }

  *irqUnmask(d: IrqDesc): TaskGen<void> {
    yield op(C_GICD_WRITE, this.intidOid[d.hwirq]!);
    this.gic.distributor.enable(d.hwirq, this.bank(d));
  }

  /** gic_eoimode1_eoi_irq: deactivate, unless the INTID is forwarded to a vCPU (the guest deactivates it). */
  *irqEoi(d: IrqDesc): TaskGen<void> {
    if (d.forwardedToVcpu) return;
    const cpu = current().cpu;
    yield op(C_GICC_DIR, this.giccOid[cpu]!, this.intidOid[d.hwirq]!);
    this.gic.cpu(cpu).writeDir(isSgi(d.hwirq) ? this.sgiIar[cpu]! : d.hwirq);
  }

  /** gic_retrigger: set the INTID pending in the distributor. */
  *irqRetrigger(d: IrqDesc): TaskGen<boolean> {
    yield op(C_GICD_WRITE, this.intidOid[d.hwirq]!);
    this.gic.distributor.setPending(d.hwirq, this.bank(d));
    return true;
  }

  /** gic_irq_get_irqchip_state: PENDING, ACTIVE and MASKED read the distributor; LINE_LEVEL does not exist here. */
  *irqGetIrqchipState(d: IrqDesc, which: IrqchipState): TaskGen<boolean | null> {
    if (which === 'LINE_LEVEL') return null;
    yield op(C_GICD_READ, this.intidOid[d.hwirq]!);
    const dist = this.gic.distributor;
    const bank = this.bank(d);
    if (which === 'PENDING') return dist.isPending(d.hwirq, bank);
    if (which === 'ACTIVE') return dist.isActive(d.hwirq, bank);
    return !dist.isEnabled(d.hwirq, bank);
  }

  /** gic_irq_set_irqchip_state: ISPENDR/ICPENDR, ISACTIVER/ICACTIVER, ICENABLER/ISENABLER. */
  *irqSetIrqchipState(d: IrqDesc, which: IrqchipState, val: boolean): TaskGen<boolean> {
    if (which === 'LINE_LEVEL') return false;
    yield op(which === 'ACTIVE' ? C_GICD_ACTIVE : C_GICD_WRITE, this.intidOid[d.hwirq]!);
    const dist = this.gic.distributor;
    const bank = this.bank(d);
    if (which === 'PENDING') {
      if (val) dist.setPending(d.hwirq, bank);
      else dist.clearPending(d.hwirq, bank);
    } else if (which === 'ACTIVE') {
      dist.setActive(d.hwirq, val, bank);
    } else if (val) {
      dist.disable(d.hwirq, bank);
    } else {
      dist.enable(d.hwirq, bank);
    }
    return true;
  }

  /** gic_set_type: SGIs are fixed edge; PPIs and SPIs take level-high or rising-edge. */
  *irqSetType(d: IrqDesc, trigger: IrqTrigger): TaskGen<boolean> {
    if (isSgi(d.hwirq)) return trigger === 'edge';
    yield op(C_GICD_WRITE, this.intidOid[d.hwirq]!);
    this.gic.distributor.setConfig(d.hwirq, trigger, this.bank(d));
    return true;
  }

  /** gic_irq_set_vcpu_affinity: SGIs cannot be forwarded; otherwise set or clear IRQD_FORWARDED_TO_VCPU. */
  irqSetVcpuAffinity(d: IrqDesc, vcpu: unknown): boolean {
    if (isSgi(d.hwirq)) return false;
    d.forwardedToVcpu = vcpu != null;
    d.vcpuInfo = vcpu ?? null;
    return true;
  }

  /** Remember the IAR of an SGI being handled on `cpu`. */
  stashSgi(cpu: number, iar: number): void {
    this.sgiIar[cpu] = iar;
  }
}

/**
 * gic_dist_init + gic_cpu_init as Linux boots them: SPIs disabled, level, targeted at CPU 0, priority 0xa0;
 * every CPU interface enabled with EOImode=1 and the PMR threshold 0xf0; then the distributor enabled.
 */
export function gicV2Init(gic: Gic): void {
  const dist = gic.distributor;
  // drivers/irqchip/irq-gic.c gic_of_init/__gic_init_bases: gic_irqs is capped at 1020 (1020-1023 are special)
  const gicIrqs = Math.min(dist.nrIrqs, 1020);
  for (let intid = SPI_BASE; intid < gicIrqs; intid++) {
    dist.disable(intid);
    dist.setConfig(intid, 'level');
    dist.setTargets(intid, 1);
    dist.setPriority(intid, GICD_INT_DEF_PRI);
  }
  for (let cpu = 0; cpu < gic.nrCpus; cpu++) {
    for (let intid = 0; intid < NR_PRIVATE_IRQS; intid++) dist.setPriority(intid, GICD_INT_DEF_PRI, cpu);
    // gic_cpu_init: SGIs enabled, PPIs disabled until a driver requests them.
    for (let intid = 0; intid < 16; intid++) dist.enable(intid, cpu);
    const gicc = gic.cpu(cpu);
    gicc.setPmr(GICC_INT_PRI_THRESHOLD);
    gicc.setCtlr(GICC_ENABLE | GIC_CPU_CTRL_EOImodeNS);
  }
  dist.setCtlr(1);
}

/**
 * gic_handle_irq, the IRQ vector of a host CPU: acknowledge until spurious, priority-drop each interrupt at once
 * (EOImode=1), and run its flow handler; then return from the exception.
 */
export function* gicHandleIrq(g: Genirq, chip: GicV2Chip, cpu: number): TaskGen<void> {
  const gicc = chip.gic.cpu(cpu);
  const giccOid = chip.giccOid[cpu]!;
  for (;;) {
    for (let taken = 0; ; taken++) {
      yield op(C_GICC_IAR, giccOid);
      const iar = gicc.readIar();
      const intid = iar & GICC_IAR_INT_ID_MASK;
      if (intid >= 1020) {
        if (taken === 0) {
          chip.spurious[cpu]!++;
          g.trace?.gicIar?.(cpu, intid);
        }
        break;
      }
      g.trace?.gicIar?.(cpu, intid);
      yield op(C_GICC_EOIR, giccOid, chip.intidOid[intid]!);
      gicc.writeEoir(iar);
      g.trace?.gicEoir?.(cpu, intid);
      if (isSgi(intid)) chip.stashSgi(cpu, iar);
      const desc = g.domain.findByHwirq(intid);
      if (desc === undefined) {
        // handle_bad_irq/ack_bad_irq: nobody owns it; with EOImode=1 it now stays active (no DIR).
        g.badIrqs.push(`cpu${cpu}: unexpected IRQ, INTID ${intid}`);
        continue;
      }
      yield* handleDomainIrq(g, desc);
    }
    yield eret();
  }
}
