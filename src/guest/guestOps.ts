/**
 * What guest code written outside the model can do on one vCPU — the building blocks of a test guest such as the
 * arm64 `vgic_irq` selftest's (tools/testing/selftests/kvm/arm64/vgic_irq.c): GICV accesses (IAR, EOIR, DIR, PMR,
 * APR — stage-2 mapped, no trap), GICD accesses (trapped, emulated by KVM's vGIC: ISPENDR/ICPENDR, ISACTIVER/
 * ICACTIVER, IPRIORITYR, ISENABLER/ICENABLER, ITARGETSR), PSTATE.I, WFI, compute, polling shared memory, and a
 * "ucall" (a store to an unbacked IPA: KVM_EXIT_MMIO to the VMM, the selftests' GUEST_SYNC).
 *
 * Each method returns a frame that guest code runs with `yield*`, and each access is one atomic guest step. Argument
 * errors are thrown when the method is called.
 */

import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_WFx } from '../hw/esr.js';
import {
  GIC_CPU_ACTIVEPRIO,
  GIC_CPU_HIGHPRI,
  GIC_CPU_PRIMASK,
  GIC_CPU_RUNNINGPRI,
  GIC_DIST_ACTIVE_CLEAR,
  GIC_DIST_ACTIVE_SET,
  GIC_DIST_ENABLE_CLEAR,
  GIC_DIST_ENABLE_SET,
  GIC_DIST_PENDING_CLEAR,
  GIC_DIST_PENDING_SET,
  GIC_DIST_PRI,
  GICC_IAR_INT_ID_MASK,
} from '../hw/gic/regs.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { op, type TaskGen, trap } from '../sim/task.js';
import { guestWorkCost } from './deviceDriver.js';
import type { GuestGicDriver } from './gicDriver.js';

export const C_GUEST_POLL = defineCost(
  'guest_poll',
  50,
  'one iteration of a guest loop polling shared memory (a load, a compare, a dsb ishld); estimate',
);

/** Guest code run on a vCPU's thread after boot (then the vCPU idles as usual). */
export type GuestProgram = (ops: GuestOps) => TaskGen<void>;
/** Guest code run in the IRQ vector for one acknowledged INTID, before its completion. */
export type GuestIrqHook = (ops: GuestOps, intid: number) => TaskGen<void>;

const isNum = (intid: number): boolean => Number.isInteger(intid) && intid >= 0 && intid < 1020;

export class GuestOps {
  constructor(
    private readonly driver: GuestGicDriver,
    private readonly engine: Engine,
    /** The vCPU this code runs on. */
    readonly vcpu: number,
    private readonly g: GuestCpu,
    /** IPA of the ucall doorbell (no memslot, no in-kernel device). */
    private readonly ucallIpa: number,
  ) {}

  /** Simulated time (cycles). */
  get now(): number {
    return this.engine.now;
  }

  // ---- GICV (virtual CPU interface) ----

  /** GICV_IAR: the acknowledged INTID, or 1023/1022 when there is none (gic_get_and_ack_irq). */
  ack(): Frame<number> {
    return new IntidRead(this.driver.ack(this.g, this.vcpu));
  }
  /** GICV_EOIR: priority drop (+ deactivation in EOImode 0). */
  eoir(intid: number): Frame<number> {
    return this.driver.eoir(this.g, this.vcpu, this.intid(intid));
  }
  /** GICV_DIR: deactivation in EOImode 1 — of an INTID any vCPU acknowledged (vgic_irq's asym-DIR case). */
  dir(intid: number): Frame<number> {
    return this.driver.dir(this.g, this.vcpu, this.intid(intid));
  }
  /** GICV_PMR (gic_set_priority_mask). */
  setPriorityMask(pmr: number): Frame<number> {
    return this.driver.gicvWrite(this.g, GIC_CPU_PRIMASK, pmr);
  }
  /** GICV_APR (the active-priorities register the selftest writes to restore active state). */
  readApr(): Frame<number> {
    return this.driver.gicvRead(this.g, GIC_CPU_ACTIVEPRIO);
  }
  writeApr(value: number): Frame<number> {
    return this.driver.gicvWrite(this.g, GIC_CPU_ACTIVEPRIO, value);
  }
  /** GICV_RPR, GICV_HPPIR. */
  runningPriority(): Frame<number> {
    return this.driver.gicvRead(this.g, GIC_CPU_RUNNINGPRI);
  }
  highestPending(): Frame<number> {
    return new IntidRead(this.driver.gicvRead(this.g, GIC_CPU_HIGHPRI));
  }

  // ---- GICD (trapped; KVM's vGIC emulates it) ----

