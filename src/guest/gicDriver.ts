/**
 * The guest's GICv2 driver, after drivers/irqchip/irq-gic.c as it runs inside a KVM guest: the distributor (GICD) is
 * emulated by KVM, so every GICD access is a data abort the guest takes to the hypervisor; the CPU interface is the
 * GICV of the physical CPU the vCPU is loaded on (stage-2 mapped at the guest's GICC address), so IAR/EOIR/DIR/PMR/
 * CTLR accesses are direct register accesses with a cost and no exit.
 *
 * Trap protocol (what a KVM run loop must implement to run this guest):
 * - GICD access: the guest fills `g.mmio` ({isWrite, len 1|4, data}) and yields `trap(ESR_ELx_EC_DABT_LOW, ipa)`
 *   with ipa = gicdBase + offset. A write needs nothing back; for a read the hypervisor sets
 *   `g.trapTask.resumeValue` to the value (a number) before re-entering.
 * - WFI: `trap(ESR_ELx_EC_WFx)` (arg 0); the guest continues after re-entry.
 */

import { ESR_ELx_EC_DABT_LOW } from '../hw/esr.js';
import {
  GIC_CPU_CTRL_EOImodeNS,
  GIC_DIST_CONFIG,
  GIC_DIST_CTR,
  GIC_DIST_CTRL,
  GIC_DIST_ENABLE_CLEAR,
  GIC_DIST_ENABLE_SET,
  GIC_DIST_PRI,
  GIC_DIST_TARGET,
  GICC_DIS_BYPASS_MASK,
  GICC_ENABLE,
  GICC_IAR_INT_ID_MASK,
  GICC_INT_PRI_THRESHOLD,
  GICD_DISABLE,
  GICD_ENABLE,
  GICD_TYPER_ITLINES_MASK,
  isSpi,
} from '../hw/gic/regs.js';
import type { GicVirtualInterface } from '../hw/gic/virtualInterface.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { declareStatistics } from '../sim/statistics.js';
import { type Op, op, trap } from '../sim/task.js';
import type { ProbeObject } from './guestProbe.js';
import type { GuestTraceHooks } from './guestTrace.js';
import { GuestIrqHandlerTable } from './irqHandlerTable.js';

// ---- costs ------------------------------------------------------------------------------------------------------

const VIRQ_COMPLETION =
  'ISCA 2016 Table II "Virtual IRQ Completion" = 71 cyc for ack + EOI on the GICV (X-Gene) [R, check against the PDF] (perf-anchors §2)';
export const C_GUEST_GICV_IAR = defineCost('guest_gicv_iar', 36, `GICV_IAR read: 36 of the 71 cyc; ${VIRQ_COMPLETION}`);
export const C_GUEST_GICV_EOIR = defineCost(
  'guest_gicv_eoir',
  35,
  `GICV_EOIR write: 35 of the 71 cyc; ${VIRQ_COMPLETION}`,
);
export const C_GUEST_GICV_DIR = defineCost(
  'guest_gicv_dir',
  35,
  `GICV_DIR write; estimate: taken equal to the EOIR half of ${VIRQ_COMPLETION}`,
);
export const C_GUEST_GICV_CFG = defineCost(
  'guest_gicv_cfg',
  35,
  'GICV_CTLR/PMR access at boot; estimate: one GICV register access, as the EOIR half of ISCA 2016 Table II 71 cyc',
);
export const C_GUEST_GICD_ACCESS = defineCost(
  'guest_gicd_access',
  5,
  'the guest store/load to the GICD page that faults (the exit and emulation are charged by the engine and KVM); estimate',
);

// ---- types ------------------------------------------------------------------------------------------------------

/** The guest's view of the GIC CPU interfaces: the GICV of a physical CPU (a `Gic` satisfies it). */
export interface GicvProvider {
  vif(cpu: number): GicVirtualInterface;
}

/** A guest interrupt handler (what request_irq registers): one call per acknowledged INTID. */
export interface GuestIrqHandler {
  readonly name: string;
  /** Runs in the guest IRQ vector of vCPU `vcpu`; returns whether the interrupt was its (IRQ_HANDLED). */
  handle(g: GuestCpu, vcpu: number): Generator<Op, boolean, unknown> | Frame<boolean>;
}

export type GuestTrigger = 'level' | 'edge';

