/**
 * The guest's GICv3 driver, after drivers/irqchip/irq-gic-v3.c as it runs inside a KVM guest: the distributor (GICD)
 * and the redistributors (GICR) are emulated by KVM, so each access is a data abort to the hypervisor (the trap
 * protocol of gicDriver.ts); the CPU interface is the system-register one, ICC_*_EL1, which with HCR_EL2.IMO set
 * reaches the virtual CPU interface (ICV_*) of the physical CPU the vCPU is loaded on — no exit.
 *
 * EOImode: 0 (ICC_EOIR1_EL1 drops the priority and deactivates) or 1 (EOIR1 drops the priority before the handler,
 * ICC_DIR_EL1 deactivates after it), which irq-gic-v3.c picks when it runs at EL2 (gic_enable_sysregs'
 * `supports_deactivate_key`); a guest at EL1 takes EOImode 0 unless told otherwise.
 * LPIs come through the guest's ITS driver (itsDriver.ts), which programs the redistributors and the ITS through
 * this driver's traps and registers its handlers here. Left out: pseudo-NMIs, and SGIs (ICC_SGI1R_EL1 always traps to KVM's vgic_v3_dispatch_sgi, which the model
 * does not route); a redistributor is found at gicrBase + 128 KiB × vCPU (the real driver walks GICR_TYPER).
 * Each function that runs across steps is a frame (sim/frame.ts).
 */
import { ESR_ELx_EC_DABT_LOW } from '../hw/esr.js';
import { LPI_BASE } from '../hw/gicv3/lpi.js';
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_ENABLE_G0,
  GICD_CTLR_ENABLE_G1,
  GICD_ICENABLER,
  GICD_ICFGR,
  GICD_IGROUPR,
  GICD_IPRIORITYR,
  GICD_IROUTER,
  GICD_ISENABLER,
  GICD_TYPER,
  GICR_WAKER,
  GICR_WAKER_PROCESSOR_SLEEP,
  ICC_CTLR_EOIMODE,
} from '../hw/gicv3/regs.js';
import type { Gicv3VirtualInterface } from '../hw/gicv3/virtualInterface.js';
import { vcpuMpidrAff } from '../kvm/vgic/vgic.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { op, trap } from '../sim/task.js';
import {
  C_GUEST_GICD_ACCESS,
  GICD_INT_DEF_PRI,
  GuestGicCpuStats,
  type GuestIrqchip,
  type GuestIrqHandler,
  type GuestSpiConfig,
  VIRT_GICD_BASE,
} from './gicDriver.js';
import type { GuestTraceHooks } from './guestTrace.js';
import { GuestIrqHandlerTable } from './irqHandlerTable.js';

const ICV_ACCESS =
  'an ICV_* system register access at EL1, no exit; estimate: taken equal to its GICV MMIO counterpart (ISCA 2016 Table II "Virtual IRQ Completion" 71 cyc for IAR + EOIR) [R]';
export const C_GUEST_ICV_IAR1 = defineCost('guest_icv_iar1', 36, `ICC_IAR1_EL1 read: ${ICV_ACCESS}`);
export const C_GUEST_ICV_EOIR1 = defineCost('guest_icv_eoir1', 35, `ICC_EOIR1_EL1 / ICC_DIR_EL1 write: ${ICV_ACCESS}`);
export const C_GUEST_ICV_CFG = defineCost(
  'guest_icv_cfg',
  35,
  `ICC_PMR/BPR1/CTLR/IGRPEN1_EL1 write at boot: ${ICV_ACCESS}`,
);

/** QEMU virt's GICv3 redistributor region (VIRT_GIC_REDIST). */
export const VIRT_GICR_BASE = 0x080a0000;
const GICR_STRIDE = 0x2_0000;
const GICD_TYPER_ITLINES_MASK = 0x1f;
/** What gic_dist_init writes last: GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1 (bits 4, 1, 0). */
const GICD_CTLR_ENABLE = GICD_CTLR_ARE | GICD_CTLR_ENABLE_G1 | GICD_CTLR_ENABLE_G0;
/** irq-gic-v3.c DEFAULT_PMR_VALUE. */
const DEFAULT_PMR_VALUE = 0xf0;

export interface Gicv3VifProvider {
  vif(cpu: number): Gicv3VirtualInterface;
}

