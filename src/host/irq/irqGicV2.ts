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
import { type Boundary, Frame } from '../../sim/frame.js';
import { declareStatistics } from '../../sim/statistics.js';
import { current, eret, op } from '../../sim/task.js';
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

  irqMask(d: IrqDesc): Frame {
    return new GicEoimode1MaskIrq(this, d);
  }

  irqUnmask(d: IrqDesc): Frame {
    return new GicUnmaskIrq(this, d);
  }

  irqEoi(d: IrqDesc): Frame {
    return new GicEoimode1EoiIrq(this, d);
  }

  irqRetrigger(d: IrqDesc): Frame<boolean> {
    return new GicRetrigger(this, d);
  }

  irqGetIrqchipState(d: IrqDesc, which: IrqchipState): Frame<boolean | null> {
    return new GicIrqGetIrqchipState(this, d, which);
  }

  irqSetIrqchipState(d: IrqDesc, which: IrqchipState, val: boolean): Frame<boolean> {
    return new GicIrqSetIrqchipState(this, d, which, val);
  }

  irqSetType(d: IrqDesc, trigger: IrqTrigger): Frame<boolean> {
    return new GicSetType(this, d, trigger);
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

  /** The IAR gic_handle_irq stashed for the SGI being handled on `cpu`. */
  stashedSgi(cpu: number): number {
    return this.sgiIar[cpu]!;
  }
}
declareStatistics(GicV2Chip, ['spurious']);

/** The banked copy a private INTID's register access reaches: the current CPU's. */
function bank(d: IrqDesc): number | undefined {
  return isPrivate(d.hwirq) ? current().cpu : undefined;
}

// The irq_chip callbacks, each a frame of register accesses; resume points named after the access they perform.

/** What every callback frame keeps: the chip and the descriptor it acts on. */
abstract class GicChipOp<R = void> extends Frame<R> {
  constructor(
    protected readonly chip: GicV2Chip,
    protected readonly d: IrqDesc,
  ) {
    super();
  }
}

const PC_DECLARE = 0; // declare the access's step (its cost and the INTID or CPU interface it touches)
const PC_ACCESS = 1; // perform it
const PC_DEACTIVATE = 2;

/** gic_eoimode1_mask_irq: masking a forwarded interrupt also deactivates it, or it would stay active forever. */
class GicEoimode1MaskIrq extends GicChipOp {
  protected step(): Boundary {
    const d = this.d;
    const oid = this.chip.intidOid[d.hwirq]!;
    switch (this.pc) {
      case PC_DECLARE:
        this.pc = PC_ACCESS;
        return this.yield_(op(C_GICD_WRITE, oid));
      case PC_ACCESS: // ICENABLER
        this.chip.gic.distributor.disable(d.hwirq, bank(d));
        if (!d.forwardedToVcpu) return this.return_(undefined);
        this.pc = PC_DEACTIVATE;
        return this.yield_(op(C_GICD_ACTIVE, oid));
      default: // ICACTIVER
        this.chip.gic.distributor.setActive(d.hwirq, false, bank(d));
        return this.return_(undefined);
    }
  }
}

/** gic_unmask_irq: ISENABLER. */
class GicUnmaskIrq extends GicChipOp {
  protected step(): Boundary {
    const d = this.d;
    if (this.pc === PC_DECLARE) {
      this.pc = PC_ACCESS;
      return this.yield_(op(C_GICD_WRITE, this.chip.intidOid[d.hwirq]!));
    }
    this.chip.gic.distributor.enable(d.hwirq, bank(d));
    return this.return_(undefined);
  }
}

/** gic_eoimode1_eoi_irq: deactivate (GICC_DIR), unless the INTID is forwarded to a vCPU (the guest deactivates it). */
class GicEoimode1EoiIrq extends GicChipOp {
  private cpu = 0;

  protected step(): Boundary {
    const d = this.d;
    const chip = this.chip;
    if (this.pc === PC_DECLARE) {
      if (d.forwardedToVcpu) return this.return_(undefined);
      this.cpu = current().cpu;
      this.pc = PC_ACCESS;
      return this.yield_(op(C_GICC_DIR, chip.giccOid[this.cpu]!, chip.intidOid[d.hwirq]!));
    }
    const cpu = this.cpu;
    chip.gic.cpu(cpu).writeDir(isSgi(d.hwirq) ? chip.stashedSgi(cpu) : d.hwirq);
    return this.return_(undefined);
  }
}

/** gic_retrigger: set the INTID pending in the distributor (ISPENDR). */
class GicRetrigger extends GicChipOp<boolean> {
  protected step(): Boundary {
    const d = this.d;
    if (this.pc === PC_DECLARE) {
      this.pc = PC_ACCESS;
      return this.yield_(op(C_GICD_WRITE, this.chip.intidOid[d.hwirq]!));
    }
    this.chip.gic.distributor.setPending(d.hwirq, bank(d));
    return this.return_(true);
  }
}

/** gic_irq_get_irqchip_state: PENDING, ACTIVE and MASKED read the distributor; LINE_LEVEL does not exist here. */
class GicIrqGetIrqchipState extends GicChipOp<boolean | null> {
  constructor(
    chip: GicV2Chip,
    d: IrqDesc,
    private readonly which: IrqchipState,
  ) {
    super(chip, d);
  }

