/**
 * The host's GICv3 driver (drivers/irqchip/irq-gic-v3.c, Linux 6.1) in the mode a kernel at EL2 runs it: EOImode=1
 * (`supports_deactivate_key`, the gic_eoimode1_chip). gic_handle_irq reads ICC_IAR1_EL1 once per exception and
 * writes ICC_EOIR1_EL1 at once (gic_complete_ack: the priority drop); the flow handler's irq_eoi writes ICC_DIR_EL1
 * (gic_eoimode1_eoi_irq) — skipped for an INTID forwarded to a vCPU, whose deactivation the guest performs through
 * a HW list register. Per-INTID state is reached with gic_poke_irq/gic_peek_irq: the distributor for SPIs, the
 * current CPU's redistributor (SGI_base frame) for SGIs and PPIs. SPIs have one target CPU, named by MPIDR affinity
 * in GICD_IROUTER<n> (gic_set_affinity). Every chip callback is a frame.
 *
 * GICv3.1 Extended SPIs (INTIDs 4096..5119, GIC_ESPI DT cells: gic_irq_domain_translate adds ESPI_BASE_INTID) are
 * SPIs to the driver: __get_intid_range gives ESPI_RANGE, which takes the SPI paths (gic_irq_in_rdist false, the
 * same chip and flow), and convert_offset_espi turns each GICD_<reg> into its GICD_<reg>nE block — here the
 * distributor's helpers reach both ranges by INTID. gic_dist_init programs the E-blocks through MMIO.
 *
 * LPIs reach gic_handle_irq like any INTID; their chip and domain are the ITS driver's (its/, booted only with
 * nrLpis). Left out: pseudo-NMIs (gic_handle_nmi and the ICC_RPR_EL1 check; no NMI priority is ever used), the
 * extended PPI range, and the GICD_CTLR/GICR_CTLR.RWP waits (the model's
 * register writes take effect at once, so rwp_wait returns at its first read; its cost is in the write's).
 */
import type { Gicv3 } from '../../hw/gicv3/gicv3.js';
import {
  GICD_CTLR_ENABLE_G1,
  GICD_ICACTIVERnE,
  GICD_ICENABLERnE,
  GICD_ICFGRnE,
  GICD_IGROUPRnE,
  GICD_IPRIORITYRnE,
  GICD_IROUTERnE,
  ICC_CTLR_EOIMODE,
  ICC_IGRPEN1_EN,
  ICC_SGI1R_AFF1_SHIFT,
  ICC_SGI1R_HI_AFF3_SHIFT,
  ICC_SGI1R_HI_RS_SHIFT,
  ICC_SGI1R_SGI_ID_SHIFT,
  isSgi,
  isSpecialIntid,
  SPI_BASE,
} from '../../hw/gicv3/regs.js';
import { defineCost } from '../../sim/costs.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { declareStatistics } from '../../sim/statistics.js';
import { current, eret, op } from '../../sim/task.js';
import { handleDomainIrq } from './chip.js';
import type { Genirq } from './genirq.js';
import type { IrqChip, IrqchipState, IrqDesc, IrqTrigger } from './irqDesc.js';
import { C_GICD_ACTIVE, C_GICD_READ, C_GICD_WRITE } from './irqGicV2.js';

// The GICD/GICR MMIO accesses cost what the GICv2 distributor's do (same kind of device access); the CPU interface
// is system registers here.
const NO_DATA =
  'perf-anchors §4: no published figure; arch_gicv3.h does the sysreg access then a barrier (commit 6efb50923771); estimate';
export const C_ICC_IAR1 = defineCost('icc_iar1', 60, `ICC_IAR1_EL1 read + dsb; ${NO_DATA}`);
export const C_ICC_EOIR1 = defineCost('icc_eoir1', 40, `ICC_EOIR1_EL1 write + isb (priority drop); ${NO_DATA}`);
export const C_ICC_DIR = defineCost('icc_dir', 40, `ICC_DIR_EL1 write + isb (deactivate); ${NO_DATA}`);

/** GICD_INT_DEF_PRI (include/linux/irqchip/arm-gic-common.h). */
const GICD_INT_DEF_PRI = 0xa0;
const GICD_INT_DEF_PRI_X4 = 0xa0a0a0a0;
/** DEFAULT_PMR_VALUE (arch/arm64/include/asm/arch_gicv3.h): the PMR a kernel without pseudo-NMIs runs with. */
const DEFAULT_PMR_VALUE = 0xf0;