export interface GuestGicV3DriverOptions {
  engine: Engine;
  gic: Gicv3VifProvider;
  nrVcpus: number;
  /** IPA of the emulated distributor (QEMU virt: 0x08000000). */
  gicdBase?: number;
  /** IPA of the first redistributor (QEMU virt: 0x080a0000). */
  gicrBase?: number;
  eoiMode?: 0 | 1;
  /** Priority written to each configured SPI (GICD_INT_DEF_PRI 0xa0). */
  priority?: number;
  /** ICC_PMR_EL1 at boot (DEFAULT_PMR_VALUE 0xf0). */
  pmr?: number;
}

/** The guest's irq-gic-v3 driver: boot of the distributor and of each vCPU's redistributor and CPU interface, the vector. */
export class GuestGicV3Driver implements GuestIrqchip {
  readonly engine: Engine;
  readonly gicdBase: number;
  readonly gicrBase: number;
  readonly eoiMode: 0 | 1;
  readonly nrVcpus: number;
  readonly priority: number;
  readonly pmr: number;
  readonly cpuStats: GuestGicCpuStats[] = [];
  get handledByIntid(): Map<number, number> {
    return this.handlers.handledByIntid();
  }
  nrIrqs = 0;
  trace: GuestTraceHooks | null = null;
  private readonly gic: Gicv3VifProvider;
  private readonly handlers: GuestIrqHandlerTable;

  constructor(opts: GuestGicV3DriverOptions) {
    if (!Number.isInteger(opts.nrVcpus) || opts.nrVcpus < 1) throw new ModelError(`bad vCPU count ${opts.nrVcpus}`);
    this.engine = opts.engine;
    this.gic = opts.gic;
    this.nrVcpus = opts.nrVcpus;
    this.handlers = new GuestIrqHandlerTable(opts.nrVcpus);
    this.gicdBase = opts.gicdBase ?? VIRT_GICD_BASE;
    this.gicrBase = opts.gicrBase ?? VIRT_GICR_BASE;
    this.eoiMode = opts.eoiMode ?? 0;
    this.priority = opts.priority ?? GICD_INT_DEF_PRI;
    this.pmr = opts.pmr ?? DEFAULT_PMR_VALUE;
    for (const p of [this.priority, this.pmr]) {
      if (!Number.isInteger(p) || p < 0 || p > 0xff) throw new ModelError(`bad GIC priority ${p} (0..255)`);
    }
    for (let i = 0; i < opts.nrVcpus; i++) {
      this.cpuStats.push(new GuestGicCpuStats());
    }
  }

  registerHandler(intid: number, handler: GuestIrqHandler): void {
    const valid = Number.isInteger(intid) && intid >= 0 && (intid < 1020 || (intid >= LPI_BASE && intid < 2 ** 16));
    if (!valid) throw new ModelError(`bad guest INTID ${intid}`);
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

  /** The ICV_* interface the vCPU's ICC_* accesses reach. */
  icv(g: GuestCpu): Gicv3VirtualInterface {
    if (g.loadedOn < 0) throw new ModelError(`${g.name}: ICC_* access while not loaded on a CPU`);
    return this.gic.vif(g.loadedOn);
  }

  cpuOid(g: GuestCpu): number {
    return g.loadedOn >= 0 ? this.engine.cpu(g.loadedOn).oid : -1;
  }

  /** Cycles of the step now running on the vCPU's physical CPU. */
  stepCycles(g: GuestCpu): number {
    return g.loadedOn >= 0 ? this.engine.cpu(g.loadedOn).readyAt - this.engine.now : 0;
  }

  /** A trapped access to the emulated distributor (`redist` < 0) or to vCPU `redist`'s redistributor. */
  mmio(g: GuestCpu, redist: number, offset: number, len: 1 | 4, write: boolean, value = 0): GicMmio {
    const base = redist < 0 ? this.gicdBase : this.gicrBase + redist * GICR_STRIDE;
    return new GicMmio(this, g, base + offset, len, write, value);
  }

  /** A trapped 32-bit access to any emulated frame at `ipa` (the ITS's GITS_* registers). */
  mmioAt(g: GuestCpu, ipa: number, write: boolean, value = 0): Frame<number> {
    return new GicMmio(this, g, ipa, 4, write, value);
  }

  /** gic_dist_init + gic_configure_irq + request_irq's enable, for the configured SPIs (trapped GICD accesses). */
  distInit(g: GuestCpu, spis: readonly GuestSpiConfig[]): Frame {
    return new GicDistInit(this, g, spis);
  }

  /** gic_cpu_init (wake the redistributor) + gic_cpu_sys_reg_init (ICC_PMR, BPR1, CTLR.EOImode, IGRPEN1). */
  cpuInit(g: GuestCpu, vcpu: number): Frame {
    return new GicCpuInit(this, g, this.checkVcpu(vcpu));
  }

  /** gic_set_affinity: GICD_IROUTER of `intid` = the affinity of vCPU `vcpu` (KVM moves the vIRQ). */
  setAffinity(g: GuestCpu, intid: number, vcpu: number): Frame<number> {
    if (intid < 32 || intid >= 1020) throw new ModelError(`gic_set_affinity: INTID ${intid} is not an SPI`);
    return this.mmio(g, -1, GICD_IROUTER + intid * 8, 4, true, vcpuMpidrAff(this.checkVcpu(vcpu)));
  }

  /** gic_handle_irq for one virtual IRQ exception. */
  handleIrq(g: GuestCpu, vcpu: number): Frame {
    return new GicHandleIrq(this, g, vcpu);
  }

  checkVcpu(vcpu: number): number {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.nrVcpus) {
      throw new ModelError(`no vCPU ${vcpu} (the guest has ${this.nrVcpus})`);
    }
    return vcpu;
  }
}

