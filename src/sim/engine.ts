/**
 * The engine: agents (CPUs and hardware timers) take atomic steps, and a Scheduler chooses which enabled agent
 * steps next. The heap holds exactly the enabled agents, keyed by the time each could step; the TimedScheduler
 * takes the earliest, a checker may take whichever it likes. Model code never sees which scheduler drives it.
 *
 * CPU steps follow the exception model of an arm64 core running KVM:
 * - host mode: if nIRQ is asserted and PSTATE.I is clear, the next step is the exception entry; the CPU's IRQ
 *   task (the kernel's IRQ vector) then runs until it yields eret(); otherwise the current thread steps.
 * - guest mode: a physical IRQ always exits to the hypervisor (HCR_EL2.IMO routes it to EL2), whatever the guest's
 *   mask; a virtual IRQ is taken by the guest when its PSTATE.I is clear; guest traps exit with their reason.
 */

import { Clock } from './clock.js';
import {
  C_CTX_SWITCH,
  C_ERET,
  C_EXC_ENTRY,
  C_GUEST_EXIT,
  C_NONE,
  C_VEXC_ENTRY,
  C_WFI_WAKE,
  CostTable,
} from './costs.js';
import { Cpu, EXIT_IRQ, EXIT_TRAP, GuestCpu } from './cpu.js';
import { ModelError } from './errors.js';
import { EventHeap } from './eventHeap.js';
import { beginFootprint, footprintSet, touch, touchRead } from './footprint.js';
import { type Boundary, Frame } from './frame.js';
import { Lockdep } from './lockdep.js';
import { RandomStreams } from './prng.js';
import {
  idle as idleOp,
  OP_BLOCK,
  OP_ENTER_GUEST,
  OP_ERET,
  OP_IDLE,
  OP_RESCHED,
  OP_SPIN,
  OP_STEP,
  OP_TRAP,
  setCurrent,
  TASK_BLOCKED,
  TASK_DONE,
  TASK_IN_GUEST,
  TASK_RUNNABLE,
  TASK_WFI,
  Task,
  type TaskBody,
  type TaskKind,
} from './task.js';

/**
 * The CPU whose task step is executing, and its engine's costs: what charge() adds to. Fields of a constant object,
 * declared before the code that uses them: stores to a module-level `let` cost several ns each (frame.ts).
 */
const stepping: { cpu: Cpu | null; costs: CostTable | null } = { cpu: null, costs: null };

const STOP_EMPTY = 0;
const STOP_END = 1;
const STOP_LIMIT = 2;
const STOP_PRED = 3;

/** A hardware event source: a long-lived object whose fire() runs atomically at the event's time. */
export interface TimerHandler {
  readonly name: string;
  fire(arg: number): void;
}

/** The agents that could step now: the engine's heap, or a checker's filtered list of them. */
export interface EnabledAgents {
  readonly size: number;
  /** The i-th enabled agent (no particular order). */
  at(i: number): number;
  /** The agent whose step comes first in virtual time (equal times: first enabled), or -1 when none is. */
  earliest(): number;
}

/**
 * Chooses which enabled agent steps next: the timed simulator (earliest first), the checker's DFS and PCT, scripted
 * tests. The engine never asks what kind of scheduler it has: one that declares `earliestFirst` promises to always
 * choose `enabled.earliest()`, which lets the engine run its heap-free loop without asking it each step.
 */
export interface Scheduler<E extends EnabledAgents = EnabledAgents> {
  /** The next agent among `enabled` (non-empty), or -1 to stop the run. */
  choose(enabled: E, engine: Engine): number;
  readonly earliestFirst?: boolean;
}

/** Earliest step first; equal times in insertion order. */
export class TimedScheduler implements Scheduler {
  readonly earliestFirst = true;
  choose(enabled: EnabledAgents): number {
    return enabled.earliest();
  }
}

export interface EngineOptions {
  cpus: number;
  hz?: number;
  seed?: number;
  costs?: Readonly<Record<string, number>>;
}

/**
 * What a step did, for the checker and for replays. Under the TimedScheduler's loop (runTimed) the CPU that just
 * stepped may be held out of `engine.heap` while onStep runs.
 */