// The bitmap registers gic_poke_irq writes and gic_peek_irq reads (GICD_* for SPIs, GICR_* for SGIs/PPIs).
const ISENABLER = 0;
const ICENABLER = 1;
const ISPENDR = 2;
const ICPENDR = 3;
const ISACTIVER = 4;
const ICACTIVER = 5;
type BitmapReg =
  | typeof ISENABLER
  | typeof ICENABLER
  | typeof ISPENDR
  | typeof ICPENDR
  | typeof ISACTIVER
  | typeof ICACTIVER;

export class GicV3Chip implements IrqChip {
  readonly name = 'GICv3';
  readonly eoiIfHandled = false;
  /** Per-INTID object ids (distributor/redistributor state of that INTID) and per-CPU ids (the ICC interface). */
  readonly intidOid: Int32Array;
  readonly iccOid: Int32Array;
  /** Per CPU: IRQ exceptions whose ICC_IAR1_EL1 read returned 1023 (gic_handle_irq just returns); counted. */
  readonly spurious: Int32Array;

  constructor(readonly gic: Gicv3) {
    this.intidOid = gic.distributor.intidOid;
    this.iccOid = gic.distributor.iccOid;
    this.spurious = new Int32Array(gic.nrPes);
  }

  /** gic_irq_in_rdist: an SGI or PPI is reached in the current CPU's redistributor; an SPI in the distributor. */
  bank(d: IrqDesc): number | undefined {
    return d.hwirq < SPI_BASE ? current().cpu : undefined;
  }

  /** gic_mask_irq (GICD/GICR_ICENABLER), then, for a forwarded INTID, GICD_ICACTIVER (gic_eoimode1_mask_irq). */
  irqMask(d: IrqDesc): Frame {
    return new GicEoimode1MaskIrq(this, d);
  }

  /** gic_unmask_irq: GICD/GICR_ISENABLER. */
  irqUnmask(d: IrqDesc): Frame {
    return new GicPokeIrq(this, d, ISENABLER, undefined);
  }

  /** gic_eoimode1_eoi_irq: ICC_DIR_EL1, unless the INTID is forwarded to a vCPU (the guest deactivates it). */
  irqEoi(d: IrqDesc): Frame {
    return new GicEoimode1EoiIrq(this, d);
  }

  /** gic_retrigger: set the INTID pending (GICD/GICR_ISPENDR). */
  irqRetrigger(d: IrqDesc): Frame<boolean> {
    return new GicPokeIrq(this, d, ISPENDR, true);
  }

  /** gic_irq_get_irqchip_state: PENDING, ACTIVE and MASKED read ISPENDR/ISACTIVER/ISENABLER; no LINE_LEVEL. */
  irqGetIrqchipState(d: IrqDesc, which: IrqchipState): Frame<boolean | null> {
    return new GicIrqGetIrqchipState(this, d, which);
  }

  /** gic_irq_set_irqchip_state: I[SC]PENDR, I[SC]ACTIVER, I[CS]ENABLER; no LINE_LEVEL (-EINVAL). */
  irqSetIrqchipState(d: IrqDesc, which: IrqchipState, val: boolean): Frame<boolean> {
    let reg: BitmapReg;
    if (which === 'PENDING') reg = val ? ISPENDR : ICPENDR;
    else if (which === 'ACTIVE') reg = val ? ISACTIVER : ICACTIVER;
    else if (which === 'MASKED') reg = val ? ICENABLER : ISENABLER;
    else return new GicRefuse(false);
    return new GicPokeIrq(this, d, reg, true);
  }

  /** gic_set_type: SGIs are fixed edge; PPIs and SPIs take level-high or rising-edge (GICD/GICR_ICFGR). */
  irqSetType(d: IrqDesc, trigger: IrqTrigger): Frame<boolean> {
    if (isSgi(d.hwirq)) return new GicRefuse(trigger === 'edge');
    return new GicSetType(this, d, trigger);
  }

