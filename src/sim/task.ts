/**
 * Cooperative tasks. Model code is written as frames (frame.ts) or generator functions; each boundary (a frame's
 * yield_, a generator's `yield`) is atomic. The value yielded is an op telling the engine what happens at that
 * boundary; for a plain step, `op(cost, objects...)` first records on the current task the cost of the code that
 * follows the yield and the shared objects it will touch, so the engine can charge time and a checker can compute
 * independence. Nothing here allocates per step.
 */
import { C_NONE } from './costs.js';
import { ModelError } from './errors.js';
import type { Frame } from './frame.js';

/** The code after this yield is one step: its cost and touched objects were set by op(). */
export const OP_STEP = 0;
/** The task has queued itself on a wait queue and sleeps; the CPU switches to another thread. */
export const OP_BLOCK = 1;
/** The task spins on a held spinlock: it keeps its CPU but cannot progress until the lock is released. */
export const OP_SPIN = 2;
/** The idle thread: run a queued thread if there is one, else WFI until an interrupt or a wakeup. */
export const OP_IDLE = 3;
/** A vCPU thread enters the guest (`task.enterGuest` names which); it resumes after the next exit. */
export const OP_ENTER_GUEST = 4;
/** Exception return from a (host or guest) IRQ handler to the interrupted context. */
export const OP_ERET = 5;
/** Guest code traps to the hypervisor (`task.trapReason`); it resumes when the vCPU re-enters. */
export const OP_TRAP = 6;
/** cond_resched(): let a queued thread on this CPU run first. */
export const OP_RESCHED = 7;

export type Op = number;
/** A task body; R is what the generator returns (a syscall's result, or nothing). */
export type TaskGen<R = unknown> = Generator<Op, R, unknown>;
/** What a task runs: a generator, or a state machine with the iterator protocol (frame.ts). */
export type TaskBody = Iterator<Op, unknown, unknown>;
/**
 * What a kernel function that can yield returns: a generator or a Frame (frame.ts). A generator caller runs it with
 * `yield*`, a frame with `call()`; interfaces whose implementations are being converted to frames return this.
 */
export type Call<R = void> = Iterator<Op, R, unknown> & Iterable<Op, R, unknown>;

export const TASK_RUNNABLE = 0;
export const TASK_BLOCKED = 1;
export const TASK_SPINNING = 2;
export const TASK_WFI = 3;
export const TASK_IN_GUEST = 4;
export const TASK_DONE = 5;

export type TaskKind = 'thread' | 'hardirq' | 'guest' | 'guest-irq';

/** Anything whose interrupts a task can mask: a host CPU (PSTATE.I at EL1/EL2) or a guest vCPU context. */
export interface IrqMaskContext {
  irqMasked: boolean;
}

/** What a task may hold (for lockdep and the "lock held at exit" check). */
export interface HeldLock {
  readonly name: string;
  /** Lockdep class id. */
  readonly cls: number;
  /** Spinning locks forbid sleeping while held. */
  readonly spin: boolean;
}

export const MAX_TOUCH = 4;

/** The running task, in a constant object's field (a module-level `let` is slower to write: frame.ts). */
const running: { task: Task | null } = { task: null };

/** The task whose step is executing (the kernel's `current`). */
export function current(): Task {
  const t = running.task;
  if (t === null) throw new ModelError('current() called outside a task step');
  return t;
}

export function currentOrNull(): Task | null {
  return running.task;
}

export function setCurrent(t: Task | null): void {
  running.task = t;
}

/** Who is told that a task finished: an object with a method, not a closure (model state stays plain data). */
export interface TaskExitHook {
  taskExited(t: Task): void;
}

