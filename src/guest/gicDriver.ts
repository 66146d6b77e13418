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
import type { Frame } from '../sim/frame.js';
import { type Op, op, type TaskGen, trap } from '../sim/task.js';

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
  handle(g: GuestCpu, vcpu: number): Generator<Op, boolean, unknown>;
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
  onCompletion?: VirqCompletionProbe;
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
  /** The guest_eoi tracepoint: just before the write that completes `intid` (EOIR, or DIR in EOImode 1). */
  onEoi?: (vcpu: number, intid: number) => void;
}

/** A driver routine the guest kernel runs with `yield*`: a generator, or a frame (sim/frame.ts). */
export type GuestCall<R = void> = TaskGen<R> | Frame<R>;

/** What the guest kernel needs of its GIC driver: irq-gic.c (GuestGicDriver) or irq-gic-v3.c (GuestGicV3Driver). */
export interface GuestIrqchip {
  readonly gicdBase: number;
  readonly cpuStats: GuestGicCpuStats[];
  readonly handledByIntid: Map<number, number>;
  /** INTIDs the distributor reports (from GICD_TYPER at boot; 0 before). */
  readonly nrIrqs: number;
  registerHandler(intid: number, handler: GuestIrqHandler): void;
  distInit(g: GuestCpu, spis: readonly GuestSpiConfig[]): GuestCall;
  cpuInit(g: GuestCpu, vcpu: number): GuestCall;
  setAffinity(g: GuestCpu, intid: number, vcpu: number): GuestCall<unknown>;
  handleIrq(g: GuestCpu, vcpu: number): GuestCall;
}

/** Per-vCPU counters of the IRQ vector. */
export interface GuestGicCpuStats {
  /** Virtual IRQ exceptions taken. */
  irqs: number;
  /** Exceptions whose first IAR read found nothing (1023) or an unacknowledgeable Group 1 IRQ (1022). */
  spurious: number;
  /** IAR reads returning 1022 (Group 1 with AckCtl = 0). */
  iar1022: number;
  /** INTIDs acknowledged with no registered handler, or whose handler returned IRQ_NONE. */
  unhandled: number;
  /** INTIDs acknowledged and left active (an `eoi: 'never'` guest). */
  leftActive: number;
  iarReads: number;
  eoirWrites: number;
  dirWrites: number;
}

export function newGuestGicCpuStats(): GuestGicCpuStats {
  return { irqs: 0, spurious: 0, iar1022: 0, unhandled: 0, leftActive: 0, iarReads: 0, eoirWrites: 0, dirWrites: 0 };
}

/** QEMU virt GICv2 distributor base. */
export const VIRT_GICD_BASE = 0x08000000;
/** QEMU virt GICv2 CPU interface base (where KVM maps the GICV). */
export const VIRT_GICC_BASE = 0x08010000;
/** irq-gic.c GICD_INT_DEF_PRI. */
export const GICD_INT_DEF_PRI = 0xa0;

// ---- trapped distributor accesses --------------------------------------------------------------------------------

/** A guest write to the emulated GICD: a data abort with the access in g.mmio. */
export function* gicdWrite(g: GuestCpu, ipa: number, len: 1 | 4, value: number): TaskGen<void> {
  g.mmio.isWrite = true;
  g.mmio.len = len;
  g.mmio.data = (len === 1 ? value & 0xff : value) >>> 0;
  yield trap(ESR_ELx_EC_DABT_LOW, ipa);
}

/** A guest read of the emulated GICD: the hypervisor hands the value back through trapTask.resumeValue. */
export function* gicdRead(g: GuestCpu, ipa: number, len: 1 | 4): TaskGen<number> {
  g.mmio.isWrite = false;
  g.mmio.len = len;
  g.mmio.data = 0;
  const v = yield trap(ESR_ELx_EC_DABT_LOW, ipa);
  if (typeof v !== 'number') {
    throw new ModelError(`${g.name}: GICD read at IPA 0x${ipa.toString(16)} resumed without a value (resumeValue)`);
  }
  return v >>> 0;
}

// ---- the driver ---------------------------------------------------------------------------------------------------