const PC_COST = 0;
const PC_TRAP = 1;
const PC_DONE = 2;

/** One trapped GICD/GICR access: its cost, the data abort, the value a read gets back. */
class GicMmio extends Frame<number> {
  constructor(
    private readonly drv: GuestGicV3Driver,
    private readonly g: GuestCpu,
    private readonly ipa: number,
    private readonly len: 1 | 4,
    private readonly write: boolean,
    private readonly data: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const g = this.g;
    switch (this.pc) {
      case PC_COST:
        this.pc = PC_TRAP;
        return this.yield_(op(C_GUEST_GICD_ACCESS, this.drv.cpuOid(g)));
      case PC_TRAP:
        g.mmio.isWrite = this.write;
        g.mmio.len = this.len;
        g.mmio.data = this.write ? (this.len === 1 ? this.data & 0xff : this.data) >>> 0 : 0;
        this.pc = PC_DONE;
        return this.yield_(trap(ESR_ELx_EC_DABT_LOW, this.ipa));
      default:
        if (this.write) return this.return_(0);
        if (typeof sent !== 'number') {
          throw new ModelError(`${g.name}: GIC read at IPA 0x${this.ipa.toString(16)} resumed without a value`);
        }
        return this.return_(sent >>> 0);
    }
  }
}

// GicDistInit program counters (irq-gic-v3.c gic_dist_init order, per SPI gic_configure_irq + gic_set_affinity)
const D_CTLR_OFF = 0;
const D_TYPER = 1;
const D_TYPER_DONE = 2;
const D_SPI = 3;
const D_GROUP = 4;
const D_CFG_R = 5;
const D_CFG_W = 6;
const D_PRIO = 7;
const D_ROUTE = 8;
const D_ENABLE = 9;
const D_DONE = 10;

/**
 * The distributor's boot on vCPU 0: CTLR = 0; TYPER; per SPI: ICENABLER, IGROUPR = ~0 (all Group 1, as gic_dist_init
 * writes every IGROUPR; here only the configured SPIs' words), ICFGR read-modify-write, IPRIORITYR byte, IROUTER
 * (affinity routing to its vCPU); ISENABLER per 32-INTID register; CTLR = ARE_NS | EnableGrp1A | EnableGrp1.
 */
class GicDistInit extends Frame {
  private readonly spis: GuestSpiConfig[];
  private i = 0;
  constructor(
    private readonly drv: GuestGicV3Driver,
    private readonly g: GuestCpu,
    spis: readonly GuestSpiConfig[],
  ) {
    super();
    this.spis = [...spis].sort((a, b) => a.intid - b.intid);
  }

  private access(next: number, offset: number, len: 1 | 4, write: boolean, value = 0): Boundary {
    this.pc = next;
    return this.call(this.drv.mmio(this.g, -1, offset, len, write, value));
  }