  /** gic_set_affinity: the first CPU of the mask, written into GICD_IROUTER<n> with the SPI masked meanwhile. */
  irqSetAffinity(d: IrqDesc, cpuMask: number, force: boolean): Frame<number> {
    return new GicSetAffinity(this, d, cpuMask, force);
  }

  /** gic_irq_set_vcpu_affinity: SGIs cannot be forwarded; otherwise set or clear IRQD_FORWARDED_TO_VCPU. */
  irqSetVcpuAffinity(d: IrqDesc, vcpu: unknown): boolean {
    if (isSgi(d.hwirq)) return false;
    d.forwardedToVcpu = vcpu != null;
    d.vcpuInfo = vcpu ?? null;
    return true;
  }

  /** The cost of one gic_poke_irq on `reg`: the active-state registers are the slow ones (Zyngier 9b4a3004). */
  costOf(reg: BitmapReg): number {
    return reg === ISACTIVER || reg === ICACTIVER ? C_GICD_ACTIVE : C_GICD_WRITE;
  }

  /** The write gic_poke_irq makes, on the distributor or on `bank`'s redistributor. */
  poke(intid: number, reg: BitmapReg, bank: number | undefined): void {
    const dist = this.gic.distributor;
    if (reg === ISENABLER) dist.enable(intid, bank);
    else if (reg === ICENABLER) dist.disable(intid, bank);
    else if (reg === ISPENDR) dist.setPending(intid, bank);
    else if (reg === ICPENDR) dist.clearPending(intid, bank);
    else dist.setActive(intid, reg === ISACTIVER, bank);
  }

  /**
   * gic_ipi_send_mask: walking the CPUs of `cpuMask` in order, one ICC_SGI1R_EL1 write per run of CPUs in the same
   * cluster (MPIDR with Aff0[3:0] cleared), its TargetList their Aff0[3:0] bits (gic_compute_target_list,
   * gic_send_sgi). Synchronous, as the GICv2 kick's GICD_SGIR write is: its cost is in the caller's step.
   */
  ipiSendMask(from: number, sgi: number, cpuMask: number): void {
    const aff = this.gic.distributor.affinity;
    let cluster = -1;
    let tlist = 0;
    for (let cpu = 0; cpu < aff.length; cpu++) {
      if ((cpuMask & (1 << cpu)) === 0) continue;
      const a = aff[cpu]!;
      if (a - (a % 16) !== cluster && tlist !== 0) {
        this.sendSgi(from, sgi, cluster, tlist);
        tlist = 0;
      }
      cluster = a - (a % 16);
      tlist |= 1 << (a % 16);
    }
    if (tlist !== 0) this.sendSgi(from, sgi, cluster, tlist);
  }

  /** gic_send_sgi: the ICC_SGI1R_EL1 value of one cluster (Aff3, Aff2, Aff1, RS = Aff0[7:4], TargetList, INTID). */
  private sendSgi(from: number, sgi: number, cluster: number, tlist: number): void {
    const lo = tlist | (((cluster >>> 8) & 0xff) << ICC_SGI1R_AFF1_SHIFT) | (sgi << ICC_SGI1R_SGI_ID_SHIFT);
    const hi =
      ((cluster >>> 16) & 0xff) |
      (((cluster >>> 4) & 0xf) << ICC_SGI1R_HI_RS_SHIFT) |
      (Math.floor(cluster / 0x1000000) << ICC_SGI1R_HI_AFF3_SHIFT);
    this.gic.cpu(from).writeSgi1r(lo >>> 0, hi >>> 0);
  }
}
declareStatistics(GicV3Chip, ['spurious']);

/** A callback the chip refuses or accepts without touching a register (it returns at once, no step). */
class GicRefuse extends Frame<boolean> {
  constructor(private readonly answer: boolean) {
    super();
  }
  protected step(): Boundary {
    return this.return_(this.answer);
  }
}

const PC_ACCESS = 0;
const PC_DONE = 1;

/**
 * gic_poke_irq: one write of the INTID's bit to a GICD/GICR bitmap register. It cannot fail; `answer` is what the
 * callback built on it returns (nothing for mask/unmask, success for gic_retrigger and gic_irq_set_irqchip_state).
 */