export class GuestGicDriver implements GuestIrqchip {
  readonly gicdBase: number;
  readonly eoiMode: 0 | 1;
  readonly nrVcpus: number;
  readonly priority: number;
  readonly eoi: GuestEoiPolicy;
  readonly pmr: number;
  private readonly onEoi: ((vcpu: number, intid: number) => void) | undefined;
  readonly cpuStats: GuestGicCpuStats[] = [];
  /** Handled interrupts per INTID (handler returned IRQ_HANDLED). */
  readonly handledByIntid = new Map<number, number>();
  /** INTIDs the distributor reports (from GICD_TYPER at boot; 0 before). */
  nrIrqs = 0;
  private readonly engine: Engine;
  private readonly gic: GicvProvider;
  private readonly handlers = new Map<number, GuestIrqHandler>();
  private readonly onCompletion: VirqCompletionProbe | undefined;
  /** eoi 'late': per vCPU, the IAR values acknowledged in the exception being handled. */
  private readonly lateAcks: Uint32Array[] = [];

  constructor(opts: GuestGicDriverOptions) {
    if (!Number.isInteger(opts.nrVcpus) || opts.nrVcpus < 1 || opts.nrVcpus > 8) {
      throw new ModelError(`a GICv2 guest has 1..8 vCPUs, got ${opts.nrVcpus}`);
    }
    this.engine = opts.engine;
    this.gic = opts.gic;
    this.nrVcpus = opts.nrVcpus;
    this.gicdBase = opts.gicdBase ?? VIRT_GICD_BASE;
    this.eoiMode = opts.eoiMode ?? 0;
    this.priority = opts.priority ?? GICD_INT_DEF_PRI;
    this.onCompletion = opts.onCompletion;
    this.onEoi = opts.onEoi;
    this.eoi = opts.eoi ?? 'always';
    this.pmr = opts.pmr ?? GICC_INT_PRI_THRESHOLD;
    checkPriority(this.priority);
    checkPriority(this.pmr);
    for (let i = 0; i < opts.nrVcpus; i++) {
      this.lateAcks.push(new Uint32Array(MAX_NESTED));
      this.cpuStats.push(newGuestGicCpuStats());
    }
  }

  /** request_irq: the handler the vector dispatches INTID `intid` to. */
  registerHandler(intid: number, handler: GuestIrqHandler): void {
    if (!Number.isInteger(intid) || intid < 0 || intid >= 1020) throw new ModelError(`bad guest INTID ${intid}`);
    if (this.handlers.has(intid)) throw new ModelError(`guest INTID ${intid} already has handler ${handler.name}`);
    this.handlers.set(intid, handler);
    this.handledByIntid.set(intid, 0);
  }

  handlerOf(intid: number): GuestIrqHandler | undefined {
    return this.handlers.get(intid);
  }

  /** The GICV the guest reaches: the virtual interface of the physical CPU the vCPU is loaded on. */
  private gicv(g: GuestCpu): GicVirtualInterface {
    if (g.loadedOn < 0) throw new ModelError(`${g.name}: GICV access while not loaded on a CPU`);
    return this.gic.vif(g.loadedOn);
  }

  /** oid of the CPU interface the next step touches (the physical CPU's, which owns its GICV). */
  private cpuOid(g: GuestCpu): number {
    return g.loadedOn >= 0 ? this.engine.cpu(g.loadedOn).oid : -1;
  }

  /** A trapped write of the GICD register at `offset` (KVM emulates it). */
  *write(g: GuestCpu, offset: number, len: 1 | 4, value: number): TaskGen<void> {
    yield op(C_GUEST_GICD_ACCESS, this.cpuOid(g));
    yield* gicdWrite(g, this.gicdBase + offset, len, value);
  }

  /** A trapped read of the GICD register at `offset`. */
  *read(g: GuestCpu, offset: number, len: 1 | 4): TaskGen<number> {
    yield op(C_GUEST_GICD_ACCESS, this.cpuOid(g));
    return yield* gicdRead(g, this.gicdBase + offset, len);
  }