  protected step(sent: unknown): Boundary {
    const s = this.spis[this.i]!;
    switch (this.pc) {
      case D_CTLR_OFF:
        return this.access(D_TYPER, GICD_CTLR, 4, true, 0);
      case D_TYPER:
        return this.access(D_TYPER_DONE, GICD_TYPER, 4, false);
      case D_TYPER_DONE:
        this.checkSpis(sent as number);
        this.pc = this.spis.length > 0 ? D_SPI : D_ENABLE;
        return this.step(undefined);
      case D_SPI:
        return this.access(D_GROUP, GICD_ICENABLER + (s.intid >> 5) * 4, 4, true, (1 << (s.intid & 31)) >>> 0);
      case D_GROUP:
        return this.access(D_CFG_R, GICD_IGROUPR + (s.intid >> 5) * 4, 4, true, 0xffffffff);
      case D_CFG_R:
        return this.access(D_CFG_W, GICD_ICFGR + (s.intid >> 4) * 4, 4, false);
      case D_CFG_W: {
        // irq-gic-common.c gic_configure_irq: bit 2F+1 = edge
        const bit = 2 << ((s.intid & 15) * 2);
        const cfg = sent as number;
        return this.access(
          D_PRIO,
          GICD_ICFGR + (s.intid >> 4) * 4,
          4,
          true,
          s.trigger === 'edge' ? cfg | bit : cfg & ~bit,
        );
      }
      case D_PRIO:
        return this.access(D_ROUTE, GICD_IPRIORITYR + s.intid, 1, true, s.priority ?? this.drv.priority);
      case D_ROUTE: {
        const aff = vcpuMpidrAff(this.drv.checkVcpu(s.target ?? 0));
        this.i++;
        if (this.i === this.spis.length) this.i = 0;
        return this.access(this.i === 0 ? D_ENABLE : D_SPI, GICD_IROUTER + s.intid * 8, 4, true, aff);
      }
      case D_ENABLE: {
        if (this.i >= this.spis.length) return this.access(D_DONE, GICD_CTLR, 4, true, GICD_CTLR_ENABLE);
        const reg = s.intid >> 5;
        let mask = 0;
        while (this.i < this.spis.length && this.spis[this.i]!.intid >> 5 === reg) {
          mask |= 1 << (this.spis[this.i++]!.intid & 31);
        }
        return this.access(D_ENABLE, GICD_ISENABLER + reg * 4, 4, true, mask >>> 0);
      }
      default:
        return this.return_(undefined);
    }
  }

  /** GICD_TYPER.ITLinesNumber gives nr_irqs; every configured SPI must be one of them. */
  private checkSpis(typer: number): void {
    this.drv.nrIrqs = ((typer & GICD_TYPER_ITLINES_MASK) + 1) * 32;
    for (const x of this.spis) {
      if (x.intid < 32 || x.intid >= this.drv.nrIrqs) {
        throw new ModelError(`guest SPI ${x.intid} is not an SPI of this distributor (${this.drv.nrIrqs} INTIDs)`);
      }
    }
  }
}

const C_WAKER_R = 0;
const C_WAKER_W = 1;
const C_WAKER_POLL = 2;
const C_PMR = 3;
const C_BPR1 = 4;
const C_CTLR = 5;
const C_IGRPEN1 = 6;
const C_DONE = 7;

/**
 * gic_cpu_init on the vCPU's own redistributor — gic_enable_redist: GICR_WAKER.ProcessorSleep cleared, then poll
 * ChildrenAsleep (KVM's GICR_WAKER is RAZ/WI: one read) — and gic_cpu_sys_reg_init on its ICC_* registers.
 */
class GicCpuInit extends Frame {
  constructor(
    private readonly drv: GuestGicV3Driver,
    private readonly g: GuestCpu,
    private readonly vcpu: number,
  ) {
    super();
  }

  private sysreg(next: number): Boundary {
    this.pc = next;
    return this.yield_(op(C_GUEST_ICV_CFG, this.drv.cpuOid(this.g)));
  }