class GicPokeIrq<R> extends Frame<R> {
  constructor(
    private readonly chip: GicV3Chip,
    private readonly d: IrqDesc,
    private readonly reg: BitmapReg,
    private readonly answer: R,
  ) {
    super();
  }
  protected step(): Boundary {
    if (this.pc === PC_ACCESS) {
      this.pc = PC_DONE;
      return this.yield_(op(this.chip.costOf(this.reg), this.chip.intidOid[this.d.hwirq]!));
    }
    this.chip.poke(this.d.hwirq, this.reg, this.chip.bank(this.d));
    return this.return_(this.answer);
  }
}

const PC_MASK = 0;
const PC_MASKED = 1;
const PC_DEACTIVATED = 2;

/** gic_eoimode1_mask_irq: mask; a forwarded INTID is deactivated too, or it would stay active with nobody to EOI it. */
class GicEoimode1MaskIrq extends Frame {
  constructor(
    private readonly chip: GicV3Chip,
    private readonly d: IrqDesc,
  ) {
    super();
  }
  protected step(): Boundary {
    switch (this.pc) {
      case PC_MASK:
        this.pc = PC_MASKED;
        return this.call(new GicPokeIrq(this.chip, this.d, ICENABLER, undefined));
      case PC_MASKED: // if (irqd_is_forwarded_to_vcpu(d)) gic_poke_irq(d, GICD_ICACTIVER);
        if (!this.d.forwardedToVcpu) return this.return_(undefined);
        this.pc = PC_DEACTIVATED;
        return this.call(new GicPokeIrq(this.chip, this.d, ICACTIVER, undefined));
      default:
        return this.return_(undefined);
    }
  }
}

/** gic_eoimode1_eoi_irq: ICC_DIR_EL1 of the INTID (no source CPU with affinity routing), unless forwarded. */
class GicEoimode1EoiIrq extends Frame {
  constructor(
    private readonly chip: GicV3Chip,
    private readonly d: IrqDesc,
  ) {
    super();
  }
  protected step(): Boundary {
    const cpu = current().cpu;
    if (this.pc === PC_ACCESS) {
      if (this.d.forwardedToVcpu) return this.return_(undefined);
      this.pc = PC_DONE;
      return this.yield_(op(C_ICC_DIR, this.chip.iccOid[cpu]!, this.chip.intidOid[this.d.hwirq]!));
    }
    this.chip.gic.cpu(cpu).writeDir(this.d.hwirq);
    return this.return_(undefined);
  }
}

/** gic_irq_get_irqchip_state → gic_peek_irq of ISPENDR, ISACTIVER or ISENABLER (MASKED = not enabled). */
class GicIrqGetIrqchipState extends Frame<boolean | null> {
  constructor(
    private readonly chip: GicV3Chip,
    private readonly d: IrqDesc,
    private readonly which: IrqchipState,
  ) {
    super();
  }
  protected step(): Boundary {
    if (this.pc === PC_ACCESS) {
      if (this.which === 'LINE_LEVEL') return this.return_(null);
      this.pc = PC_DONE;
      return this.yield_(op(C_GICD_READ, this.chip.intidOid[this.d.hwirq]!));
    }
    const dist = this.chip.gic.distributor;
    const hw = this.d.hwirq;
    const bank = this.chip.bank(this.d);
    if (this.which === 'PENDING') return this.return_(dist.isPending(hw, bank));
    if (this.which === 'ACTIVE') return this.return_(dist.isActive(hw, bank));
    return this.return_(!dist.isEnabled(hw, bank));
  }
}

/** gic_set_type → gic_configure_irq: the INTID's two ICFGR bits. */
class GicSetType extends Frame<boolean> {
  constructor(
    private readonly chip: GicV3Chip,
    private readonly d: IrqDesc,
    private readonly trigger: IrqTrigger,
  ) {
    super();
  }
  protected step(): Boundary {
    if (this.pc === PC_ACCESS) {
      this.pc = PC_DONE;
      return this.yield_(op(C_GICD_WRITE, this.chip.intidOid[this.d.hwirq]!));
    }
    this.chip.gic.distributor.setConfig(this.d.hwirq, this.trigger, this.chip.bank(this.d));
    return this.return_(true);
  }
}

const PC_PEEK = 0;
const PC_PEEKED = 1;
const PC_ROUTE = 2;
const PC_ROUTED = 3;
const PC_UNMASKED = 4;

