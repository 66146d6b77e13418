/**
 * A physical CPU: the thread it runs, its run queue, its IRQ mask, the IRQ and virtual-IRQ lines the GIC drives
 * into it, and the guest context it runs while a vCPU thread is in guest mode.
 */
import { declareStatistics } from './statistics.js';
import type { IrqMaskContext, Task } from './task.js';

/** The guest side of a vCPU as the CPU sees it while in guest mode. */
export class GuestCpu implements IrqMaskContext {
  /** Guest PSTATE.I: masks virtual IRQs only; physical IRQs always exit to the hypervisor (HCR_EL2.IMO). */
  irqMasked = false;
  inIrq = false;
  /** Why the last exit happened (EXIT_* below) and the trapping task's argument. */
  exitReason = 0;
  exitArg = 0;
  /** Physical CPU the guest is loaded on, -1 when not running. */
  loadedOn = -1;
  /** The guest task whose trap caused the last exit; the hypervisor hands it the emulation result via resumeValue. */
  trapTask: Task | null = null;
  /** The data abort being emulated (ESR_ELx ISS fields a hypervisor decodes): preallocated, filled by guest code. */
  readonly mmio = { isWrite: false, len: 4, data: 0 };

  constructor(
    readonly name: string,
    /** The host vCPU thread that enters this guest context. */
    readonly host: Task,
    /** The guest kernel's thread on this vCPU (idle loop or workload). */
    readonly thread: Task,
    /** The guest's IRQ vector: a looping task that handles one IRQ and yields eret(). */
    readonly irqTask: Task,
  ) {}
}

export const EXIT_IRQ = 0;
export const EXIT_TRAP = 1;

export class Cpu implements IrqMaskContext {
  irqMasked = false;
  /** nIRQ from the GIC CPU interface. */
  irqLine = false;
  /** nVIRQ from the GIC virtual CPU interface (seen by the guest while in guest mode). */
  virqLine = false;
  inIrq = false;
  needResched = false;
  guest: GuestCpu | null = null;
  /** The CPU is busy until this time (cycles): the end of its last step. */
  readyAt = 0;
  current: Task;
  readonly runq: Task[] = [];
  irqTask: Task | null = null;
  /** Counters: steps executed, exceptions taken, guest exits. */
  steps = 0;
  irqs = 0;
  exits = 0;

  constructor(
    readonly id: number,
    readonly idle: Task,
    /** Object id for checker independence: the CPU's run state (current task, run queue, exception level). */
    readonly oid: number,
    /** Its nIRQ input: written by the GIC, read by a step only where the CPU can take the interrupt then. */
    readonly irqOid: number,
    /** Its nVIRQ input (a loaded guest's virtual interrupt), likewise. */
    readonly virqOid: number,
  ) {
    this.current = idle;
  }
}
declareStatistics(Cpu, ['irqs', 'exits']);