export type GuestEoiPolicy = 'always' | 'never' | 'late';

/** Most INTIDs one exception can hold active at once: one per GICv2 virtual preemption level (32). */
const MAX_NESTED = 32;

/**
 * Virtual IRQ completion probe (ISCA 2016 "Virtual IRQ Completion", ASPLOS 2014 "EOI+ACK"): called once per
 * acknowledged INTID with the cycles of its GICV_IAR read plus its completion — the GICV_EOIR write, and with
 * EOImode 1 also the GICV_DIR write. Each access is one step; its cycles are measured as the step's duration (the
 * CPU's readyAt − now while it runs). The handler body in between and the final IAR read that finds no further
 * interrupt (1023) are not part of it.
 */
export type VirqCompletionProbe = (cycles: number, vcpu: number, intid: number) => void;

/** An SPI the guest configures at boot (a device line from the device tree). */
export interface GuestSpiConfig {
  intid: number;
  trigger: GuestTrigger;
  /** vCPU whose CPU interface the SPI targets at boot (ITARGETSR); default 0. */
  target?: number;
  /** GICD_IPRIORITYR byte written at boot; default the driver's priority (0xa0). */
  priority?: number;
}

export interface GuestGicDriverOptions {
  engine: Engine;
  gic: GicvProvider;
  /** Number of vCPUs (CPU interface i ↔ vCPU i, ITARGETSR bit i, as KVM's vgic numbers them). */
  nrVcpus: number;
  /** IPA of the emulated distributor (QEMU virt: 0x08000000). */
  gicdBase?: number;
  /** 0: EOIR drops priority and deactivates; 1: EOIR drops priority, DIR deactivates after the handler. */
  eoiMode?: 0 | 1;
  /** Priority written to each configured SPI (irq-gic.c GICD_INT_DEF_PRI = 0xa0). */
  priority?: number;
  /** GICV_PMR written by cpuInit (irq-gic.c GICC_INT_PRI_THRESHOLD = 0xf0). */
  pmr?: number;
  /** Per acknowledged interrupt: IAR + EOIR (+ DIR) cycles. */
  onCompletion?: ProbeObject<'onVirqCompletion', VirqCompletionProbe>;
  /**
   * 'never': a faulty guest that acknowledges and handles each interrupt but never deactivates it — EOImode 0: no
   * GICV_EOIR (the running priority stays raised, so the vCPU takes no further interrupt of that priority);
   * EOImode 1: the priority-drop EOIR but no GICV_DIR (the INTID stays active). 'late': completion waits until the
   * exception has acknowledged everything the GICV offers (each one preempting the last, as the running priority
   * rises), then EOIR from the last acknowledged to the first (the highest priority first, as priority drop
   * requires) and, in EOImode 1, DIR in acknowledgement order — the sequence of the arm64 vgic_irq selftest's
   * test_inject_preemption. Default 'always'.
   */
  eoi?: GuestEoiPolicy;
}

/** What the guest kernel needs of its GIC driver: irq-gic.c (GuestGicDriver) or irq-gic-v3.c (GuestGicV3Driver). */
export interface GuestIrqchip {
  readonly gicdBase: number;
  readonly cpuStats: GuestGicCpuStats[];
  readonly handledByIntid: Map<number, number>;
  /** kstat_irqs_cpu: interrupts of `intid` (below 1020) its handler handled on `vcpu`. */
  kstatIrqsCpu(intid: number, vcpu: number): number;
  /** INTIDs the distributor reports (from GICD_TYPER at boot; 0 before). */
  readonly nrIrqs: number;
  /** The guest_eoi tracepoint (guestTrace.ts), null when untraced. */
  trace: GuestTraceHooks | null;
  registerHandler(intid: number, handler: GuestIrqHandler): void;
  distInit(g: GuestCpu, spis: readonly GuestSpiConfig[]): Frame;
  cpuInit(g: GuestCpu, vcpu: number): Frame;
  setAffinity(g: GuestCpu, intid: number, vcpu: number): Frame<unknown>;
  handleIrq(g: GuestCpu, vcpu: number): Frame;
}