export interface StepObserver {
  onStep(engine: Engine, agent: number): void;
  /**
   * Called just before an agent steps (after the scheduler chose it, or when the timed loop steps the held CPU
   * again without asking the scheduler): what a wrapping scheduler's pick() would see, without disabling the loop.
   */
  beforeStep?(engine: Engine, agent: number): void;
}

export class Engine {
  now = 0;
  steps = 0;
  readonly cpus: Cpu[];
  readonly heap = new EventHeap();
  readonly costs: CostTable;
  readonly clock: Clock;
  readonly random: RandomStreams;
  readonly lockdep = new Lockdep();
  scheduler: Scheduler = new TimedScheduler();
  observer: StepObserver | null = null;
  /** Record each step's footprint (footprint.ts) for a checker; off under the timed simulator. */
  recordFootprints = false;

  private nextOid = 0;
  private readonly oidNames: string[] = [];
  private nextPid = 1;
  private nextTaskId = 0;
  readonly tasks: Task[] = [];

  // The timed loop's CPU held out of the heap between its consecutive steps, and its would-be heap key.
  private heldCpu = -1;
  private heldQueued = false;
  private heldTime = 0;
  private heldSeq = 0;

  // Timers are agents numbered after the CPUs, pooled so that arming one allocates nothing.
  private timerHandler: (TimerHandler | null)[] = [];
  private timerArg = new Float64Array(16);
  private readonly freeTimers: number[] = [];