export class Task {
  gen: TaskBody | null = null;
  /** `gen` as a plain frame (Frame.plain) the engine resumes directly, or null; worked out for `genSeen`. */
  genFrame: Frame<unknown> | null = null;
  genSeen: TaskBody | null = null;
  /** The innermost frame of `genFrame`'s chain, where its next step runs (Frame.resume), or null to find it. */
  genLeaf: Frame<unknown> | null = null;
  state = TASK_RUNNABLE;
  /** Cost id and touched objects of the step that runs when this task is next resumed. */
  costId = C_NONE;
  nTouch = 0;
  readonly touch = new Int32Array(MAX_TOUCH);
  /** The next step re-reads state in a busy-wait loop (cpu_relax): a checker treats repeats as blocked. */
  polling = false;
  /** Host CPU (or guest vCPU context) whose IRQ mask this task's local_irq_* calls act on. */
  maskCtx: IrqMaskContext | null = null;
  /** Index of the physical CPU the task last ran on (-1 before it first runs). */
  cpu = -1;
  readonly held: HeldLock[] = [];
  /** Set before yielding OP_ENTER_GUEST / OP_TRAP. */
  enterGuest: unknown = null;
  trapReason = 0;
  trapArg = 0;
  /** Value handed to the generator on its next resume (e.g. a trap's emulation result). */
  resumeValue: unknown = undefined;
  result: unknown = undefined;
  error: unknown = undefined;
  /** A task that runs syscalls keeps the error its generator throws (an ioctl's errno) instead of crashing the run. */
  catchErrors = false;
  /** current->in_eventfd: nesting depth of eventfd wakeups this task is running (fs/eventfd.c). */
  inEventfd = 0;
  /** Told when the task's body returned or threw (a process thread finishing its syscall). */
  onExit: TaskExitHook | null = null;
  /** `comm-pid`, built once: lockdep names the task on every acquisition. */
  private readonly label: string;

  constructor(
    readonly id: number,
    readonly pid: number,
    readonly comm: string,
    readonly kind: TaskKind,
  ) {
    this.label = `${comm}-${pid}`;
  }

  get done(): boolean {
    return this.state === TASK_DONE;
  }

  /** Give the task a new body (a thread reused for successive syscalls). */
  start(gen: TaskBody): void {
    if (this.gen !== null && this.state !== TASK_DONE) throw new ModelError(`task ${this.comm} is still running`);
    this.gen = gen;
    this.genSeen = null;
    this.genFrame = null;
    this.genLeaf = null;
    this.state = TASK_RUNNABLE;
    this.costId = C_NONE;
    this.nTouch = 0;
    this.result = undefined;
    this.error = undefined;
  }

  toString(): string {
    return this.label;
  }
}

/** Declare the next step: its cost and up to three shared objects (oids) it touches. */
export function op(costId: number, a = -1, b = -1, c = -1): Op {
  const t = running.task!;
  t.costId = costId;
  t.polling = false;
  let n = 0;
  if (a >= 0) t.touch[n++] = a;
  if (b >= 0) t.touch[n++] = b;
  if (c >= 0) t.touch[n++] = c;
  t.nTouch = n;
  return OP_STEP;
}

/** cond_resched(): yield the CPU to a queued thread, if there is one. */
export function resched(): Op {
  const t = running.task!;
  t.costId = C_NONE;
  t.nTouch = 0;
  return OP_RESCHED;
}

/** Return from an exception handler. */
export function eret(): Op {
  const t = running.task!;
  t.costId = C_NONE;
  t.nTouch = 0;
  return OP_ERET;
}

/** The idle loop's body: `for (;;) yield idle();` */
export function idle(): Op {
  const t = running.task!;
  t.costId = C_NONE;
  t.nTouch = 0;
  return OP_IDLE;
}

/** Guest code traps to the hypervisor with a reason (and an argument, e.g. an MMIO address). */
export function trap(reason: number, arg = 0): Op {
  const t = running.task!;
  t.trapReason = reason;
  t.trapArg = arg;
  t.costId = C_NONE;
  t.nTouch = 0;
  return OP_TRAP;
}

/** A vCPU thread hands its CPU to the guest context `guest` until the next exit. */
export function enterGuest(guest: unknown): Op {
  const t = running.task!;
  t.enterGuest = guest;
  t.costId = C_NONE;
  t.nTouch = 0;
  return OP_ENTER_GUEST;
}

/**
 * One iteration of a busy-wait (`while (cond) cpu_relax();`): a step that re-reads `oid`. The kernel polls here
 * (synchronize_irq waiting for a handler or for the GIC active bit); the timed scheduler charges each poll, and a
 * checker recognises a task that only polls as a spin loop rather than as progress.
 */
export function cpuRelax(costId: number, oid: number): Op {
  const t = running.task!;
  t.costId = costId;
  t.nTouch = 1;
  t.touch[0] = oid;
  t.polling = true;
  return OP_STEP;
}