/**
 * gic_set_affinity: pick the CPU (the first of the mask: cpumask_first with force, else cpumask_any_and with the
 * online CPUs, which is the first too); refuse SGIs/PPIs (gic_irq_in_rdist); if the SPI is enabled, mask it around
 * the GICD_IROUTER write so it is never delivered half-routed, then unmask. Returns the CPU, or -1 (-EINVAL).
 */
class GicSetAffinity extends Frame<number> {
  private cpu = -1;
  private enabled = false;

  constructor(
    private readonly chip: GicV3Chip,
    private readonly d: IrqDesc,
    private readonly cpuMask: number,
    private readonly force: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const chip = this.chip;
    const oid = chip.intidOid[this.d.hwirq]!;
    switch (this.pc) {
      case PC_PEEK: {
        // every CPU of the model is online, so force and !force pick the same one
        const online = this.force ? this.cpuMask : this.cpuMask & chip.gic.distributor.peMask;
        if (online === 0 || this.d.hwirq < SPI_BASE) return this.return_(-1);
        this.cpu = 31 - Math.clz32(online & -online);
        this.pc = PC_PEEKED;
        return this.yield_(op(C_GICD_READ, oid)); // enabled = gic_peek_irq(d, GICD_ISENABLER)
      }
      case PC_PEEKED:
        this.enabled = chip.gic.distributor.isEnabled(this.d.hwirq);
        this.pc = PC_ROUTE;
        if (this.enabled) return this.call(new GicPokeIrq(chip, this.d, ICENABLER, undefined));
        return this.step(sent);
      case PC_ROUTE: // gic_write_irouter(gic_mpidr_to_affinity(cpu_logical_map(cpu)), GICD_IROUTER<n>)
        this.pc = PC_ROUTED;
        return this.yield_(op(C_GICD_WRITE, oid));
      case PC_ROUTED:
        chip.gic.distributor.setRoute(this.d.hwirq, this.cpu);
        if (!this.enabled) return this.return_(this.cpu);
        this.pc = PC_UNMASKED;
        return this.call(new GicPokeIrq(chip, this.d, ISENABLER, undefined));
      default:
        return this.return_(this.cpu);
    }
  }
}

/**
 * gic_dist_init + gic_cpu_init (gic_enable_redist, gic_cpu_config, gic_cpu_sys_reg_init) as Linux boots them at EL2:
 * SPIs Group 1 (the model has only Group 1), disabled, inactive, level, priority 0xa0, routed to the boot CPU (CPU 0);
 * then per CPU the redistributor woken (GICR_WAKER.ProcessorSleep = 0), its SGIs and PPIs disabled, inactive, at
 * priority 0xa0; ICC_PMR_EL1 = 0xf0, ICC_BPR1_EL1 = 0 (its minimum), ICC_CTLR_EL1.EOImode = 1 (drop only),
 * ICC_IGRPEN1_EL1 = 1. The distributor is enabled (EnableGrp1, ARE) between the two, as gic_dist_init does.
 * Extended SPIs (GIC_ESPI_NR of them, from GICD_TYPER.ESPI_range) get the same through their E-register blocks,
 * written as gic_dist_init writes them: ICENABLER/ICACTIVERnE, IGROUPRnE, ICFGRnE (level), IPRIORITYRnE, and, once
 * the distributor is enabled, IROUTERnE (the boot CPU's affinity).
 */
