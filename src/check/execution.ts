/**
 * One schedule of a checkable scenario, driven step by step outside the time order: the choosable agents at each
 * point, the touched objects of each executed step (the basis of the independence relation), spin-loop detection,
 * and the end-of-run verdict. The explorers (explore.ts, pct.ts) and the replay differ only in how they choose.
 *
 * Independence. Two steps are independent when neither is *global* and their effective touch sets are disjoint.
 * The effective touch set of a step is computed after it ran, so it is exact for the step as executed:
 * - a device event (a checker timer named `….raise` that changed a device's raise/withdraw counts) touches, for
 *   each device it changed, the GIC INTID objects of its lines, the guest driver's register object and every GIC CPU
 *   interface (GICC_IAR reads the highest pending INTID), plus the CPUs whose signature it changed; every other timer
 *   is global;
 * - a step in which the vGIC accessed the physical GIC (kvm/hostIrqOps.ts records the access and declares it only
 *   when charged, steps later) also touches every device line's INTID object;
 * - a CPU step touches its own CPU (`cpu<i>` oid) and, if it was a task's step, the objects the task declared with
 *   op()/cpuRelax() for it;
 * - a step that changed another CPU's scheduling signature (its IRQ/vIRQ line, mask, exception state, current
 *   thread, run queue length, top task state) also touches that CPU: this catches wakeups, lock releases waking
 *   spinners and GIC line changes the step did not declare;
 * - a step that moved a CPU into or out of guest mode (guest entry/exit) is global: kvm_vcpu_kick reads vcpu->mode
 *   inside whatever step the kicker declared, so entry/exit cannot be ordered against kicks by declarations yet;
 * - a poll (a step after cpuRelax) is treated as global too: the model declares one object per poll, but the
 *   polled condition may be written under other objects (kvm_arm_halt_guest declares the vCPU it waits for, but
 *   `halted` changes in steps after wait() that declare only the wait queue), so a poll is never assumed to commute.
 * Steps that only compute (op() with no object) touch their CPU only.
 *
 * Spin loops. A step of a task that yielded cpuRelax(cost, oid) is a poll, and a poll only reads. An agent whose
 * next step is a poll of the object it polled last, with no non-poll step by another agent since, cannot make
 * progress — its own steps in between are the loop's body (synchronize_irq's lock, chip re-check, unlock), which
 * the model's poll loops never use to change what they wait for:
 * it is left out of the choosable set (every non-poll step may have changed what it polls, so it comes back then).
 * If only such agents remain enabled, the run is a livelock.
 */
import type { Cpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { TASK_DONE, type Task } from '../sim/task.js';
import { checkAfterTeardown, checkAtEnd, modelErrorInvariant, type Violation } from './invariants.js';
import type { CheckableScenario, CheckInstance } from './model.js';

/** Sorted object ids a step touched, or null for a global step (dependent with every step). */
export type Touch = readonly number[] | null;

export function independent(a: Touch, b: Touch): boolean {
  if (a === null || b === null) return false;
  // both sorted ascending
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x === y) return false;
    if (x < y) i++;
    else j++;
  }
  return true;
}

export type RunEnd =
  /** quiescent: nothing enabled; invariants evaluated */
  | 'quiescent'
  /** the chooser stopped (every choice asleep or beyond the bound) */
  | 'pruned'
  /** the step budget ran out */
  | 'budget'
  /** a violation ended the run (model exception, livelock) */
  | 'violation';

export interface RunResult {
  readonly end: RunEnd;
  readonly violations: readonly Violation[];
  /** The agents taken, in order. */
  readonly schedule: readonly number[];
}

export interface ExecutionOptions {
  /** Steps allowed in the concurrent phase (default 20,000). */
  budget?: number;
  /** Also tear the VM down after a quiescent end and check the teardown invariants (default true). */
  teardown?: boolean;
}

