/**
 * What a scenario run gives its guests to report to it: the guest IRQ handlers of what its ledger serves without a
 * device register (LedgerIrqHandler), and the guest kernel's probes (vector entries, virtual IRQ completions, a device
 * driver's handler-entry latency, a trap loop's round trips). Classes holding plain data, not closures: the guest
 * keeps them in the machine's state, which can then be copied (sim/snapshot.ts).
 */
import { guestWorkCost } from '../guest/deviceDriver.js';
import type { GuestIrqHandler } from '../guest/gicDriver.js';
import type { GuestCpu } from '../sim/cpu.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { op } from '../sim/task.js';
import type { LedgerEntry } from './lineLedger.js';
import type { ProbeName } from './metrics.js';
import type { MetricsWindow } from './metricsWindow.js';

/** What the runner measures per VM beside the VMM's state. */
export interface VmProbes {
  /** Per vCPU: when its trap loop issued its last trap (cycles), -1 if none is outstanding. */
  readonly trapAt: number[];
  /** Per vCPU: when it last entered its virtual IRQ vector (cycles). */
  readonly vectorAt: number[];
  /** Kernel-handled MMIO round trips (GICD read loop): count and sum of cycles, for a note. */
  readonly mmioKernel: { n: number; sum: number };
}

/** The run, as its guests' handlers and probes report to it. */
export interface RunGuestSink {
  readonly window: MetricsWindow;
  /** A probe sample (recorded while the metrics window is open). */
  probe(name: ProbeName, cycles: number): void;
  /** A guest handler entry served `l`, `cycles` after its raise. */
  served(l: LedgerEntry, cycles: number): void;
  /** A LedgerIrqHandler of VM `vmIndex` was entered on `vcpu`. */
  handlerEntered(l: LedgerEntry, vcpu: number, vmIndex: number): void;
}

/**
 * The guest handler of what the runner's ledger serves without a device register to read: a `via: eventfd` line
 * (the I/O backend signalled the irqfd, the physical line never rose) or an MSI vector (entered once the guest's
 * GICv3 driver acknowledged its LPI, ICC_IAR1_EL1). Each entry serves one event (RunGuestSink.handlerEntered), then
 * runs `handlerCycles` of work; the guest's GIC driver then completes the interrupt.
 */
export class LedgerIrqHandler implements GuestIrqHandler {
  /** Cost id of the handler's work, or -1 for none. */
  readonly work: number;

  constructor(
    readonly name: string,
    readonly runner: RunGuestSink,
    readonly l: LedgerEntry,
    handlerCycles: number,
    /** The VM whose guest runs it (an eventfd line's delivery names the vCPU's thread). */
    readonly vmIndex: number,
  ) {
    const work = guestWorkCost(handlerCycles);
    this.work = handlerCycles > 0 ? work : -1;
  }

  handle(_g: GuestCpu, vcpu: number): Frame<boolean> {
    return new LedgerIrqHandle(this, vcpu);
  }
}

/** LedgerIrqHandler.handle as a frame: the entry, the work step, IRQ_HANDLED. */
class LedgerIrqHandle extends Frame<boolean> {
  constructor(
    private readonly h: LedgerIrqHandler,
    private readonly vcpu: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const h = this.h;
    if (this.pc === 1) return this.return_(true);
    h.runner.handlerEntered(h.l, this.vcpu, h.vmIndex);
    if (h.work < 0) return this.return_(true);
    this.pc = 1;
    return this.yield_(op(h.work));
  }
}

/** A VM's guest probes: its vCPUs' vector entries (probe `ioLatencyIn`) and, GICv2, probe `virqCompletion`. */
export class RunGuestProbes {
  constructor(
    private readonly run: RunGuestSink,
    private readonly pr: VmProbes,
  ) {}

  onVectorEntry(at: number, vcpu: number): void {
    this.pr.vectorAt[vcpu] = at;
  }

  onVirqCompletion(cycles: number): void {
    this.run.probe('virqCompletion', cycles);
  }
}

/** A device line's guest driver probes: when the raise it serves happened, and its delivery. */
export class RunLineProbes {
  constructor(
    private readonly run: RunGuestSink,
    private readonly l: LedgerEntry,
  ) {}

  assertedAt(): number {
    return this.l.lastAssertAt;
  }

  onLatency(cycles: number): void {
    this.run.served(this.l, cycles);
  }
}

/**
 * A trap loop's probes: `hvc` — probe `hypercall` per round trip; `gicd-read` — the kernel-emulated MMIO round trips
 * (a note); `mmio-write` — when the doorbell store trapped (the vCPU thread's loop records probe `ioLatencyOut`).
 */
export class RunTrapProbes {
  constructor(
    private readonly run: RunGuestSink,
    private readonly pr: VmProbes,
    private readonly kind: 'hvc' | 'gicd-read' | 'mmio-write',
  ) {}

  onTrap(at: number, vcpu: number): void {
    this.pr.trapAt[vcpu] = at;
  }

  onRoundTrip(cycles: number): void {
    if (this.kind === 'hvc') {
      this.run.probe('hypercall', cycles);
      return;
    }
    if (!this.run.window.open) return;
    this.pr.mmioKernel.n++;
    this.pr.mmioKernel.sum += cycles;
  }
}