  /** GICD_ISPENDR / ICPENDR bit of `intid` (gic_irq_set_pending / clear). */
  setPending(intid: number): Frame<number> {
    return this.bitWrite(GIC_DIST_PENDING_SET, intid);
  }
  clearPending(intid: number): Frame<number> {
    return this.bitWrite(GIC_DIST_PENDING_CLEAR, intid);
  }
  /** GICD_ISACTIVER / ICACTIVER bit of `intid`. */
  setActive(intid: number): Frame<number> {
    return this.bitWrite(GIC_DIST_ACTIVE_SET, intid);
  }
  clearActive(intid: number): Frame<number> {
    return this.bitWrite(GIC_DIST_ACTIVE_CLEAR, intid);
  }
  /** GICD_ISENABLER / ICENABLER bit of `intid`. */
  enable(intid: number): Frame<number> {
    return this.bitWrite(GIC_DIST_ENABLE_SET, intid);
  }
  disable(intid: number): Frame<number> {
    return this.bitWrite(GIC_DIST_ENABLE_CLEAR, intid);
  }
  /** GICD_ISPENDR / ISACTIVER read of `intid`'s bit (gic_irq_get_pending / gic_irq_get_active). */
  isPending(intid: number): Frame<boolean> {
    return this.bitRead(GIC_DIST_PENDING_SET, intid);
  }
  isActive(intid: number): Frame<boolean> {
    return this.bitRead(GIC_DIST_ACTIVE_SET, intid);
  }
  /** GICD_IPRIORITYR byte of `intid` (gic_set_priority). */
  setPriority(intid: number, prio: number): Frame<number> {
    if (!Number.isInteger(prio) || prio < 0 || prio > 0xff) throw new ModelError(`bad GIC priority ${prio}`);
    return this.driver.write(this.g, GIC_DIST_PRI + this.intid(intid), 1, prio);
  }
  /** GICD_ITARGETSR byte of SPI `intid` naming vCPU `target` (gic_set_affinity). */
  retarget(intid: number, target: number): Frame<number> {
    return this.driver.setAffinity(this.g, intid, target);
  }

  // ---- the CPU ----

  /** PSTATE.I (local_irq_disable / local_irq_enable); a pending vIRQ is taken on the next step once unmasked. */
  irqsMasked(masked: boolean): void {
    this.g.irqMasked = masked;
  }
  /** WFI: the vCPU blocks in KVM until a vIRQ is pending for it (kvm_vcpu_block), masked or not. */
  wfi(): Frame {
    return new GuestInsn(this.g, INSN_WFI, 0, 0);
  }
  /** Guest computation of `cycles` (one atomic step). */
  work(cycles: number): Frame {
    return new GuestInsn(this.g, INSN_WORK, guestWorkCost(cycles), 0);
  }
  /**
   * Poll until `cond()` (a load of memory other vCPUs write) holds; at most `maxPolls` iterations. The frame keeps
   * `cond`, a closure of the program's, so a machine suspended in it cannot be copied (findUncopyable names it) — as
   * one running any GuestProgram, a generator function, cannot.
   */
  waitUntil(cond: () => boolean, maxPolls = 1_000_000): Frame {
    return new WaitUntil(this.vcpu, cond, maxPolls);
  }
  /**
   * A ucall: a 32-bit store of `value` to the doorbell IPA. KVM finds no memslot or in-kernel device there and
   * returns KVM_RUN with KVM_EXIT_MMIO (`mmio.phys_addr`, `mmio.data`); the guest continues at the next KVM_RUN,
   * after whatever the VMM did in between.
   */
  ucall(value: number): Frame {
    return new GuestInsn(this.g, INSN_UCALL, this.ucallIpa, value);
  }

  private bitWrite(base: number, intid: number): Frame<number> {
    const n = this.intid(intid);
    return this.driver.write(this.g, base + (n >> 5) * 4, 4, (1 << (n & 31)) >>> 0);
  }

  private bitRead(base: number, intid: number): Frame<boolean> {
    const n = this.intid(intid);
    return new BitRead(this.driver.read(this.g, base + (n >> 5) * 4, 4), n & 31);
  }

  private intid(intid: number): number {
    if (!isNum(intid)) throw new ModelError(`vCPU ${this.vcpu}: bad INTID ${intid}`);
    return intid;
  }
}

/** GuestInsn kinds: WFI; a compute step (arg: its cost id); a ucall store (arg: the doorbell IPA, data: the value). */
const INSN_WFI = 0;
const INSN_WORK = 1;
const INSN_UCALL = 2;

/** A guest instruction that is one step (a data-driven frame for wfi, work and ucall). */
class GuestInsn extends Frame {
  constructor(
    private readonly g: GuestCpu,
    private readonly kind: number,
    private readonly arg: number,
    private readonly data: number,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 1) return this.return_(undefined);
    this.pc = 1;
    switch (this.kind) {
      case INSN_WFI:
        return this.yield_(trap(ESR_ELx_EC_WFx));
      case INSN_WORK:
        return this.yield_(op(this.arg));
      default: {
        const mmio = this.g.mmio;
        mmio.isWrite = true;
        mmio.len = 4;
        mmio.data = this.data >>> 0;
        return this.yield_(trap(ESR_ELx_EC_DABT_LOW, this.arg));
      }
    }
  }
}

/** GICV_IAR / GICV_HPPIR read for its INTID field (the CPU ID bits of an SGI masked off). */
class IntidRead extends Frame<number> {
  constructor(private readonly read: Frame<number>) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === 1) return this.return_((sent as number) & GICC_IAR_INT_ID_MASK);
    this.pc = 1;
    return this.call(this.read);
  }
}

/** A GICD bitmap register read for one INTID's bit (gic_peek_irq). */
class BitRead extends Frame<boolean> {
  constructor(
    private readonly read: Frame<number>,
    private readonly bit: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === 1) return this.return_((((sent as number) >>> this.bit) & 1) !== 0);
    this.pc = 1;
    return this.call(this.read);
  }
}

/** GuestOps.waitUntil: a poll step per test of `cond` that fails, at most `maxPolls`. */
class WaitUntil extends Frame {
  private polls = 0;

  constructor(
    private readonly vcpu: number,
    private readonly cond: () => boolean,
    private readonly maxPolls: number,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.cond()) return this.return_(undefined);
    if (this.polls === this.maxPolls) {
      throw new ModelError(`vCPU ${this.vcpu}: condition still false after ${this.maxPolls} polls`);
    }
    this.polls++;
    return this.yield_(op(C_GUEST_POLL));
  }
}
