/**
 * struct irq_desc and friends (include/linux/irqdesc.h, kernel/irq/internals.h): per Linux IRQ number, the
 * software state genirq keeps about one interrupt line — its disable depth, the irqd_* state bits, the istate bits
 * of the flow, the chain of actions, and the lock that serialises the flow handler with the management API.
 */
import type { Engine } from '../../sim/engine.js';
import { Mutex, Spinlock } from '../../sim/locks.js';
import { declareStatistics } from '../../sim/statistics.js';
import type { Call } from '../../sim/task.js';

export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1;
export type IrqReturn = typeof IRQ_NONE | typeof IRQ_HANDLED;

/**
 * An interrupt handler as request_irq takes it: runs in hardirq context, returns IRQ_HANDLED or IRQ_NONE. A named
 * function (its state is the frame or generator it returns), never a closure kept in the action.
 */
/** A handler that needs no step of its own (scheduler_ipi) returns its IrqReturn directly: nothing is allocated. */
export type IrqHandler = (irq: number, devId: unknown) => Call<IrqReturn> | IrqReturn;

// request_irq flags (include/linux/interrupt.h)
export const IRQF_TRIGGER_RISING = 0x1;
export const IRQF_TRIGGER_FALLING = 0x2;
export const IRQF_TRIGGER_HIGH = 0x4;
export const IRQF_TRIGGER_LOW = 0x8;
export const IRQF_SHARED = 0x80;
export const IRQF_ONESHOT = 0x2000;
export const IRQF_NO_AUTOEN = 0x80000;

/**
 * struct irqaction (include/linux/interrupt.h): one handler of a line. A shared line's actions form a chain from
 * desc->action through `next`, in request order.
 */
export class IrqAction {
  readonly handler: IrqHandler;
  readonly devId: unknown;
  readonly name: string;
  readonly flags: number;
  next: IrqAction | null = null;

  constructor(handler: IrqHandler, devId: unknown, name: string, flags: number) {
    this.handler = handler;
    this.devId = devId;
    this.name = name;
    this.flags = flags;
  }
}

/** The chain of `desc`'s actions as a list (for_each_action_of_desc), for reports and tests — not the IRQ path. */
export function actionsOf(desc: IrqDesc): IrqAction[] {
  const out: IrqAction[] = [];
  for (let a = desc.action; a !== null; a = a.next) out.push(a);
  return out;
}

export type IrqTrigger = 'level' | 'edge';

// desc->istate (kernel/irq/internals.h)
export const IRQS_PENDING = 1 << 0;
export const IRQS_REPLAY = 1 << 1;
export const IRQS_WAITING = 1 << 2;
export const IRQS_ONESHOT = 1 << 3;
/** note_interrupt disabled the line as stuck ("nobody cared"); __setup_irq of a new action clears it. */
export const IRQS_SPURIOUS_DISABLED = 1 << 4;

// irq_settings (include/linux/irq.h status flags, set with irq_set_status_flags)
export const IRQ_NOAUTOEN = 1 << 12;

// irq_data state bits (include/linux/irq.h, irqd_*): the kernel keeps them in one word (irq_common_data's
// state_use_accessors), and so does the descriptor here — the flow handler reads one field, not one per flag.
const IRQD_ACTIVATED = 1 << 9;
const IRQD_IRQ_DISABLED = 1 << 16;
const IRQD_IRQ_MASKED = 1 << 17;
const IRQD_IRQ_INPROGRESS = 1 << 18;
const IRQD_FORWARDED_TO_VCPU = 1 << 20;
const IRQD_IRQ_STARTED = 1 << 22;

/** enum irqchip_irq_state (include/linux/interrupt.h). */
export type IrqchipState = 'PENDING' | 'ACTIVE' | 'MASKED' | 'LINE_LEVEL';

/**
 * struct irq_chip, reduced to what the GIC implements. Each callback runs as steps (it returns a generator or a
 * frame, sim/task.ts Call) because it is made of register accesses, each an atomic step with its own cost.
 */