/** The task a CPU agent's next step resumes, or null for an exception-model transition (entry, guest exit). */
function nextTask(c: Cpu): Task | null {
  const g = c.guest;
  if (g !== null) {
    if (c.irqLine) return null;
    if (c.virqLine && !g.irqMasked && !g.inIrq) return null;
    return g.inIrq ? g.irqTask : g.thread;
  }
  if (c.irqLine && !c.irqMasked && !c.inIrq && c.irqTask !== null) return null;
  return c.inIrq ? c.irqTask! : c.current;
}

function cpuSig(c: Cpu): number {
  const top = c.inIrq && c.irqTask !== null ? c.irqTask : c.current;
  const g = c.guest;
  let s = c.current.id * 64 + Math.min(c.runq.length, 63);
  s = s * 8 + top.state;
  s = s * 2 + (c.irqLine ? 1 : 0);
  s = s * 2 + (c.virqLine ? 1 : 0);
  s = s * 2 + (c.inIrq ? 1 : 0);
  s = s * 2 + (c.irqMasked ? 1 : 0);
  s = s * 2 + (g?.inIrq ? 1 : 0);
  s = s * 2 + (g?.irqMasked ? 1 : 0);
  return s;
}

export class Execution {
  readonly inst: CheckInstance;
  readonly engine: Engine;
  readonly schedule: number[] = [];
  /** The agent that took the previous step (-1 at the start). */
  last = -1;
  /** Choices that switched away from a still-choosable previous agent. */
  preemptions = 0;
  private readonly nCpus: number;
  private readonly sig: number[] = [];
  private readonly guestMode: boolean[] = [];
  /** Non-poll steps taken so far: a poller's condition may have changed when this moved. */
  private changes = 0;
  /** Non-poll steps each CPU agent took itself (a spin loop's own body: lock, re-check, unlock). */
  private readonly ownChanges: number[] = [];
  private readonly pollOid: number[] = [];
  private readonly pollStamp: number[] = [];
  private readonly budget: number;
  private readonly teardown: boolean;
  /** Per host device: what a hardware event changing it touches (hardwareTouch). */
  private readonly deviceTouch: (readonly number[])[] = [];
  private readonly deviceCount: number[] = [];
  /** The GIC INTID objects of every device line: what a vGIC access to the physical GIC may read. */
  private readonly lineOids: readonly number[];

  constructor(
    readonly scenario: CheckableScenario,
    opts: ExecutionOptions = {},
  ) {
    this.inst = scenario.build();
    this.engine = this.inst.host.engine;
    this.nCpus = this.engine.cpus.length;
    this.budget = opts.budget ?? 20_000;
    this.teardown = opts.teardown ?? true;
    for (const c of this.engine.cpus) {
      this.sig.push(cpuSig(c));
      this.guestMode.push(c.guest !== null);
      this.pollOid.push(-1);
      this.pollStamp.push(0);
      this.ownChanges.push(0);
    }
    const chip = this.inst.host.irq.chip;
    const lineOids: number[] = [];
    for (const d of this.inst.host.devices) {
      const t: number[] = [];
      for (const l of d.hw.lines) t.push(chip.intidOid[l.intid]!);
      lineOids.push(...t);
      for (const drv of this.inst.guest.devices) if (drv.device === d.hw) t.push(drv.oid);
      for (let c = 0; c < chip.giccOid.length; c++) t.push(chip.giccOid[c]!);
      this.deviceTouch.push(t);
      this.deviceCount.push(0);
    }
    this.lineOids = lineOids;
  }

  /** Raises, withdrawals and acknowledgements of a device so far: a hardware event changes the first two. */
  private static deviceEvents(d: { readonly hw: { raised: Int32Array; withdrawn: Int32Array } }): number {
    let n = 0;
    for (let i = 0; i < d.hw.raised.length; i++) n += d.hw.raised[i]! + d.hw.withdrawn[i]!;
    return n;
  }

  get steps(): number {
    return this.schedule.length;
  }

  get budgetLeft(): number {
    return this.budget - this.schedule.length;
  }

  /** The enabled agents (ascending), minus agents stuck in a spin loop. */
  choosable(): number[] {
    const heap = this.engine.heap;
    const out: number[] = [];
    for (let i = 0; i < heap.size; i++) {
      const a = heap.at(i);
      if (!this.spinning(a)) out.push(a);
    }
    return out.sort((x, y) => x - y);
  }