  /**
   * gic_dist_init + gic_configure_irq + request_irq's enable, for the SPIs of the passed-through devices only:
   * CTLR = 0; TYPER read; per SPI: ICENABLER, ICFGR read-modify-write, IPRIORITYR byte, ITARGETSR byte; then
   * ISENABLER (one write per 32-INTID register, ascending); CTLR = 1.
   */
  *distInit(g: GuestCpu, spis: readonly GuestSpiConfig[]): TaskGen<void> {
    yield* this.write(g, GIC_DIST_CTRL, 4, GICD_DISABLE);
    const typer = yield* this.read(g, GIC_DIST_CTR, 4);
    this.nrIrqs = ((typer & GICD_TYPER_ITLINES_MASK) + 1) * 32;
    const sorted = [...spis].sort((a, b) => a.intid - b.intid);
    for (const s of sorted) {
      if (!isSpi(s.intid) || s.intid >= this.nrIrqs) {
        throw new ModelError(`guest SPI ${s.intid} is not an SPI of this distributor (${this.nrIrqs} INTIDs)`);
      }
      const bit = 1 << (s.intid & 31);
      yield* this.write(g, GIC_DIST_ENABLE_CLEAR + (s.intid >> 5) * 4, 4, bit);
      // irq-gic-common.c gic_configure_irq: ICFGR read-modify-write, bit 2F+1 = edge
      const cfgOff = GIC_DIST_CONFIG + (s.intid >> 4) * 4;
      const cfgBit = 2 << ((s.intid & 15) * 2);
      const cfg = yield* this.read(g, cfgOff, 4);
      yield* this.write(g, cfgOff, 4, s.trigger === 'edge' ? cfg | cfgBit : cfg & ~cfgBit);
      yield* this.write(g, GIC_DIST_PRI + s.intid, 1, checkPriority(s.priority ?? this.priority));
      yield* this.write(g, GIC_DIST_TARGET + s.intid, 1, 1 << this.checkVcpu(s.target ?? 0));
    }
    for (let i = 0; i < sorted.length; ) {
      const reg = sorted[i]!.intid >> 5;
      let mask = 0;
      while (i < sorted.length && sorted[i]!.intid >> 5 === reg) mask |= 1 << (sorted[i++]!.intid & 31);
      yield* this.write(g, GIC_DIST_ENABLE_SET + reg * 4, 4, mask >>> 0);
    }
    yield* this.write(g, GIC_DIST_CTRL, 4, GICD_ENABLE);
  }

  /**
   * gic_cpu_init / gic_cpu_if_up on the GICV: PMR (0xf0 unless configured), then CTLR = bypass bits | Enable (| EOImodeNS with
   * EOImode 1) after reading CTLR for the bypass bits, as irq-gic.c does.
   */
  *cpuInit(g: GuestCpu): TaskGen<void> {
    yield op(C_GUEST_GICV_CFG, this.cpuOid(g));
    this.gicv(g).setPmr(this.pmr);
    yield op(C_GUEST_GICV_CFG, this.cpuOid(g));
    const bypass = this.gicv(g).ctlrValue & GICC_DIS_BYPASS_MASK;
    yield op(C_GUEST_GICV_CFG, this.cpuOid(g));
    this.gicv(g).setCtlr(bypass | GICC_ENABLE | (this.eoiMode === 1 ? GIC_CPU_CTRL_EOImodeNS : 0));
  }

  /**
   * gic_set_affinity: a byte write of ITARGETSR for `intid` naming vCPU `vcpu`'s CPU interface (a trapped access;
   * KVM's vgic_mmio_write_target moves the vIRQ).
   */
  *setAffinity(g: GuestCpu, intid: number, vcpu: number): TaskGen<void> {
    if (!isSpi(intid)) throw new ModelError(`gic_set_affinity: INTID ${intid} is not an SPI`);
    yield* this.write(g, GIC_DIST_TARGET + intid, 1, 1 << this.checkVcpu(vcpu));
  }