export interface IrqChip {
  readonly name: string;
  irqMask(d: IrqDesc): Call<void>;
  irqUnmask(d: IrqDesc): Call<void>;
  irqEoi(d: IrqDesc): Call<void>;
  /** Re-trigger an edge interrupt lost while disabled; false when the chip cannot. */
  irqRetrigger(d: IrqDesc): Call<boolean>;
  /** The state, or null when the chip cannot report it (the kernel's -EINVAL). */
  irqGetIrqchipState(d: IrqDesc, which: IrqchipState): Call<boolean | null>;
  /** False when the chip cannot set that state. */
  irqSetIrqchipState(d: IrqDesc, which: IrqchipState, val: boolean): Call<boolean>;
  /** irq_set_type: program level/edge; false when the chip refuses (the kernel's -EINVAL). */
  irqSetType(d: IrqDesc, trigger: IrqTrigger): Call<boolean>;
  /**
   * irq_set_affinity: route the line to a CPU of `cpuMask` (bit per CPU); the CPU it chose, or -1 when none fits
   * (the kernel's -EINVAL). Absent when the chip cannot route (irq_do_set_affinity's -EINVAL).
   */
  irqSetAffinity?(d: IrqDesc, cpuMask: number, force: boolean): Call<number>;
  /**
   * irq_set_vcpu_affinity: false when the chip refuses (e.g. an SGI). The GIC's is register-free bookkeeping
   * (a boolean at once); the ITS's sends commands or touches a redistributor (GICv4: a call whose result is the answer).
   */
  irqSetVcpuAffinity(d: IrqDesc, vcpu: unknown): boolean | Call<boolean>;
  /** IRQCHIP_EOI_IF_HANDLED: the chip wants no EOI for an interrupt the flow did not handle. */
  readonly eoiIfHandled: boolean;
}

/**
 * The activate/deactivate callbacks of a hierarchical irq domain (struct irq_domain_ops) for the IRQs it allocated:
 * the ITS MSI domain maps an event (MAPTI) on activation and unmaps it (DISCARD) on deactivation. The GIC's own
 * INTIDs have none.
 */
export interface IrqDomainActivation {
  activate(desc: IrqDesc): Call<void>;
  deactivate(desc: IrqDesc): Call<void>;
}

/**
 * kstat_irqs as the per-CPU memory alloc_desc gets it (alloc_percpu): each CPU's area holds one counter per Linux IRQ
 * number, so the counter a handler run bumps sits next to its neighbours' — not a small array per descriptor, two
 * more objects for every interrupt to touch. Areas are CPU-major and grow with the IRQ numbers handed out; a freed
 * descriptor's counters are cleared, so a number given again (legacy numbering) starts from zero.
 */
export class KstatIrqs {
  /** counts[cpu * stride + irq]. */
  private counts: Int32Array;
  private stride = 64;

  constructor(readonly nrCpus: number) {
    this.counts = new Int32Array(nrCpus * this.stride);
  }

  /** alloc_desc: room for `irq`'s counters (zero: grown areas, and freed counters, are zero). */
  alloc(irq: number): void {
    if (irq < this.stride) return;
    let stride = this.stride;
    while (stride <= irq) stride *= 2;
    const grown = new Int32Array(this.nrCpus * stride);
    for (let c = 0; c < this.nrCpus; c++) {
      grown.set(this.counts.subarray(c * this.stride, (c + 1) * this.stride), c * stride);
    }
    this.counts = grown;
    this.stride = stride;
  }

  /** kstat_incr_irqs_this_cpu. */
  inc(irq: number, cpu: number): void {
    this.counts[cpu * this.stride + irq]!++;
  }

  /** kstat_irqs_cpu. */
  get(irq: number, cpu: number): number {
    return this.counts[cpu * this.stride + irq]!;
  }

  /** free_desc: the descriptor's per-CPU counters go with it. */
  free(irq: number): void {
    for (let c = 0; c < this.nrCpus; c++) this.counts[c * this.stride + irq] = 0;
  }
}
declareStatistics(KstatIrqs, ['counts']);

/** Which flow handler runs this descriptor (desc->handle_irq). */
export type FlowKind = 'fasteoi' | 'percpu_devid';

/**
 * The descriptor embeds its lock (struct irq_desc's raw_spinlock_t lock member): the lock's fields are the start of
 * the descriptor's object, so the flow handler finds both in the same cache lines instead of in a second object per
 * line; `lock` is the descriptor itself, seen as its lock, and the lock's oid is the descriptor's.
 */