export function gicV3Init(gic: Gicv3): void {
  const dist = gic.distributor;
  const espiNr = dist.nrEspis;
  dist.setCtlr(0);
  for (let i = 0; i < espiNr; i += 32) {
    dist.write(GICD_ICENABLERnE + i / 8, 0xffffffff);
    dist.write(GICD_ICACTIVERnE + i / 8, 0xffffffff);
  }
  for (let i = 0; i < espiNr; i += 32) dist.write(GICD_IGROUPRnE + i / 8, 0xffffffff);
  for (let i = 0; i < espiNr; i += 16) dist.write(GICD_ICFGRnE + i / 4, 0);
  for (let i = 0; i < espiNr; i += 4) dist.write(GICD_IPRIORITYRnE + i, GICD_INT_DEF_PRI_X4);
  for (let intid = SPI_BASE; intid < Math.min(dist.nrIrqs, 1020); intid++) {
    dist.disable(intid);
    dist.setActive(intid, false);
    dist.setConfig(intid, 'level');
    dist.setPriority(intid, GICD_INT_DEF_PRI);
  }
  dist.setCtlr(GICD_CTLR_ENABLE_G1);
  for (let intid = SPI_BASE; intid < Math.min(dist.nrIrqs, 1020); intid++) dist.setRoute(intid, 0);
  const boot = dist.affinity[0]!; // gic_cpu_to_affinity(smp_processor_id()): CPU 0 boots
  for (let i = 0; i < espiNr; i++) {
    dist.write(GICD_IROUTERnE + i * 8, boot % 0x1000000);
    dist.write(GICD_IROUTERnE + i * 8 + 4, Math.floor(boot / 0x1000000));
  }
  for (let cpu = 0; cpu < gic.nrPes; cpu++) {
    dist.setProcessorSleep(cpu, false);
    for (let intid = 0; intid < SPI_BASE; intid++) {
      dist.setActive(intid, false, cpu);
      dist.disable(intid, cpu);
      dist.setPriority(intid, GICD_INT_DEF_PRI, cpu);
    }
    const icc = gic.cpu(cpu);
    icc.setPmr(DEFAULT_PMR_VALUE);
    icc.setBpr1(0);
    icc.setCtlr(ICC_CTLR_EOIMODE);
    icc.setIgrpen1(ICC_IGRPEN1_EN);
  }
}

const PC_ENTRY = 0;
const PC_ACKED = 1;
const PC_DROPPED = 2;
const PC_UNEXPECTED = 3;
const PC_HANDLED = 4;

/**
 * gic_handle_irq, the IRQ vector of a host CPU: one ICC_IAR1_EL1 read per exception (unlike the GICv2 driver, no
 * loop: a still-pending interrupt takes the next exception). A special INTID (1020-1023) returns at once; otherwise
 * gic_complete_ack writes ICC_EOIR1_EL1 (priority drop) and generic_handle_domain_irq runs the flow; an INTID with no
 * mapping is WARNed about and deactivated (gic_deactivate_unhandled: ICC_DIR_EL1). Then the exception returns.
 */
export class GicHandleIrq extends Frame {
  private irqnr = 0;

  constructor(
    private readonly g: Genirq,
    private readonly chip: GicV3Chip,
    private readonly cpu: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const chip = this.chip;
    const cpu = this.cpu;
    const icc = chip.gic.cpu(cpu);
    switch (this.pc) {
      case PC_ENTRY: // irqnr = gic_read_iar()
        this.pc = PC_ACKED;
        return this.yield_(op(C_ICC_IAR1, chip.iccOid[cpu]!));
      case PC_ACKED: {
        const irqnr = icc.readIar1();
        this.irqnr = irqnr;
        this.g.trace?.gicIar?.(cpu, irqnr);
        if (isSpecialIntid(irqnr)) {
          chip.spurious[cpu]!++;
          this.pc = PC_ENTRY;
          return this.yield_(eret());
        }
        this.pc = PC_DROPPED;
        return this.yield_(op(C_ICC_EOIR1, chip.iccOid[cpu]!, chip.intidOid[irqnr]!));
      }
      case PC_DROPPED: {
        const irqnr = this.irqnr;
        icc.writeEoir1(irqnr);
        this.g.trace?.gicEoir?.(cpu, irqnr);
        const desc = this.g.domain.findByHwirq(irqnr);
        if (desc === undefined) {
          this.g.badIrqs.push(`cpu${cpu}: unexpected IRQ, INTID ${irqnr}`);
          this.pc = PC_UNEXPECTED;
          return this.yield_(op(C_ICC_DIR, chip.iccOid[cpu]!, chip.intidOid[irqnr]!));
        }
        this.pc = PC_HANDLED;
        return this.call(handleDomainIrq(this.g, desc));
      }
      case PC_UNEXPECTED: // gic_deactivate_unhandled
        icc.writeDir(this.irqnr);
        this.pc = PC_ENTRY;
        return this.yield_(eret());
      default: // PC_HANDLED
        this.pc = PC_ENTRY;
        return this.yield_(eret());
    }
  }
}