/** Per-vCPU counters of the IRQ vector: statistics (read by reports, never by the IRQ path). */
export class GuestGicCpuStats {
  /** Virtual IRQ exceptions taken. */
  irqs = 0;
  /** Exceptions whose first IAR read found nothing (1023) or an unacknowledgeable Group 1 IRQ (1022). */
  spurious = 0;
  /** IAR reads returning 1022 (Group 1 with AckCtl = 0). */
  iar1022 = 0;
  /** INTIDs acknowledged with no registered handler, or whose handler returned IRQ_NONE. */
  unhandled = 0;
  /** INTIDs acknowledged and left active (an `eoi: 'never'` guest). */
  leftActive = 0;
  iarReads = 0;
  eoirWrites = 0;
  dirWrites = 0;
}
declareStatistics(GuestGicCpuStats);

/** QEMU virt GICv2 distributor base. */
export const VIRT_GICD_BASE = 0x08000000;
/** QEMU virt GICv2 CPU interface base (where KVM maps the GICV). */
export const VIRT_GICC_BASE = 0x08010000;
/** irq-gic.c GICD_INT_DEF_PRI. */
export const GICD_INT_DEF_PRI = 0xa0;

// ---- trapped distributor accesses --------------------------------------------------------------------------------

/** GicdAccess: the guest's load or store to the GICD page (the driver's accesses start here). */
const GICD_PC_ACCESS = 0;
/** The access faults: a data abort with the access in g.mmio. */
const GICD_PC_TRAP = 1;
/** Re-entered after KVM emulated the access (a read resumes with the value). */
const GICD_PC_EMULATED = 2;

/** A trapped GICD access (a frame: one data-driven class for reads and writes). */
class GicdAccess extends Frame<number> {
  constructor(
    /** The driver whose access step comes first, or null for the bare trap. */
    private readonly driver: GuestGicDriver | null,
    private readonly g: GuestCpu,
    private readonly ipa: number,
    private readonly len: 1 | 4,
    private readonly isWrite: boolean,
    private readonly data: number,
  ) {
    super();
    this.pc = driver === null ? GICD_PC_TRAP : GICD_PC_ACCESS;
  }

  protected step(sent: unknown): Boundary {
    const g = this.g;
    switch (this.pc) {
      case GICD_PC_ACCESS:
        this.pc = GICD_PC_TRAP;
        return this.yield_(op(C_GUEST_GICD_ACCESS, this.driver!.cpuOid(g)));
      case GICD_PC_TRAP:
        this.pc = GICD_PC_EMULATED;
        g.mmio.isWrite = this.isWrite;
        g.mmio.len = this.len;
        g.mmio.data = this.isWrite ? (this.len === 1 ? this.data & 0xff : this.data) >>> 0 : 0;
        return this.yield_(trap(ESR_ELx_EC_DABT_LOW, this.ipa));
      default:
        if (this.isWrite) return this.return_(0);
        if (typeof sent !== 'number') {
          throw new ModelError(
            `${g.name}: GICD read at IPA 0x${this.ipa.toString(16)} resumed without a value (resumeValue)`,
          );
        }
        return this.return_(sent >>> 0);
    }
  }
}

/** A guest write to the emulated GICD: a data abort with the access in g.mmio. */
export function gicdWrite(g: GuestCpu, ipa: number, len: 1 | 4, value: number): Frame<number> {
  return new GicdAccess(null, g, ipa, len, true, value);
}

/** A guest read of the emulated GICD: the hypervisor hands the value back through trapTask.resumeValue. */
export function gicdRead(g: GuestCpu, ipa: number, len: 1 | 4): Frame<number> {
  return new GicdAccess(null, g, ipa, len, false, 0);
}

/** GICV registers a GicvAccess reads or writes (stage-2 mapped: no trap). */
const GICV_IAR = 0;
const GICV_EOIR = 1;
const GICV_DIR = 2;
const GICV_READ = 3;
const GICV_WRITE = 4;
const GICV_COST = [C_GUEST_GICV_IAR, C_GUEST_GICV_EOIR, C_GUEST_GICV_DIR, C_GUEST_GICV_CFG, C_GUEST_GICV_CFG];

/** One GICV access: its step, then the register access (a frame: one data-driven class for every register). */
class GicvAccess extends Frame<number> {
  constructor(
    private readonly driver: GuestGicDriver,
    private readonly g: GuestCpu,
    private readonly vcpu: number,
    private readonly reg: number,
    /** EOIR/DIR: the IAR value; GICV_READ/GICV_WRITE: the register offset. */
    private readonly arg: number,
    private readonly data: number,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(op(GICV_COST[this.reg]!, this.driver.cpuOid(this.g)));
    }
    return this.return_(this.driver.gicvAccess(this.g, this.vcpu, this.reg, this.arg, this.data));
  }
}