  protected step(): Boundary {
    const d = this.d;
    const which = this.which;
    if (this.pc === PC_DECLARE) {
      if (which === 'LINE_LEVEL') return this.return_(null);
      this.pc = PC_ACCESS;
      return this.yield_(op(C_GICD_READ, this.chip.intidOid[d.hwirq]!));
    }
    const dist = this.chip.gic.distributor;
    const b = bank(d);
    if (which === 'PENDING') return this.return_(dist.isPending(d.hwirq, b));
    if (which === 'ACTIVE') return this.return_(dist.isActive(d.hwirq, b));
    return this.return_(!dist.isEnabled(d.hwirq, b));
  }
}

/** gic_irq_set_irqchip_state: ISPENDR/ICPENDR, ISACTIVER/ICACTIVER, ICENABLER/ISENABLER. */
class GicIrqSetIrqchipState extends GicChipOp<boolean> {
  constructor(
    chip: GicV2Chip,
    d: IrqDesc,
    private readonly which: IrqchipState,
    private readonly val: boolean,
  ) {
    super(chip, d);
  }

  protected step(): Boundary {
    const d = this.d;
    const which = this.which;
    if (this.pc === PC_DECLARE) {
      if (which === 'LINE_LEVEL') return this.return_(false);
      this.pc = PC_ACCESS;
      return this.yield_(op(which === 'ACTIVE' ? C_GICD_ACTIVE : C_GICD_WRITE, this.chip.intidOid[d.hwirq]!));
    }
    const dist = this.chip.gic.distributor;
    const b = bank(d);
    if (which === 'PENDING') {
      if (this.val) dist.setPending(d.hwirq, b);
      else dist.clearPending(d.hwirq, b);
    } else if (which === 'ACTIVE') {
      dist.setActive(d.hwirq, this.val, b);
    } else if (this.val) {
      dist.disable(d.hwirq, b);
    } else {
      dist.enable(d.hwirq, b);
    }
    return this.return_(true);
  }
}

/** gic_set_type: SGIs are fixed edge; PPIs and SPIs take level-high or rising-edge (GICD_ICFGR). */
class GicSetType extends GicChipOp<boolean> {
  constructor(
    chip: GicV2Chip,
    d: IrqDesc,
    private readonly trigger: IrqTrigger,
  ) {
    super(chip, d);
  }

  protected step(): Boundary {
    const d = this.d;
    if (this.pc === PC_DECLARE) {
      if (isSgi(d.hwirq)) return this.return_(this.trigger === 'edge');
      this.pc = PC_ACCESS;
      return this.yield_(op(C_GICD_WRITE, this.chip.intidOid[d.hwirq]!));
    }
    this.chip.gic.distributor.setConfig(d.hwirq, this.trigger, bank(d));
    return this.return_(true);
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

// gic_handle_irq's resume points
const GH_IAR = 0; // irqstat = readl_relaxed(cpu_base + GIC_CPU_INTACK)
const GH_ACKED = 1; // the IAR read's step: spurious, or write EOIR
const GH_EOIR = 2; // the EOIR write's step: find the descriptor and run its flow
const GH_FLOW = 3; // the flow handler returned: acknowledge the next one
const GH_ERET = 4; // the exception returned: the next IRQ exception starts over

/**
 * gic_handle_irq, the IRQ vector of a host CPU: acknowledge until spurious, priority-drop each interrupt at once
 * (EOImode=1), and run its flow handler; then return from the exception. A frame that loops forever.
 */
class GicHandleIrq extends Frame<never> {
  /** Interrupts acknowledged in this exception. */
  private taken = 0;
  private iar = 0;

  constructor(
    private readonly g: Genirq,
    private readonly chip: GicV2Chip,
    private readonly cpu: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const chip = this.chip;
    const cpu = this.cpu;
    const g = this.g;
    for (;;) {
      switch (this.pc) {
        case GH_IAR:
          this.pc = GH_ACKED;
          return this.yield_(op(C_GICC_IAR, chip.giccOid[cpu]!));
        case GH_ACKED: {
          const iar = chip.gic.cpu(cpu).readIar();
          const intid = iar & GICC_IAR_INT_ID_MASK;
          if (intid >= 1020) {
            if (this.taken === 0) {
              chip.spurious[cpu]!++;
              g.trace?.gicIar?.(cpu, intid);
            }
            this.pc = GH_ERET;
            return this.yield_(eret());
          }
          g.trace?.gicIar?.(cpu, intid);
          this.iar = iar;
          this.pc = GH_EOIR;
          return this.yield_(op(C_GICC_EOIR, chip.giccOid[cpu]!, chip.intidOid[intid]!));
        }
        case GH_EOIR: {
          const iar = this.iar;
          const intid = iar & GICC_IAR_INT_ID_MASK;
          chip.gic.cpu(cpu).writeEoir(iar);
          g.trace?.gicEoir?.(cpu, intid);
          if (isSgi(intid)) chip.stashSgi(cpu, iar);
          const desc = g.domain.findByHwirq(intid);
          if (desc === undefined) {
            // handle_bad_irq/ack_bad_irq: nobody owns it; with EOImode=1 it now stays active (no DIR).
            g.badIrqs.push(`cpu${cpu}: unexpected IRQ, INTID ${intid}`);
            this.pc = GH_FLOW;
            continue;
          }
          this.pc = GH_FLOW;
          return this.call(handleDomainIrq(g, desc));
        }
        case GH_FLOW:
          this.taken++;
          this.pc = GH_IAR;
          continue;
        default: // GH_ERET
          this.taken = 0;
          this.pc = GH_IAR;
      }
    }
  }
}

export function gicHandleIrq(g: Genirq, chip: GicV2Chip, cpu: number): Frame<never> {
  return new GicHandleIrq(g, chip, cpu);
}