  constructor(opts: EngineOptions) {
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1 || opts.cpus > 64) {
      throw new RangeError(`cpus must be an integer in 1..64, got ${opts.cpus}`);
    }
    this.clock = new Clock(opts.hz ?? 2_000_000_000);
    this.random = new RandomStreams(opts.seed ?? 1);
    this.costs = new CostTable(opts.costs);
    this.cpus = [];
    for (let i = 0; i < opts.cpus; i++) {
      const idle = this.newTask(0, `swapper/${i}`, 'thread', i);
      idle.gen = new IdleLoop();
      idle.maskCtx = null;
      const cpu = new Cpu(i, idle, this.newOid(`cpu${i}`), this.newOid(`cpu${i}.irq`), this.newOid(`cpu${i}.virq`));
      idle.maskCtx = cpu;
      this.cpus.push(cpu);
      this.refresh(cpu);
    }
  }

  // ---- objects, tasks and timers ------------------------------------------------------------------------------

  /** A shared-object id for checker independence; the name is for reports. */
  newOid(name: string): number {
    this.oidNames.push(name);
    return this.nextOid++;
  }

  oidName(oid: number): string {
    return this.oidNames[oid] ?? `oid${oid}`;
  }

  allocPid(): number {
    return this.nextPid++;
  }

  private newTask(pid: number, comm: string, kind: TaskKind, cpu: number): Task {
    const t = new Task(this.nextTaskId++, pid, comm, kind);
    t.cpu = cpu;
    this.tasks.push(t);
    return t;
  }

  /** Create a host thread pinned to a CPU and make it runnable. */
  spawn(comm: string, cpu: number, gen: TaskBody | null, pid = this.allocPid()): Task {
    const c = this.cpu(cpu);
    const t = this.newTask(pid, comm, 'thread', cpu);
    t.maskCtx = c;
    if (gen) {
      t.gen = gen;
      this.enqueue(c, t);
    } else {
      t.state = TASK_DONE;
    }
    return t;
  }

  /** Run a new body on an existing (finished) thread: a process thread issuing its next syscall. */
  restart(t: Task, gen: TaskBody): void {
    t.start(gen);
    this.enqueue(this.cpu(t.cpu), t);
  }

  /** Install the IRQ vector of a CPU: a task that loops forever, handling interrupts and yielding eret(). */
  setIrqVector(cpu: number, comm: string, gen: TaskBody): Task {
    const c = this.cpu(cpu);
    const t = this.newTask(0, comm, 'hardirq', cpu);
    t.gen = gen;
    t.maskCtx = c;
    c.irqTask = t;
    return t;
  }

  /** Create the guest side of a vCPU: its kernel thread and its IRQ vector, entered by `host`. */
  createGuestCpu(name: string, host: Task, thread: TaskBody, irqVector: TaskBody): GuestCpu {
    const th = this.newTask(host.pid, name, 'guest', host.cpu);
    const irq = this.newTask(host.pid, name, 'guest-irq', host.cpu);
    th.gen = thread;
    irq.gen = irqVector;
    const g = new GuestCpu(name, host, th, irq);
    th.maskCtx = g;
    irq.maskCtx = g;
    return g;
  }

  /** Arm a hardware event at absolute time t (cycles). Returns a timer id for cancelTimer. */
  at(t: number, handler: TimerHandler, arg = 0): number {
    let id = this.freeTimers.pop();
    if (id === undefined) {
      id = this.cpus.length + this.timerHandler.length;
      this.timerHandler.push(null);
      if (this.timerArg.length < this.timerHandler.length) {
        const a = new Float64Array(this.timerArg.length * 2);
        a.set(this.timerArg);
        this.timerArg = a;
      }
    }
    const slot = id - this.cpus.length;
    this.timerHandler[slot] = handler;
    this.timerArg[slot] = arg;
    this.heap.push(id, Math.max(t, this.now));
    return id;
  }

  after(dt: number, handler: TimerHandler, arg = 0): number {
    return this.at(this.now + dt, handler, arg);
  }

  cancelTimer(id: number): void {
    const slot = id - this.cpus.length;
    if (slot < 0 || this.timerHandler[slot] == null) return;
    this.heap.remove(id);
    this.timerHandler[slot] = null;
    this.freeTimers.push(id);
  }

  isTimer(agent: number): boolean {
    return agent >= this.cpus.length;
  }

  timerName(agent: number): string {
    return this.timerHandler[agent - this.cpus.length]?.name ?? '?';
  }

  cpu(i: number): Cpu {
    const c = this.cpus[i];
    if (!c) throw new RangeError(`no CPU ${i} (host has ${this.cpus.length})`);
    return c;
  }

  // ---- signals from hardware and wakeups ---------------------------------------------------------------------

  /** The GIC CPU interface drives nIRQ of a CPU. */
  setIrqLine(cpu: number, level: boolean): void {
    const c = this.cpu(cpu);
    if (c.irqLine === level) return;
    c.irqLine = level;
    touch(c.irqOid);
    this.requeue(c);
  }

  /** The GIC virtual CPU interface drives nVIRQ of a CPU (meaningful while a guest is loaded there). */
  setVirqLine(cpu: number, level: boolean): void {
    const c = this.cpu(cpu);
    if (c.virqLine === level) return;
    c.virqLine = level;
    touch(c.virqOid);
    this.requeue(c);
  }

  /** Make a blocked or spinning task runnable again (wait queues and lock releases call this). */
  wake(t: Task): void {
    if (t.state === TASK_RUNNABLE || t.state === TASK_DONE) return;
    const c = this.cpu(t.cpu);
    if (t.state === TASK_BLOCKED) {
      t.state = TASK_RUNNABLE;
      t.costId = C_NONE;
      if (t.kind === 'thread') this.enqueue(c, t);
      return;
    }
    // A spinner keeps its CPU: it just becomes able to retry.
    t.state = TASK_RUNNABLE;
    this.refresh(c);
  }

  /** Put a runnable thread on its CPU's run queue, waking the CPU if it idles. */
  private enqueue(c: Cpu, t: Task): void {
    t.state = TASK_RUNNABLE;
    if (c.current === t) {
      this.refresh(c);
      return;
    }
    c.runq.push(t);
    c.needResched = true;
    if (c.current === c.idle && c.idle.state === TASK_WFI) c.idle.state = TASK_RUNNABLE;
    this.refresh(c);
  }

  // ---- enabledness ---------------------------------------------------------------------------------------------

  /** Whether the CPU has a step to take now: an exception to enter, or a runnable task on top of its stack. */
  cpuEnabled(c: Cpu): boolean {
    const g = c.guest;
    if (g !== null) {
      if (c.irqLine) return true;
      if (c.virqLine && !g.irqMasked && !g.inIrq) return true;
      return (g.inIrq ? g.irqTask : g.thread).state === TASK_RUNNABLE;
    }
    if (c.irqLine && !c.irqMasked && !c.inIrq && c.irqTask !== null) return true;
    const top = c.inIrq ? c.irqTask! : c.current;
    return top.state === TASK_RUNNABLE;
  }

  /** Re-evaluate whether a CPU belongs in the heap. Call after anything that can change cpuEnabled(). */
  refresh(c: Cpu): void {
    touch(c.oid);
    this.requeue(c);
  }

  /** refresh() without declaring the CPU's run state: a change of an input line declares the line instead. */
  private requeue(c: Cpu): void {
    if (c.id === this.heldCpu) {
      this.refreshHeld(c);
      return;
    }
    const en = this.cpuEnabled(c);
    const queued = this.heap.has(c.id);
    if (en && !queued) this.heap.push(c.id, Math.max(this.now, c.readyAt));
    else if (!en && queued) this.heap.remove(c.id);
  }

  /**
   * refresh() of the CPU the timed loop is stepping: keep its heap key outside the heap, with the sequence number a
   * push now would have had, so the loop can compare it with the heap's minimum instead of pushing and popping.
   */
  private refreshHeld(c: Cpu): void {
    const en = this.cpuEnabled(c);
    if (en && !this.heldQueued) {
      this.heldQueued = true;
      this.heldTime = Math.max(this.now, c.readyAt);
      this.heldSeq = this.heap.takeSeq();
    } else if (!en && this.heldQueued) this.heldQueued = false;
  }

  // ---- stepping ------------------------------------------------------------------------------------------------

  /** Execute one step of an agent that the scheduler picked (it must be queued). */
  stepAgent(agent: number): void {
    this.observer?.beforeStep?.(this, agent);
    const t = this.heap.timeOf(agent);
    this.heap.remove(agent);
    if (t > this.now) this.now = t;
    this.steps++;
    beginFootprint(this.recordFootprints);
    if (agent < this.cpus.length) {
      const c = this.cpus[agent]!;
      c.steps++;
      touch(c.oid);
      this.stepCpu(c);
      this.refresh(c);
    } else {
      const slot = agent - this.cpus.length;
      const h = this.timerHandler[slot]!;
      const arg = this.timerArg[slot]!;
      this.timerHandler[slot] = null;
      this.freeTimers.push(agent);
      h.fire(arg);
    }
    if (this.observer !== null) this.observer.onStep(this, agent);
  }

  /**
   * The footprint of the step just taken (recordFootprints on): the sorted oids it touched, or null when it touched
   * everything. A CPU step always touches its CPU; a task step the objects its op() declared for it, plus whatever
   * ran in it touched.
   */
  footprint(): number[] | null {
    return footprintSet();
  }

  /** The object the next step of `agent` polls (its task yielded cpuRelax), or -1 when that step is not a poll. */
  nextPoll(agent: number): number {
    const t = this.nextTask(agent);
    return t?.polling && t.nTouch > 0 ? t.touch[0]! : -1;
  }

  /** The task the next step of a CPU agent resumes, or null (an exception transition, or a timer). */
  nextTask(agent: number): Task | null {
    const c = this.cpus[agent];
    if (c === undefined) return null;
    const g = c.guest;
    if (g !== null) {
      if (c.irqLine) return null;
      if (c.virqLine && !g.irqMasked && !g.inIrq) return null;
      return g.inIrq ? g.irqTask : g.thread;
    }
    if (c.irqLine && !c.irqMasked && !c.inIrq && c.irqTask !== null) return null;
    return c.inIrq ? c.irqTask! : c.current;
  }

  private stepCpu(c: Cpu): void {
    const g = c.guest;
    if (g !== null) {
      // a physical IRQ exits the guest whatever the guest masks; a virtual one is taken only where the guest can
      touch(c.irqOid);
      if (!g.irqMasked && !g.inIrq) touch(c.virqOid);
      if (c.irqLine) {
        this.exitGuest(c, g, EXIT_IRQ, 0);
        this.charge(c, C_GUEST_EXIT);
        return;
      }
      if (c.virqLine && !g.irqMasked && !g.inIrq) {
        g.inIrq = true;
        g.irqMasked = true;
        this.charge(c, C_VEXC_ENTRY);
        return;
      }
      this.runGuestTask(c, g, g.inIrq ? g.irqTask : g.thread);
      return;
    }
    if (!c.irqMasked && !c.inIrq && c.irqTask !== null) touch(c.irqOid); // only here can the line change what runs
    if (c.irqLine && !c.irqMasked && !c.inIrq && c.irqTask !== null) {
      c.inIrq = true;
      c.irqMasked = true;
      c.irqs++;
      this.charge(c, C_EXC_ENTRY);
      return;
    }
    this.runHostTask(c, c.inIrq ? c.irqTask! : c.current);
  }

  private charge(c: Cpu, costId: number): void {
    c.readyAt = this.now + this.costs.get(costId);
  }

  /** Resume a task for one step; returns the op it yielded, or -1 when its body returned or threw. */
  private resume(c: Cpu, t: Task): number {
    const cost = this.costs.get(t.costId);
    c.readyAt = this.now + cost;
    t.cpu = c.id;
    const v = t.resumeValue;
    t.resumeValue = undefined;
    // a poll (cpuRelax) only re-reads what it waits for
    if (this.recordFootprints) {
      if (t.polling) for (let i = 0; i < t.nTouch; i++) touchRead(t.touch[i]!);
      else for (let i = 0; i < t.nTouch; i++) touch(t.touch[i]!);
    }
    stepping.cpu = c;
    stepping.costs = this.costs;
    setCurrent(t);
    let done: boolean;
    let value: unknown;
    try {
      // a leaf was left by the last resume of this same body (start() clears it): the body is not looked at, as
      // reading its class on every step was a cache miss on an object nothing else touches
      const last = t.genLeaf;
      if (last === null) {
        const g = t.gen!;
        if (g !== t.genSeen) {
          t.genSeen = g;
          t.genFrame = Frame.plain(g);
        }
      }
      const f = t.genFrame;
      if (f !== null) {
        const leaf = Frame.resume(f, last, v);
        done = leaf === null;
        value = Frame.lastValue();
        // stored only when it moved: the write barrier of a young frame into an old task is not free
        if (leaf !== last) t.genLeaf = leaf;
      } else {
        const r = t.gen!.next(v);
        done = r.done === true;
        value = r.value;
      }
    } catch (e) {
      setCurrent(null);
      stepping.cpu = null;
      t.genLeaf = null;
      this.finish(t, undefined, e);
      return -1;
    }
    setCurrent(null);
    stepping.cpu = null;
    if (done) {
      this.finish(t, value, undefined);
      return -1;
    }
    return value as number;
  }

  private finish(t: Task, result: unknown, error: unknown): void {
    t.state = TASK_DONE;
    t.result = result;
    t.error = error;
    if (error !== undefined && !t.catchErrors) {
      const why = error instanceof Error ? error.message : String(error);
      throw new ModelError(`task ${t} failed at cycle ${this.now}: ${why}`, { cause: error });
    }
    if (t.held.length > 0) {
      throw new ModelError(`task ${t} exited holding ${t.held.map((l) => l.name).join(', ')}`);
    }
    if (t.kind !== 'thread') throw new ModelError(`${t.kind} task ${t} returned: IRQ vectors and guest threads loop`);
    if (t.onExit !== null) t.onExit.taskExited(t);
  }

  /**
   * One step of a host task. The common end (a plain step) returns here; the rest is hostOp's, so that this stays
   * small enough for V8 to inline into the loop (a function of more than 460 bytes of bytecode never is).
   */
  private runHostTask(c: Cpu, t: Task): void {
    const o = this.resume(c, t);
    if (o !== OP_STEP && o !== OP_SPIN) this.hostOp(c, t, o);
  }

  /** What a host task's step that was not a plain one (-1: its body ended) does to its CPU. */
  private hostOp(c: Cpu, t: Task, o: number): void {
    if (o === -1) {
      if (t === c.current) this.switchFrom(c);
      return;
    }
    switch (o) {
      case OP_BLOCK:
        if (t.kind === 'hardirq') throw new ModelError(`BUG: scheduling while atomic: ${t} blocked in hardirq context`);
        if (c.irqMasked) throw new ModelError(`BUG: ${t} blocked with interrupts disabled`);
        if (holdsSpinlock(t)) throw new ModelError(`BUG: scheduling while atomic: ${t} blocked holding a spinlock`);
        this.switchFrom(c);
        return;
      case OP_IDLE:
        if (c.runq.length > 0) this.switchFrom(c);
        else {
          t.state = TASK_WFI;
          c.needResched = false;
        }
        return;
      case OP_RESCHED:
        if (c.runq.length > 0) {
          c.runq.push(t);
          this.switchFrom(c);
        }
        return;
      case OP_ERET:
        if (!c.inIrq || t !== c.irqTask) throw new ModelError(`${t} returned from an exception it was not handling`);
        c.inIrq = false;
        c.irqMasked = false;
        this.charge(c, C_ERET);
        return;
      case OP_ENTER_GUEST: {
        const g = t.enterGuest;
        if (!(g instanceof GuestCpu) || g.host !== t) throw new ModelError(`${t} entered a guest it does not own`);
        if (c.inIrq) throw new ModelError(`${t} entered a guest from hardirq context`);
        t.state = TASK_IN_GUEST;
        g.loadedOn = c.id;
        c.guest = g;
        return;
      }
      default:
        throw new ModelError(`${t} yielded op ${o}, which a host task cannot`);
    }
  }

  /** One step of a guest task (small, as runHostTask, with guestOp for the rest). */
  private runGuestTask(c: Cpu, g: GuestCpu, t: Task): void {
    const o = this.resume(c, t);
    if (o !== OP_STEP && o !== OP_SPIN) this.guestOp(c, g, t, o);
  }

  /** What a guest task's step that was not a plain one does: an exception return or a trap to the hypervisor. */
  private guestOp(c: Cpu, g: GuestCpu, t: Task, o: number): void {
    switch (o) {
      case OP_ERET:
        if (!g.inIrq || t !== g.irqTask) throw new ModelError(`${t} returned from an exception it was not handling`);
        g.inIrq = false;
        g.irqMasked = false;
        this.charge(c, C_ERET);
        return;
      case OP_TRAP:
        this.exitGuest(c, g, EXIT_TRAP, t.trapReason);
        g.exitArg = t.trapArg;
        g.trapTask = t;
        this.charge(c, C_GUEST_EXIT);
        return;
      default:
        throw new ModelError(`guest task ${t} yielded op ${o}, which guest code cannot`);
    }
  }

  private exitGuest(c: Cpu, g: GuestCpu, reason: number, trapReason: number): void {
    g.exitReason = reason === EXIT_TRAP ? trapReason : -1;
    g.loadedOn = -1;
    c.guest = null;
    c.exits++;
    g.host.state = TASK_RUNNABLE;
    g.host.resumeValue = reason;
  }

  /** The current thread stopped running (blocked, idled, yielded or exited): switch to the next queued thread. */
  private switchFrom(c: Cpu): void {
    const next = c.runq.shift();
    c.needResched = false;
    if (next !== undefined) {
      c.current = next;
      c.readyAt += this.costs.get(C_CTX_SWITCH);
      return;
    }
    c.current = c.idle;
    if (c.idle.state !== TASK_RUNNABLE) c.idle.state = TASK_RUNNABLE;
    c.readyAt += this.costs.get(C_WFI_WAKE);
  }

  // ---- running -------------------------------------------------------------------------------------------------

  /** Run until simulated time reaches now + cycles (timed scheduling only makes sense here). */
  run(cycles: number): void {
    const end = this.now + cycles;
    if (this.timed()) this.runTimed(end, Number.POSITIVE_INFINITY, null);
    else {
      for (;;) {
        const a = this.scheduler.choose(this.heap, this);
        if (a < 0 || this.heap.timeOf(a) > end) break;
        this.stepAgent(a);
      }
    }
    if (end > this.now) this.now = end;
  }

  /** Run until nothing is enabled or scheduled. Gives up with a ModelError if that takes more than maxSteps. */
  settle(maxSteps = 50_000_000): void {
    const limit = this.steps + maxSteps;
    for (;;) {
      if (this.timed() && this.runTimed(Number.POSITIVE_INFINITY, limit, null) !== STOP_LIMIT) return;
      const a = this.scheduler.choose(this.heap, this);
      if (a < 0) return;
      if (this.steps >= limit) {
        throw new ModelError(
          `the model did not quiesce within ${maxSteps} steps (cycle ${this.now}); still enabled: ${this.describeEnabled()}`,
        );
      }
      this.stepAgent(a);
    }
  }

  /** Run until pred() holds; throws if the system quiesces first (a deadlock for whoever waits on pred). */
  runUntil(pred: () => boolean, what: string, maxSteps = 50_000_000): void {
    const limit = this.steps + maxSteps;
    if (this.timed()) this.runTimed(Number.POSITIVE_INFINITY, limit, pred);
    while (!pred()) {
      const a = this.scheduler.choose(this.heap, this);
      if (a < 0) throw new ModelError(`${what} can never happen: nothing is runnable at cycle ${this.now}`);
      if (this.steps >= limit) throw new ModelError(`${what} did not happen within ${maxSteps} steps`);
      this.stepAgent(a);
    }
  }

  /** An earliest-first scheduler drives the engine (any other sees every choice: no shortcut for it). */
  private timed(): boolean {
    return this.scheduler.earliestFirst === true && this.heldCpu < 0;
  }

  /**
   * The TimedScheduler's loop: take the heap's minimum until it lies after `end`, `limit` steps are done, `pred`
   * holds or nothing is enabled. A CPU whose next step still sorts before the heap's minimum — same (time, seq) key
   * it would have been pushed with — steps again at once without the heap round trip; the order of steps is exactly
   * the one peek() would give. Returns why it stopped; the caller re-checks the condition in its own loop.
   */
  private runTimed(end: number, limit: number, pred: (() => boolean) | null): number {
    const heap = this.heap;
    const nCpus = this.cpus.length;
    for (;;) {
      if (pred?.()) return STOP_PRED;
      const a = heap.peek();
      if (a < 0) return STOP_EMPTY;
      let t = heap.timeOf(a);
      if (t > end) return STOP_END;
      if (this.steps >= limit) return STOP_LIMIT;
      if (a >= nCpus) {
        this.stepAgent(a);
        continue;
      }
      const c = this.cpus[a]!;
      heap.remove(a);
      this.heldCpu = a;
      this.heldQueued = false;
      // the heap's minimum key, read again only when the heap changed (its arrays are cold after a step's model code)
      let seen = -1;
      let minT = 0;
      let minSeq = 0;
      try {
        for (;;) {
          if (this.observer !== null) this.observer.beforeStep?.(this, a);
          if (t > this.now) this.now = t;
          this.steps++;
          c.steps++;
          beginFootprint(this.recordFootprints);
          touch(c.oid);
          this.stepCpu(c);
          this.refreshHeld(c);
          if (this.observer !== null) this.observer.onStep(this, a);
          if (!this.heldQueued) break;
          t = this.heldTime;
          if (heap.version !== seen) {
            seen = heap.version;
            const top = heap.peek();
            minT = top < 0 ? Number.POSITIVE_INFINITY : heap.timeOf(top);
            minSeq = top < 0 ? 0 : heap.seqOf(top);
          }
          // the held key (t, heldSeq) sorts before every queued one: the timed scheduler would take it next
          const before = t < minT || (t === minT && this.heldSeq < minSeq);
          if (t > end || this.steps >= limit || !before || pred?.()) break;
          this.heldQueued = false;
        }
      } finally {
        this.heldCpu = -1;
        if (this.heldQueued) heap.pushKeyed(a, this.heldTime, this.heldSeq);
      }
    }
  }

  describeAgent(agent: number): string {
    if (agent >= this.cpus.length) return `timer:${this.timerName(agent)}`;
    const c = this.cpus[agent]!;
    if (c.guest) return `cpu${agent}(guest ${c.guest.name})`;
    return `cpu${agent}(${c.inIrq ? 'hardirq' : c.current.toString()})`;
  }

  describeEnabled(): string {
    const names: string[] = [];
    for (let i = 0; i < this.heap.size; i++) names.push(this.describeAgent(this.heap.at(i)));
    return names.sort().join(', ') || 'nothing';
  }
}

/** Whether `t` holds a spinning lock (a loop, not `held.some`: its closure was an allocation per blocking step). */
function holdsSpinlock(t: Task): boolean {
  const held = t.held;
  for (let i = 0; i < held.length; i++) if (held[i]!.spin) return true;
  return false;
}

/**
 * The code running in the current step costs `costId` more cycles: the CPU running it finishes the step that much
 * later. Synchronous code that cannot yield (the vGIC's fold reading the physical GIC) charges what it does as it
 * does it. Outside a task step — a hardware timer's fire(), set-up code — it charges nothing: hardware acts in zero
 * time and set-up is not timed.
 */
export function charge(costId: number): void {
  const c = stepping.cpu;
  if (c !== null) c.readyAt += stepping.costs!.get(costId);
}

/** The idle thread's body (kernel/sched/idle.c do_idle): `for (;;) yield idle();`, a frame of one state. */
class IdleLoop extends Frame<never> {
  protected step(): Boundary {
    return this.yield_(idleOp());
  }
}