// ---- the driver ---------------------------------------------------------------------------------------------------

export class GuestGicDriver implements GuestIrqchip {
  readonly gicdBase: number;
  readonly eoiMode: 0 | 1;
  readonly nrVcpus: number;
  readonly priority: number;
  readonly eoi: GuestEoiPolicy;
  readonly pmr: number;
  trace: GuestTraceHooks | null = null;
  readonly cpuStats: GuestGicCpuStats[] = [];
  /** Handled interrupts per INTID (handler returned IRQ_HANDLED). */
  get handledByIntid(): Map<number, number> {
    return this.handlers.handledByIntid();
  }
  /** INTIDs the distributor reports (from GICD_TYPER at boot; 0 before). */
  nrIrqs = 0;
  private readonly engine: Engine;
  private readonly gic: GicvProvider;
  private readonly handlers: GuestIrqHandlerTable;
  readonly onCompletion: ProbeObject<'onVirqCompletion', VirqCompletionProbe> | undefined;
  /** eoi 'late': per vCPU, the IAR values acknowledged in the exception being handled. */
  readonly lateAcks: Uint32Array[] = [];

  constructor(opts: GuestGicDriverOptions) {
    if (!Number.isInteger(opts.nrVcpus) || opts.nrVcpus < 1 || opts.nrVcpus > 8) {
      throw new ModelError(`a GICv2 guest has 1..8 vCPUs, got ${opts.nrVcpus}`);
    }
    this.engine = opts.engine;
    this.gic = opts.gic;
    this.nrVcpus = opts.nrVcpus;
    this.handlers = new GuestIrqHandlerTable(opts.nrVcpus);
    this.gicdBase = opts.gicdBase ?? VIRT_GICD_BASE;
    this.eoiMode = opts.eoiMode ?? 0;
    this.priority = opts.priority ?? GICD_INT_DEF_PRI;
    this.onCompletion = opts.onCompletion;
    this.eoi = opts.eoi ?? 'always';
    this.pmr = opts.pmr ?? GICC_INT_PRI_THRESHOLD;
    checkPriority(this.priority);
    checkPriority(this.pmr);
    for (let i = 0; i < opts.nrVcpus; i++) {
      this.lateAcks.push(new Uint32Array(MAX_NESTED));
      this.cpuStats.push(new GuestGicCpuStats());
    }
  }

  /** request_irq: the handler the vector dispatches INTID `intid` to. */
  registerHandler(intid: number, handler: GuestIrqHandler): void {
    if (!Number.isInteger(intid) || intid < 0 || intid >= 1020) throw new ModelError(`bad guest INTID ${intid}`);
    this.handlers.register(intid, handler);
  }

  handlerOf(intid: number): GuestIrqHandler | undefined {
    return this.handlers.handlerOf(intid);
  }

  countHandled(intid: number, vcpu: number): void {
    this.handlers.countHandled(intid, vcpu);
  }

  kstatIrqsCpu(intid: number, vcpu: number): number {
    return this.handlers.kstatIrqsCpu(intid, vcpu);
  }

  /** The GICV the guest reaches: the virtual interface of the physical CPU the vCPU is loaded on. */
  private gicv(g: GuestCpu): GicVirtualInterface {
    if (g.loadedOn < 0) throw new ModelError(`${g.name}: GICV access while not loaded on a CPU`);
    return this.gic.vif(g.loadedOn);
  }

  /** oid of the CPU interface the next step touches (the physical CPU's, which owns its GICV). */
  cpuOid(g: GuestCpu): number {
    return g.loadedOn >= 0 ? this.engine.cpu(g.loadedOn).oid : -1;
  }

  /** A trapped write of the GICD register at `offset` (KVM emulates it). */
  write(g: GuestCpu, offset: number, len: 1 | 4, value: number): Frame<number> {
    return new GicdAccess(this, g, this.gicdBase + offset, len, true, value);
  }

  /** A trapped read of the GICD register at `offset`. */
  read(g: GuestCpu, offset: number, len: 1 | 4): Frame<number> {
    return new GicdAccess(this, g, this.gicdBase + offset, len, false, 0);
  }