export class IrqDesc extends Spinlock {
  // Fields are laid out in declaration order, after the lock's: what handle_fasteoi_irq reads on every interrupt
  // first, set-up-only state after it.
  readonly irq: number;
  /** The GIC INTID (irq_data.hwirq): never the same number space as `irq`. The chip's EOI reads it. */
  readonly hwirq: number;
  readonly chip: IrqChip;
  istate = 0;
  /** The irq_data state bits (IRQD_*), read and written through the accessors below; desc_set_defaults sets these two. */
  irqd = IRQD_IRQ_DISABLED | IRQD_IRQ_MASKED;
  /** desc->action: the first action, null when none is requested. */
  action: IrqAction | null = null;
  /** desc->kstat_irqs: this descriptor's handler runs per CPU live in the host's per-CPU areas. */
  readonly kstatIrqs: KstatIrqs;
  /** Handler runs in total (desc->tot_count). */
  count = 0;
  /** Unhandled runs in the current window (aged back to 1 after HZ/10 without one). */
  irqsUnhandled = 0;
  /** note_interrupt's stuck-line detector (kernel/irq/spurious.c): runs counted since the first unhandled one. */
  irqCount = 0;
  /** The jiffies of the last unhandled run (desc->last_unhandled). */
  lastUnhandled = 0;
  readonly flow: FlowKind;
  trigger: IrqTrigger;
  depth = 1;
  settings = 0;
  /** The vCPU cookie irq_set_vcpu_affinity was given (null when not forwarded). */
  vcpuInfo: unknown = null;
  /** irq_data.chip_data: the chip's per-IRQ data (an LPI's its_device); null for the GIC's own INTIDs. */
  chipData: unknown = null;
  /** The allocating hierarchical domain's activation callbacks (IRQD_ACTIVATED: `activated`). */
  domainOps: IrqDomainActivation | null = null;
  /** desc->request_mutex: serialises request_irq/free_irq. */
  readonly requestMutex: Mutex;
  /** Kernel WARN()s on this descriptor (e.g. unbalanced enable), collected for invariants. */
  readonly warnings: string[] = [];

  constructor(
    engine: Engine,
    kstatIrqs: KstatIrqs,
    irq: number,
    hwirq: number,
    trigger: IrqTrigger,
    chip: IrqChip,
    flow: FlowKind,
  ) {
    super(engine, 'irq_desc.lock');
    this.irq = irq;
    this.hwirq = hwirq;
    this.trigger = trigger;
    this.chip = chip;
    this.flow = flow;
    this.requestMutex = new Mutex(engine, 'irq_desc.request_mutex');
    this.kstatIrqs = kstatIrqs;
    kstatIrqs.alloc(irq);
  }

  /** irqd_irq_inprogress: a CPU is running the handlers (IRQD_IRQ_INPROGRESS). */
  get inprogress(): boolean {
    return (this.irqd & IRQD_IRQ_INPROGRESS) !== 0;
  }
  set inprogress(on: boolean) {
    this.setIrqd(IRQD_IRQ_INPROGRESS, on);
  }

  /** irqd_irq_disabled (IRQD_IRQ_DISABLED). */
  get disabled(): boolean {
    return (this.irqd & IRQD_IRQ_DISABLED) !== 0;
  }
  set disabled(on: boolean) {
    this.setIrqd(IRQD_IRQ_DISABLED, on);
  }

  /** irqd_irq_masked (IRQD_IRQ_MASKED). */
  get masked(): boolean {
    return (this.irqd & IRQD_IRQ_MASKED) !== 0;
  }
  set masked(on: boolean) {
    this.setIrqd(IRQD_IRQ_MASKED, on);
  }

  /** irqd_is_forwarded_to_vcpu (IRQD_FORWARDED_TO_VCPU). */
  get forwardedToVcpu(): boolean {
    return (this.irqd & IRQD_FORWARDED_TO_VCPU) !== 0;
  }
  set forwardedToVcpu(on: boolean) {
    this.setIrqd(IRQD_FORWARDED_TO_VCPU, on);
  }

  /** irqd_is_started (IRQD_IRQ_STARTED). */
  get started(): boolean {
    return (this.irqd & IRQD_IRQ_STARTED) !== 0;
  }
  set started(on: boolean) {
    this.setIrqd(IRQD_IRQ_STARTED, on);
  }

  /** irqd_is_activated (IRQD_ACTIVATED). */
  get activated(): boolean {
    return (this.irqd & IRQD_ACTIVATED) !== 0;
  }
  set activated(on: boolean) {
    this.setIrqd(IRQD_ACTIVATED, on);
  }

  private setIrqd(bit: number, on: boolean): void {
    this.irqd = on ? this.irqd | bit : this.irqd & ~bit;
  }

  /** Handler runs on each CPU (kstat_irqs_cpu), for reports and tests — not the IRQ path. */
  get kstat(): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.kstatIrqs.nrCpus; c++) out.push(this.kstatIrqs.get(this.irq, c));
    return out;
  }

  /** kstat_incr_irqs_this_cpu plus the total. */
  countRun(cpu: number): void {
    this.kstatIrqs.inc(this.irq, cpu);
    this.count++;
  }

  /** desc->lock. */
  get lock(): Spinlock {
    return this;
  }

  /** The name of the first action (what /proc/interrupts shows), '' when none is requested. */
  get actionName(): string {
    return this.action?.name ?? '';
  }

  override toString(): string {
    return `irq ${this.irq} (hwirq ${this.hwirq})`;
  }
}
declareStatistics(IrqDesc, ['count']);