  protected step(sent: unknown): Boundary {
    const drv = this.drv;
    switch (this.pc) {
      case C_WAKER_R:
        this.pc = C_WAKER_W;
        return this.call(drv.mmio(this.g, this.vcpu, GICR_WAKER, 4, false));
      case C_WAKER_W:
        this.pc = C_WAKER_POLL;
        return this.call(
          drv.mmio(this.g, this.vcpu, GICR_WAKER, 4, true, (sent as number) & ~GICR_WAKER_PROCESSOR_SLEEP),
        );
      case C_WAKER_POLL:
        this.pc = C_PMR;
        return this.call(drv.mmio(this.g, this.vcpu, GICR_WAKER, 4, false));
      case C_PMR:
        return this.sysreg(C_BPR1);
      case C_BPR1:
        drv.icv(this.g).setPmr(drv.pmr); // ICC_PMR_EL1
        return this.sysreg(C_CTLR);
      case C_CTLR:
        drv.icv(this.g).setBpr1(0); // ICC_BPR1_EL1 = 0: the hardware keeps its minimum
        return this.sysreg(C_IGRPEN1);
      case C_IGRPEN1:
        drv.icv(this.g).setCtlr(drv.eoiMode === 1 ? ICC_CTLR_EOIMODE : 0); // ICC_CTLR_EL1.EOImode
        return this.sysreg(C_DONE);
      default:
        drv.icv(this.g).setIgrpen1(1); // ICC_IGRPEN1_EL1: Group 1 on
        return this.return_(undefined);
    }
  }
}

const H_ACK = 0;
const H_ACKED = 1;
const H_DROP = 2;
const H_HANDLER = 3;
const H_HANDLED = 4;
const H_COMPLETE = 5;

/**
 * gic_handle_irq (irq-gic-v3.c __gic_handle_irq_from_irqson) for one exception: acknowledge through ICC_IAR1_EL1 until
 * it returns a special INTID (1020-1023; an LPI is 8192 or above). EOImode 0: handler, then ICC_EOIR1_EL1 (drop and deactivate). EOImode 1:
 * EOIR1 first (priority drop), handler, then ICC_DIR_EL1 (gic_eoimode1_eoi_irq). An INTID without a handler is
 * still completed and counted unhandled.
 */
class GicHandleIrq extends Frame {
  private irqnr = 0;
  private taken = 0;
  constructor(
    private readonly drv: GuestGicV3Driver,
    private readonly g: GuestCpu,
    private readonly vcpu: number,
  ) {
    super();
    drv.cpuStats[vcpu]!.irqs++;
  }

  protected step(sent: unknown): Boundary {
    const drv = this.drv;
    const g = this.g;
    const st = drv.cpuStats[this.vcpu]!;
    switch (this.pc) {
      case H_ACK:
        this.pc = H_ACKED;
        return this.yield_(op(C_GUEST_ICV_IAR1, drv.cpuOid(g)));
      case H_ACKED:
        st.iarReads++;
        this.irqnr = drv.icv(g).readIar1();
        if (this.irqnr >= 1020 && this.irqnr <= 1023) {
          if (this.taken === 0) st.spurious++;
          return this.return_(undefined);
        }
        this.taken++;
        if (drv.eoiMode === 1) {
          this.pc = H_DROP;
          return this.yield_(op(C_GUEST_ICV_EOIR1, drv.cpuOid(g)));
        }
        return this.handler();
      case H_DROP:
        drv.icv(g).writeEoir1(this.irqnr);
        st.eoirWrites++;
        return this.handler();
      case H_HANDLER: // no handler: IRQ_NONE
      case H_HANDLED: {
        if (sent === true) drv.countHandled(this.irqnr, this.vcpu);
        else st.unhandled++;
        drv.trace?.eoi(this.vcpu, this.irqnr);
        this.pc = H_COMPLETE;
        return this.yield_(op(C_GUEST_ICV_EOIR1, drv.cpuOid(g)));
      }
      default:
        // H_COMPLETE: DIR (EOImode 1) or EOIR1 (EOImode 0), then the next acknowledge
        if (drv.eoiMode === 1) {
          drv.icv(g).writeDir(this.irqnr);
          st.dirWrites++;
        } else {
          drv.icv(g).writeEoir1(this.irqnr);
          st.eoirWrites++;
        }
        this.pc = H_ACKED;
        return this.yield_(op(C_GUEST_ICV_IAR1, drv.cpuOid(g)));
    }
  }

  private handler(): Boundary {
    const h = this.drv.handlerOf(this.irqnr);
    if (h === undefined) {
      this.pc = H_HANDLER;
      return this.step(false);
    }
    this.pc = H_HANDLED;
    if (this.irqnr >= LPI_BASE) this.drv.trace?.lpiIrq(this.vcpu, this.irqnr);
    return this.call(h.handle(this.g, this.vcpu));
  }
}