  /**
   * gic_dist_init + gic_configure_irq + request_irq's enable, for the SPIs of the passed-through devices only:
   * CTLR = 0; TYPER read; per SPI: ICENABLER, ICFGR read-modify-write, IPRIORITYR byte, ITARGETSR byte; then
   * ISENABLER (one write per 32-INTID register, ascending); CTLR = 1.
   */
  distInit(g: GuestCpu, spis: readonly GuestSpiConfig[]): Frame {
    return new GicDistInit(this, g, spis);
  }

  /**
   * gic_cpu_init / gic_cpu_if_up on the GICV: PMR (0xf0 unless configured), then CTLR = bypass bits | Enable (| EOImodeNS with
   * EOImode 1) after reading CTLR for the bypass bits, as irq-gic.c does.
   */
  cpuInit(g: GuestCpu): Frame {
    return new GicCpuInit(this, g);
  }

  /** GICV_PMR, GICV_CTLR of gic_cpu_init (GicCpuInit). */
  setPmr(g: GuestCpu): void {
    this.gicv(g).setPmr(this.pmr);
  }

  ctlrBypass(g: GuestCpu): number {
    return this.gicv(g).ctlrValue & GICC_DIS_BYPASS_MASK;
  }

  setCtlr(g: GuestCpu, bypass: number): void {
    this.gicv(g).setCtlr(bypass | GICC_ENABLE | (this.eoiMode === 1 ? GIC_CPU_CTRL_EOImodeNS : 0));
  }

  /**
   * gic_set_affinity: a byte write of ITARGETSR for `intid` naming vCPU `vcpu`'s CPU interface (a trapped access;
   * KVM's vgic_mmio_write_target moves the vIRQ).
   */
  setAffinity(g: GuestCpu, intid: number, vcpu: number): Frame<number> {
    if (!isSpi(intid)) throw new ModelError(`gic_set_affinity: INTID ${intid} is not an SPI`);
    return this.write(g, GIC_DIST_TARGET + intid, 1, 1 << this.checkVcpu(vcpu));
  }

  /**
   * gic_handle_irq for one virtual IRQ exception on vCPU `vcpu`: acknowledge through GICV_IAR until it returns a
   * special INTID (≥ 1020). EOImode 0: handler, then EOIR (drop + deactivate). EOImode 1: EOIR first (priority drop,
   * irq-gic.c gic_handle_irq), handler, then DIR (gic_eoimode1_eoi_irq). An INTID without a handler is still
   * completed, so it cannot stay active, and counted as unhandled. `eoi` 'never' and 'late': see the option.
   */
  handleIrq(g: GuestCpu, vcpu: number): Frame {
    return new GicHandleIrq(this, g, vcpu);
  }

  /** A GICV_IAR read (acknowledge): the IAR value, INTID ≥ 1020 when nothing can be acknowledged. */
  ack(g: GuestCpu, vcpu: number): Frame<number> {
    return new GicvAccess(this, g, vcpu, GICV_IAR, 0, 0);
  }

  /** A GICV_EOIR write: priority drop, and in EOImode 0 deactivation. */
  eoir(g: GuestCpu, vcpu: number, irqstat: number): Frame<number> {
    return new GicvAccess(this, g, vcpu, GICV_EOIR, irqstat, 0);
  }

  /** A GICV_DIR write: deactivation (EOImode 1), from whichever vCPU runs it. */
  dir(g: GuestCpu, vcpu: number, irqstat: number): Frame<number> {
    return new GicvAccess(this, g, vcpu, GICV_DIR, irqstat, 0);
  }

  /** A GICV register write other than EOIR/DIR (PMR, APR, CTLR): the register at `offset` of the CPU interface. */
  gicvWrite(g: GuestCpu, offset: number, value: number): Frame<number> {
    return new GicvAccess(this, g, -1, GICV_WRITE, offset, value);
  }

  /** A GICV register read (RPR, HPPIR, APR, PMR, CTLR). */
  gicvRead(g: GuestCpu, offset: number): Frame<number> {
    return new GicvAccess(this, g, -1, GICV_READ, offset, 0);
  }