  /** Whether a CPU agent's next step re-polls an object nothing changed since its last poll. */
  spinning(agent: number): boolean {
    if (agent >= this.nCpus) return false;
    const t = nextTask(this.engine.cpus[agent]!);
    if (t === null || !t.polling || t.nTouch < 1) return false;
    const oid = t.touch[0]!;
    return this.pollOid[agent] === oid && this.pollStamp[agent] === this.changes - this.ownChanges[agent]!;
  }

  /** Whether choosing `agent` now would be a preemption (the previous agent is still choosable). */
  preempts(agent: number, choosable: readonly number[]): boolean {
    return this.last >= 0 && agent !== this.last && choosable.includes(this.last);
  }

  /** Take one step of `agent` (it must be enabled); returns its effective touch set. Throws what the model throws. */
  step(agent: number, choosable: readonly number[]): Touch {
    if (this.preempts(agent, choosable)) this.preemptions++;
    this.last = agent;
    this.schedule.push(agent);
    const e = this.engine;
    const declared: number[] = [];
    let poll = -1;
    const timer = agent >= this.nCpus;
    // A device event of the checker's own scenarios (model.ts, scenarioCheck.ts name them `….raise`); other timers stay global.
    let global = timer && !e.timerName(agent).endsWith('.raise');
    const devices = this.inst.host.devices;
    if (timer) for (let i = 0; i < devices.length; i++) this.deviceCount[i] = Execution.deviceEvents(devices[i]!);
    const vgicAccesses = this.inst.host.kvm.hostIrqOps.accesses;
    if (!timer) {
      const t = nextTask(e.cpus[agent]!);
      if (t !== null) {
        for (let i = 0; i < t.nTouch; i++) declared.push(t.touch[i]!);
        if (t.polling && t.nTouch > 0) poll = t.touch[0]!;
      }
    }
    e.stepAgent(agent);
    if (timer && !global) {
      let changed = false;
      for (let i = 0; i < devices.length; i++) {
        if (Execution.deviceEvents(devices[i]!) === this.deviceCount[i]) continue;
        changed = true;
        declared.push(...this.deviceTouch[i]!);
      }
      if (!changed) global = true;
    }
    // The vGIC reads and writes the physical GIC in this step but declares it when the accesses are charged, later
    // (kvm/hostIrqOps.ts): the step touches the lines' INTIDs now.
    if (this.inst.host.kvm.hostIrqOps.accesses !== vgicAccesses) declared.push(...this.lineOids);
    // Cross-CPU effects, guest entry/exit.
    for (let i = 0; i < this.nCpus; i++) {
      const c = e.cpus[i]!;
      const gm = c.guest !== null;
      if (gm !== this.guestMode[i]) {
        this.guestMode[i] = gm;
        global = true;
      }
      const s = cpuSig(c);
      if (s !== this.sig[i]) {
        this.sig[i] = s;
        if (i !== agent) declared.push(c.oid);
      }
    }
    if (poll >= 0) {
      this.pollOid[agent] = poll;
      this.pollStamp[agent] = this.changes - this.ownChanges[agent]!;
      return null;
    }
    this.changes++;
    if (agent < this.nCpus) this.ownChanges[agent]!++;
    if (global) return null;
    if (!timer) declared.push(e.cpus[agent]!.oid);
    return [...new Set(declared)].sort((x, y) => x - y);
  }

  /** Names of the agents stuck in spin loops (for livelock reports). */
  spinners(): string[] {
    const heap = this.engine.heap;
    const out: string[] = [];
    for (let i = 0; i < heap.size; i++) {
      const a = heap.at(i);
      if (this.spinning(a)) {
        const t = nextTask(this.engine.cpus[a]!);
        out.push(`${this.engine.describeAgent(a)} polling ${t ? this.engine.oidName(t.touch[0]!) : '?'}`);
      }
    }
    return out.sort();
  }