  /**
   * gic_handle_irq for one virtual IRQ exception on vCPU `vcpu`: acknowledge through GICV_IAR until it returns a
   * special INTID (≥ 1020). EOImode 0: handler, then EOIR (drop + deactivate). EOImode 1: EOIR first (priority drop,
   * irq-gic.c gic_handle_irq), handler, then DIR (gic_eoimode1_eoi_irq). An INTID without a handler is still
   * completed, so it cannot stay active, and counted as unhandled. `eoi` 'never' and 'late': see the option.
   */
  *handleIrq(g: GuestCpu, vcpu: number): TaskGen<void> {
    const st = this.cpuStats[vcpu]!;
    const late = this.eoi === 'late';
    const acks = this.lateAcks[vcpu]!;
    st.irqs++;
    let taken = 0;
    for (;;) {
      const irqstat = yield* this.ack(g, vcpu);
      const intid = irqstat & GICC_IAR_INT_ID_MASK;
      if (intid >= 1020) {
        if (intid === 1022) st.iar1022++;
        if (taken === 0) st.spurious++;
        break;
      }
      if (late) {
        if (taken === MAX_NESTED) throw new ModelError(`${g.name}: more than ${MAX_NESTED} nested acknowledges`);
        acks[taken] = irqstat;
      }
      taken++;
      let completion = this.stepCycles(g);
      if (this.eoiMode === 1 && !late) {
        yield* this.eoir(g, vcpu, irqstat);
        completion += this.stepCycles(g);
      }
      const h = this.handlers.get(intid);
      let handled = false;
      if (h !== undefined) handled = yield* h.handle(g, vcpu);
      if (handled) this.handledByIntid.set(intid, this.handledByIntid.get(intid)! + 1);
      else st.unhandled++;
      if (this.eoi !== 'always') {
        if (!late) st.leftActive++;
        continue;
      }
      this.onEoi?.(vcpu, intid);
      if (this.eoiMode === 1) yield* this.dir(g, vcpu, irqstat);
      else yield* this.eoir(g, vcpu, irqstat);
      this.onCompletion?.(completion + this.stepCycles(g), vcpu, intid);
    }
    if (!late) return;
    for (let i = taken - 1; i >= 0; i--) {
      if (this.eoiMode === 0) this.onEoi?.(vcpu, acks[i]! & GICC_IAR_INT_ID_MASK);
      yield* this.eoir(g, vcpu, acks[i]!);
    }
    for (let i = 0; this.eoiMode === 1 && i < taken; i++) {
      this.onEoi?.(vcpu, acks[i]! & GICC_IAR_INT_ID_MASK);
      yield* this.dir(g, vcpu, acks[i]!);
    }
  }

  /** A GICV_IAR read (acknowledge): the IAR value, INTID ≥ 1020 when nothing can be acknowledged. */
  *ack(g: GuestCpu, vcpu: number): TaskGen<number> {
    yield op(C_GUEST_GICV_IAR, this.cpuOid(g));
    this.cpuStats[vcpu]!.iarReads++;
    return this.gicv(g).readIar();
  }

  /** A GICV_EOIR write: priority drop, and in EOImode 0 deactivation. */
  *eoir(g: GuestCpu, vcpu: number, irqstat: number): TaskGen<void> {
    yield op(C_GUEST_GICV_EOIR, this.cpuOid(g));
    this.gicv(g).writeEoir(irqstat);
    this.cpuStats[vcpu]!.eoirWrites++;
  }

  /** A GICV_DIR write: deactivation (EOImode 1), from whichever vCPU runs it. */
  *dir(g: GuestCpu, vcpu: number, irqstat: number): TaskGen<void> {
    yield op(C_GUEST_GICV_DIR, this.cpuOid(g));
    this.gicv(g).writeDir(irqstat);
    this.cpuStats[vcpu]!.dirWrites++;
  }

  /** A GICV register write other than EOIR/DIR (PMR, APR, CTLR): the register at `offset` of the CPU interface. */
  *gicvWrite(g: GuestCpu, offset: number, value: number): TaskGen<void> {
    yield op(C_GUEST_GICV_CFG, this.cpuOid(g));
    this.gicv(g).write(offset, value);
  }

  /** A GICV register read (RPR, HPPIR, APR, PMR, CTLR). */
  *gicvRead(g: GuestCpu, offset: number): TaskGen<number> {
    yield op(C_GUEST_GICV_CFG, this.cpuOid(g));
    return this.gicv(g).read(offset);
  }

  /** Cycles of the step now running on the vCPU's physical CPU (its readyAt − now). */
  private stepCycles(g: GuestCpu): number {
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