  /** The register access after a GICV step (GicvAccess, GicHandleIrq): what a read returns, 0 for a write. */
  gicvAccess(g: GuestCpu, vcpu: number, reg: number, arg: number, data: number): number {
    const vif = this.gicv(g);
    switch (reg) {
      case GICV_IAR:
        this.cpuStats[vcpu]!.iarReads++;
        return vif.readIar();
      case GICV_EOIR:
        vif.writeEoir(arg);
        this.cpuStats[vcpu]!.eoirWrites++;
        return 0;
      case GICV_DIR:
        vif.writeDir(arg);
        this.cpuStats[vcpu]!.dirWrites++;
        return 0;
      case GICV_READ:
        return vif.read(arg);
      default:
        vif.write(arg, data);
        return 0;
    }
  }

  /** Cycles of the step now running on the vCPU's physical CPU (its readyAt − now). */
  stepCycles(g: GuestCpu): number {
    return g.loadedOn >= 0 ? this.engine.cpu(g.loadedOn).readyAt - this.engine.now : 0;
  }

  checkVcpu(vcpu: number): number {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.nrVcpus) {
      throw new ModelError(`no vCPU ${vcpu} (the guest has ${this.nrVcpus})`);
    }
    return vcpu;
  }
}

function checkPriority(p: number): number {
  if (!Number.isInteger(p) || p < 0 || p > 0xff) throw new ModelError(`bad GIC priority ${p} (0..255)`);
  return p;
}

/** gic_handle_irq: the GICV_IAR read (irqnr = gic_read_iar()). */
const PC_IAR = 0;
/** The IAR value is back. */
const PC_ACKED = 1;
/** EOImode 1: the priority-drop EOIR before the handler is done. */
const PC_DROPPED = 2;
/** generic_handle_domain_irq returned (the handler's IRQ_HANDLED or IRQ_NONE). */
const PC_HANDLED = 3;
/** The EOIR (EOImode 0) or DIR (EOImode 1) that completes the INTID is done. */
const PC_COMPLETED = 4;
/** eoi 'late': the EOIRs from the last acknowledged to the first. */
const PC_LATE_EOIR = 5;
/** eoi 'late', EOImode 1: the DIRs in acknowledgement order. */
const PC_LATE_DIR = 6;

/** irq-gic.c gic_handle_irq on the GICV, as a frame (see GuestGicDriver.handleIrq). */
class GicHandleIrq extends Frame {
  /** INTIDs acknowledged in this exception. */
  private taken = 0;
  private irqstat = 0;
  private intid = 0;
  /** Cycles of this INTID's IAR read and completion so far (VirqCompletionProbe). */
  private completion = 0;
  /** eoi 'late': index of the next EOIR or DIR. */
  private i = 0;

  constructor(
    private readonly d: GuestGicDriver,
    private readonly g: GuestCpu,
    private readonly vcpu: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const d = this.d;
    switch (this.pc) {
      case PC_IAR:
        d.cpuStats[this.vcpu]!.irqs++;
        return this.gicvStep(PC_ACKED, GICV_IAR);
      case PC_ACKED:
        return this.acked();
      case PC_DROPPED:
        d.gicvAccess(this.g, this.vcpu, GICV_EOIR, this.irqstat, 0);
        this.completion += d.stepCycles(this.g);
        return this.callHandler();
      case PC_HANDLED:
        return this.handled(sent === true);
      case PC_COMPLETED:
        d.gicvAccess(this.g, this.vcpu, d.eoiMode === 1 ? GICV_DIR : GICV_EOIR, this.irqstat, 0);
        d.onCompletion?.onVirqCompletion(this.completion + d.stepCycles(this.g), this.vcpu, this.intid);
        return this.gicvStep(PC_ACKED, GICV_IAR);
      case PC_LATE_EOIR:
        d.gicvAccess(this.g, this.vcpu, GICV_EOIR, d.lateAcks[this.vcpu]![this.i]!, 0);
        this.i--;
        return this.lateEoir();
      default: // PC_LATE_DIR
        d.gicvAccess(this.g, this.vcpu, GICV_DIR, d.lateAcks[this.vcpu]![this.i]!, 0);
        this.i++;
        return this.lateDir();
    }
  }

  /** A GICV access's step; the access itself runs when the step resumes at `pc`. */
  private gicvStep(pc: number, reg: number): Boundary {
    this.pc = pc;
    return this.yield_(op(GICV_COST[reg]!, this.d.cpuOid(this.g)));
  }