  /** The run cannot continue: judge it. `choosable` is empty. */
  finish(): RunResult {
    const e = this.engine;
    if (e.heap.size > 0) {
      return this.result('violation', [
        {
          invariant: 'no-livelock',
          message: `every enabled agent only re-polls unchanged state (spin loop): ${this.spinners().join('; ')}`,
        },
      ]);
    }
    const v: Violation[] = [];
    for (const c of this.inst.control) {
      if (!c.handle.done) {
        v.push({
          invariant: 'no-deadlock',
          message: `the machine is quiescent but the VMM's ${c.what} never returned (${describeBlocked(e)})`,
        });
      }
    }
    if (v.length > 0) return this.result('violation', v);
    v.push(...checkAtEnd(this.inst));
    if (v.length === 0 && this.teardown) {
      try {
        this.inst.teardown();
        e.settle(1_000_000);
        v.push(...checkAfterTeardown(this.inst));
      } catch (err) {
        v.push(modelErrorViolation(err, 'during teardown'));
      }
    }
    return this.result(v.length > 0 ? 'violation' : 'quiescent', v);
  }

  result(end: RunEnd, violations: readonly Violation[]): RunResult {
    return { end, violations, schedule: this.schedule };
  }
}

function describeBlocked(e: Engine): string {
  const blocked = e.tasks.filter((t) => t.kind === 'thread' && t.pid !== 0 && t.state !== TASK_DONE);
  return blocked.length > 0 ? `not finished: ${blocked.map((t) => t.toString()).join(', ')}` : 'no thread left';
}

export function modelErrorViolation(err: unknown, where = ''): Violation {
  if (err instanceof ModelError || err instanceof Error) {
    const message = `${err.name}${where ? ` ${where}` : ''}: ${err.message}`;
    return { invariant: modelErrorInvariant(err.message), message };
  }
  return { invariant: 'no-model-error', message: `non-Error thrown${where ? ` ${where}` : ''}: ${String(err)}` };
}

/**
 * Chooses the next agent among the choosable ones (non-empty, ascending); -1 ends the run as 'pruned'.
 * `stepped` is told the effective touch set of each step taken.
 */
export interface Chooser {
  choose(ex: Execution, choosable: readonly number[]): number;
  stepped?(ex: Execution, agent: number, touch: Touch, choosable: readonly number[]): void;
}

/** Run one schedule to its end with `chooser`. */
export function runSchedule(ex: Execution, chooser: Chooser): RunResult {
  for (;;) {
    const ch = ex.choosable();
    if (ch.length === 0) return ex.finish();
    if (ex.budgetLeft <= 0) return ex.result('budget', []);
    const a = chooser.choose(ex, ch);
    if (a < 0) return ex.result('pruned', []);
    let touch: Touch;
    try {
      touch = ex.step(a, ch);
    } catch (err) {
      return ex.result('violation', [modelErrorViolation(err)]);
    }
    chooser.stepped?.(ex, a, touch, ch);
  }
}

/**
 * The default order: keep running the agent that ran last while it can (no preemption), otherwise the lowest
 * agent id (CPUs before hardware timers). A replayed prefix falls back to it.
 */
export function defaultChoice(ex: Execution, choosable: readonly number[]): number {
  if (ex.last >= 0 && choosable.includes(ex.last)) return ex.last;
  return choosable[0]!;
}

/** Follows `prefix` (strictly: a choice that is not choosable is an error), then the default order. */
export class PrefixChooser implements Chooser {
  private i = 0;
  constructor(
    readonly prefix: readonly number[],
    /** Lenient: skip prefix choices that are not choosable (shrinking) instead of failing. */
    private readonly lenient = false,
  ) {}

  /** Prefix entries used so far (taken or skipped). */
  get consumed(): number {
    return this.i;
  }

  choose(ex: Execution, choosable: readonly number[]): number {
    while (this.i < this.prefix.length) {
      const a = this.prefix[this.i++]!;
      if (choosable.includes(a)) return a;
      if (!this.lenient) {
        throw new ModelError(
          `replay diverged at step ${this.i - 1}: agent ${a} is not choosable (choosable: ${choosable.join(', ')})`,
        );
      }
    }
    return defaultChoice(ex, choosable);
  }
}