  private acked(): Boundary {
    const d = this.d;
    const st = d.cpuStats[this.vcpu]!;
    const irqstat = d.gicvAccess(this.g, this.vcpu, GICV_IAR, 0, 0);
    const intid = irqstat & GICC_IAR_INT_ID_MASK;
    if (intid >= 1020) {
      if (intid === 1022) st.iar1022++;
      if (this.taken === 0) st.spurious++;
      if (d.eoi !== 'late') return this.return_(undefined);
      this.i = this.taken - 1;
      return this.lateEoir();
    }
    if (d.eoi === 'late') {
      if (this.taken === MAX_NESTED)
        throw new ModelError(`${this.g.name}: more than ${MAX_NESTED} nested acknowledges`);
      d.lateAcks[this.vcpu]![this.taken] = irqstat;
    }
    this.taken++;
    this.irqstat = irqstat;
    this.intid = intid;
    this.completion = d.stepCycles(this.g);
    if (d.eoiMode === 1 && d.eoi !== 'late') return this.gicvStep(PC_DROPPED, GICV_EOIR);
    return this.callHandler();
  }

  private callHandler(): Boundary {
    const h = this.d.handlerOf(this.intid);
    if (h === undefined) return this.handled(false);
    this.pc = PC_HANDLED;
    return this.call(h.handle(this.g, this.vcpu));
  }

  private handled(handled: boolean): Boundary {
    const d = this.d;
    if (handled) d.countHandled(this.intid, this.vcpu);
    else d.cpuStats[this.vcpu]!.unhandled++;
    if (d.eoi !== 'always') {
      if (d.eoi !== 'late') d.cpuStats[this.vcpu]!.leftActive++;
      return this.gicvStep(PC_ACKED, GICV_IAR);
    }
    d.trace?.eoi(this.vcpu, this.intid);
    return this.gicvStep(PC_COMPLETED, d.eoiMode === 1 ? GICV_DIR : GICV_EOIR);
  }

  /** eoi 'late': EOIR from the last acknowledged to the first (the highest priority first, as priority drop requires). */
  private lateEoir(): Boundary {
    const d = this.d;
    if (this.i >= 0) {
      if (d.eoiMode === 0) d.trace?.eoi(this.vcpu, d.lateAcks[this.vcpu]![this.i]! & GICC_IAR_INT_ID_MASK);
      return this.gicvStep(PC_LATE_EOIR, GICV_EOIR);
    }
    this.i = 0;
    return this.lateDir();
  }

  /** eoi 'late', EOImode 1: DIR in acknowledgement order. */
  private lateDir(): Boundary {
    const d = this.d;
    if (d.eoiMode !== 1 || this.i >= this.taken) return this.return_(undefined);
    d.trace?.eoi(this.vcpu, d.lateAcks[this.vcpu]![this.i]! & GICC_IAR_INT_ID_MASK);
    return this.gicvStep(PC_LATE_DIR, GICV_DIR);
  }
}

/** gic_dist_init: GICD_CTLR = 0. */
const D_DISABLE = 0;
/** GICD_TYPER read. */
const D_TYPER = 1;
/** GICD_TYPER is back: the SPIs, one by one. */
const D_SPIS = 2;
/** gic_configure_irq: ICFGR read. */
const D_CFG_READ = 3;
/** ICFGR write (bit 2F+1 = edge). */
const D_CFG_WRITE = 4;
/** IPRIORITYR byte. */
const D_PRI = 5;
/** ITARGETSR byte. */
const D_TARGET = 6;
/** This SPI is configured. */
const D_SPI_DONE = 7;
/** ISENABLER, one write per 32-INTID register. */
const D_ENABLE = 8;
/** GICD_CTLR = 1 written. */
const D_DONE = 9;

/**
 * gic_dist_init + gic_configure_irq + request_irq's enable, for the SPIs of the passed-through devices only:
 * CTLR = 0; TYPER read; per SPI: ICENABLER, ICFGR read-modify-write, IPRIORITYR byte, ITARGETSR byte; then
 * ISENABLER (one write per 32-INTID register, ascending); CTLR = 1. A frame; each access is a GicdAccess.
 */
class GicDistInit extends Frame {
  private sorted: GuestSpiConfig[] = [];
  /** The next SPI (configuration, then enable). */
  private i = 0;

  constructor(
    private readonly d: GuestGicDriver,
    private readonly g: GuestCpu,
    private readonly spis: readonly GuestSpiConfig[],
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const d = this.d;
    const g = this.g;
    switch (this.pc) {
      case D_DISABLE:
        this.pc = D_TYPER;
        return this.call(d.write(g, GIC_DIST_CTRL, 4, GICD_DISABLE));
      case D_TYPER:
        this.pc = D_SPIS;
        return this.call(d.read(g, GIC_DIST_CTR, 4));
      case D_SPIS:
        d.nrIrqs = (((sent as number) & GICD_TYPER_ITLINES_MASK) + 1) * 32;
        this.sorted = [...this.spis].sort((a, b) => a.intid - b.intid);
        return this.nextSpi();
      case D_CFG_READ: {
        const s = this.sorted[this.i]!;
        this.pc = D_CFG_WRITE;
        return this.call(d.read(g, GIC_DIST_CONFIG + (s.intid >> 4) * 4, 4));
      }
      case D_CFG_WRITE: {
        // irq-gic-common.c gic_configure_irq: ICFGR read-modify-write, bit 2F+1 = edge
        const s = this.sorted[this.i]!;
        const cfg = sent as number;
        const cfgBit = 2 << ((s.intid & 15) * 2);
        this.pc = D_PRI;
        const v = s.trigger === 'edge' ? cfg | cfgBit : cfg & ~cfgBit;
        return this.call(d.write(g, GIC_DIST_CONFIG + (s.intid >> 4) * 4, 4, v));
      }
      case D_PRI: {
        const s = this.sorted[this.i]!;
        this.pc = D_TARGET;
        return this.call(d.write(g, GIC_DIST_PRI + s.intid, 1, checkPriority(s.priority ?? d.priority)));
      }
      case D_TARGET: {
        const s = this.sorted[this.i]!;
        this.pc = D_SPI_DONE;
        return this.call(d.write(g, GIC_DIST_TARGET + s.intid, 1, 1 << d.checkVcpu(s.target ?? 0)));
      }
      case D_SPI_DONE:
        this.i++;
        return this.nextSpi();
      case D_ENABLE:
        return this.enable();
      default:
        return this.return_(undefined);
    }
  }

  /** The next SPI's ICENABLER write, or the enables once all are configured. */
  private nextSpi(): Boundary {
    const d = this.d;
    if (this.i === this.sorted.length) {
      this.i = 0;
      return this.enable();
    }
    const s = this.sorted[this.i]!;
    if (!isSpi(s.intid) || s.intid >= d.nrIrqs) {
      throw new ModelError(`guest SPI ${s.intid} is not an SPI of this distributor (${d.nrIrqs} INTIDs)`);
    }
    this.pc = D_CFG_READ;
    return this.call(d.write(this.g, GIC_DIST_ENABLE_CLEAR + (s.intid >> 5) * 4, 4, 1 << (s.intid & 31)));
  }

  /** One ISENABLER write for the SPIs of the next 32-INTID register; then CTLR = 1. */
  private enable(): Boundary {
    const sorted = this.sorted;
    if (this.i === sorted.length) {
      this.pc = D_DONE;
      return this.call(this.d.write(this.g, GIC_DIST_CTRL, 4, GICD_ENABLE));
    }
    const reg = sorted[this.i]!.intid >> 5;
    let mask = 0;
    while (this.i < sorted.length && sorted[this.i]!.intid >> 5 === reg) mask |= 1 << (sorted[this.i++]!.intid & 31);
    this.pc = D_ENABLE;
    return this.call(this.d.write(this.g, GIC_DIST_ENABLE_SET + reg * 4, 4, mask >>> 0));
  }
}

/** gic_cpu_init as a frame: three GICV steps (PMR; CTLR read; CTLR write). */
class GicCpuInit extends Frame {
  private bypass = 0;

  constructor(
    private readonly d: GuestGicDriver,
    private readonly g: GuestCpu,
  ) {
    super();
  }

  protected step(): Boundary {
    const d = this.d;
    const g = this.g;
    switch (this.pc) {
      case 0:
        break;
      case 1:
        d.setPmr(g);
        break;
      case 2:
        this.bypass = d.ctlrBypass(g);
        break;
      default:
        d.setCtlr(g, this.bypass);
        return this.return_(undefined);
    }
    this.pc++;
    return this.yield_(op(C_GUEST_GICV_CFG, d.cpuOid(g)));
  }
}
