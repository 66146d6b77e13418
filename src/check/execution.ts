/**
 * One schedule of a checkable scenario, driven step by step outside the time order: the choosable agents at each
 * point, the touched objects of each executed step (the basis of the independence relation), spin-loop detection,
 * and the end-of-run verdict. The explorers (explore.ts, pct.ts) and the replay differ only in how they choose.
 *
 * Independence. Two steps are independent when neither is *global* and no object one of them may write is touched by
 * the other (two reads commute). A step's footprint is what the engine recorded while it ran (sim/footprint.ts): the
 * objects the model declared with op(), cpuRelax() (a read), touch() and touchRead(), the ones shared objects declared
 * themselves (the GIC's INTIDs and CPU interfaces, a device's registers, wait queues, locks, a vCPU's run state and
 * pause request) and the CPUs whose run state the step changed. It is exact for the step as executed, so DPOR may use
 * it after the fact. The checker itself knows nothing of the model.
 *
 * Spin loops. A step of a task that yielded cpuRelax(cost, oid) is a poll, and a poll only reads. An agent whose
 * next step is a poll of the object it polled last, with no non-poll step by another agent since, cannot make
 * progress — its own steps in between are the loop's body (synchronize_irq's lock, chip re-check, unlock), which
 * the model's poll loops never use to change what they wait for:
 * it is left out of the choosable set (every non-poll step may have changed what it polls, so it comes back then).
 * If only such agents remain enabled, the run is a livelock.
 */
import type { EnabledAgents, Engine, Scheduler } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { beginFootprint, conflicts } from '../sim/footprint.js';
import { copyState } from '../sim/snapshot.js';
import { TASK_DONE } from '../sim/task.js';
import { checkAfterTeardown, checkAtEnd, modelErrorInvariant, type Violation } from './invariants.js';
import { startingMachine } from './machineCopy.js';
import type { CheckableScenario, CheckInstance } from './model.js';

/** A step's footprint (sim/footprint.ts: sorted entries, an object and whether it was written each), or null: global. */
export type Touch = readonly number[] | null;

/** Two steps commute: neither is global and no object one of them may write is touched by the other. */
export function independent(a: Touch, b: Touch): boolean {
  return !conflicts(a, b);
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
  /** Start from a copy of the machine built for the first schedule where it can be copied (default true). */
  copyMachine?: boolean;
  /** Called when a run reaches an end state (no agent can be chosen), before it is judged. */
  onEnd?: (ex: Execution) => void;
}

export class Execution {
  readonly inst: CheckInstance;
  readonly engine: Engine;
  readonly schedule: number[] = [];
  /** The agent that took the previous step (-1 at the start). */
  last = -1;
  /** Choices that switched away from a still-choosable previous agent. */
  preemptions = 0;
  /** Steps `last` has taken in a row (the default order's fairness: defaultChoice). */
  runLength = 0;
  private readonly nCpus: number;
  /** Non-poll steps taken so far: a poller's condition may have changed when this moved. */
  private changes = 0;
  /** Non-poll steps each CPU agent took itself (a spin loop's own body: lock, re-check, unlock). */
  private readonly ownChanges: number[] = [];
  private readonly pollOid: number[] = [];
  private readonly pollStamp: number[] = [];
  private readonly budget: number;
  private readonly teardown: boolean;

  constructor(
    readonly scenario: CheckableScenario,
    private readonly opts: ExecutionOptions = {},
    /** The machine to run (a fork's copy); default: the scenario's machine at the start of its concurrent phase. */
    inst?: CheckInstance,
  ) {
    this.inst = inst ?? startingMachine(scenario, opts.copyMachine ?? true);
    this.engine = this.inst.host.engine;
    this.engine.recordFootprints = true;
    this.nCpus = this.engine.cpus.length;
    this.budget = opts.budget ?? 20_000;
    this.teardown = opts.teardown ?? true;
    for (let i = 0; i < this.nCpus; i++) {
      this.pollOid.push(-1);
      this.pollStamp.push(0);
      this.ownChanges.push(0);
    }
  }

  get steps(): number {
    return this.schedule.length;
  }

  /**
   * An independent execution in the same state: a copy of the machine and of this run's bookkeeping. Only for a
   * machine that can be copied (machineCopy.ts startsFromCopy): a closure in state would be shared with the copy.
   */
  fork(): Execution {
    const ex = new Execution(this.scenario, this.opts, copyState(this.inst));
    ex.schedule.push(...this.schedule);
    ex.last = this.last;
    ex.preemptions = this.preemptions;
    ex.runLength = this.runLength;
    ex.changes = this.changes;
    for (let i = 0; i < this.nCpus; i++) {
      ex.ownChanges[i] = this.ownChanges[i]!;
      ex.pollOid[i] = this.pollOid[i]!;
      ex.pollStamp[i] = this.pollStamp[i]!;
    }
    return ex;
  }

  /**
   * The spin-loop detector's state as it decides the future: per CPU, the object it polled last and whether no other
   * agent's step changed anything since (1) — not the step counters that encode it, which depend on the path.
   */
  spinState(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.nCpus; i++) {
      const oid = this.pollOid[i]!;
      out.push(oid, oid >= 0 && this.pollStamp[i] === this.changes - this.ownChanges[i]! ? 1 : 0);
    }
    return out;
  }

  /** Steps counted against the budget so far. */
  get budgetUsed(): number {
    return this.schedule.length;
  }

  get budgetLeft(): number {
    return this.budget - this.schedule.length;
  }

  /** The enabled agents (ascending), minus agents stuck in a spin loop. */
  choosable(): number[] {
    return this.collectChoosable([]);
  }

  /** choosable() into `out` (emptied first): what runSchedule reuses at every step. */
  collectChoosable(out: number[]): number[] {
    const heap = this.engine.heap;
    out.length = 0;
    for (let i = 0; i < heap.size; i++) {
      const a = heap.at(i);
      if (!this.spinning(a)) out.push(a);
    }
    return out.sort(ascending);
  }

  /** Whether a CPU agent's next step re-polls an object nothing changed since its last poll. */
  spinning(agent: number): boolean {
    const oid = this.engine.nextPoll(agent);
    if (oid < 0) return false;
    return this.pollOid[agent] === oid && this.pollStamp[agent] === this.changes - this.ownChanges[agent]!;
  }

  /** Whether choosing `agent` now would be a preemption (the previous agent is still choosable). */
  preempts(agent: number, choosable: readonly number[]): boolean {
    return this.last >= 0 && agent !== this.last && choosable.includes(this.last);
  }

  /**
   * Take one step of `agent` (it must be enabled); returns its footprint, or null when `record` is false (a replayed
   * step whose footprint the chooser already has: the model runs the same either way, recording only feeds touch()).
   * Throws what the model throws.
   */
  step(agent: number, choosable: readonly number[], record = true): Touch {
    if (this.preempts(agent, choosable)) this.preemptions++;
    this.runLength = agent === this.last ? this.runLength + 1 : 1;
    this.last = agent;
    this.schedule.push(agent);
    const e = this.engine;
    const poll = e.nextPoll(agent);
    e.recordFootprints = record;
    e.stepAgent(agent);
    const touch = record ? e.footprint() : null;
    if (poll >= 0) {
      this.pollOid[agent] = poll;
      this.pollStamp[agent] = this.changes - this.ownChanges[agent]!;
      return touch;
    }
    this.changes++;
    if (agent < this.nCpus) this.ownChanges[agent]!++;
    return touch;
  }

  /** Names of the agents stuck in spin loops (for livelock reports). */
  spinners(): string[] {
    const heap = this.engine.heap;
    const out: string[] = [];
    for (let i = 0; i < heap.size; i++) {
      const a = heap.at(i);
      if (this.spinning(a))
        out.push(`${this.engine.describeAgent(a)} polling ${this.engine.oidName(this.engine.nextPoll(a))}`);
    }
    return out.sort();
  }

  /** The run cannot continue: judge it. `choosable` is empty. */
  finish(): RunResult {
    const e = this.engine;
    this.opts.onEnd?.(this);
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
      // no checker choice follows: the teardown runs under the timed scheduler, its footprints unused
      e.recordFootprints = false;
      beginFootprint(false);
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
    // the run is over: stop recording, so code touching objects outside any step appends nothing
    this.engine.recordFootprints = false;
    beginFootprint(false);
    return { end, violations, schedule: this.schedule };
  }
}

const ascending = (x: number, y: number): number => x - y;

function describeBlocked(e: Engine): string {
  const blocked = e.tasks.filter((t) => t.kind === 'thread' && t.pid !== 0 && t.state !== TASK_DONE);
  return blocked.length > 0 ? `not finished: ${blocked.map((t) => t.toString()).join(', ')}` : 'no thread left';
}

export function modelErrorViolation(err: unknown, where = ''): Violation {
  if (err instanceof ModelError || err instanceof Error) {
    const message = `${err.name}${where ? ` ${where}` : ''}: ${err.message}`;
    return { invariant: modelErrorInvariant(err), message };
  }
  return { invariant: 'no-model-error', message: `non-Error thrown${where ? ` ${where}` : ''}: ${String(err)}` };
}

/**
 * The agents a checker may choose at one point of an execution: the enabled ones minus those stuck in a spin loop,
 * ascending. What the engine's Scheduler interface hands a checker's scheduler.
 */
export class Choosable implements EnabledAgents {
  constructor(
    readonly ex: Execution,
    /** Valid until the step is taken (runSchedule refills it): a chooser that keeps it copies it. */
    readonly list: readonly number[],
  ) {}

  get size(): number {
    return this.list.length;
  }

  at(i: number): number {
    return this.list[i]!;
  }

  includes(agent: number): boolean {
    return this.list.includes(agent);
  }

  earliest(): number {
    const heap = this.ex.engine.heap;
    let best = -1;
    for (const a of this.list) if (best < 0 || heap.timeOf(a) < heap.timeOf(best)) best = a;
    return best;
  }
}

/**
 * A checker's scheduler: the engine's Scheduler over the choosable agents (non-empty); -1 ends the run as 'pruned'.
 * `stepped` is told the footprint of each step taken.
 */
export interface Chooser extends Scheduler<Choosable> {
  stepped?(ex: Execution, agent: number, touch: Touch, choosable: readonly number[]): void;
  /** The step just chosen replays one whose footprint the chooser holds: `stepped` gets null, nothing is recorded. */
  replaying?(): boolean;
}

/** Run one schedule to its end with `chooser`. */
export function runSchedule(ex: Execution, chooser: Chooser): RunResult {
  const ch: number[] = [];
  const c = new Choosable(ex, ch);
  for (;;) {
    ex.collectChoosable(ch);
    if (ch.length === 0) return ex.finish();
    if (ex.budgetLeft <= 0) return ex.result('budget', []);
    const a = chooser.choose(c, ex.engine);
    if (a < 0) return ex.result('pruned', []);
    let touch: Touch;
    try {
      touch = ex.step(a, ch, chooser.replaying?.() !== true);
    } catch (err) {
      return ex.result('violation', [modelErrorViolation(err)]);
    }
    chooser.stepped?.(ex, a, touch, ch);
  }
}

/**
 * Steps an agent takes in a row in the default order while another could run, before it yields to the lowest other
 * one: a weak fairness bound, so that an agent that never stops (a vCPU taking the same interrupt over and over) does
 * not keep the run from its end — one agent alone in a normal run takes a few hundred steps at most.
 */
export const FAIR_RUN = 2_000;

/**
 * The default order: keep running the agent that ran last while it can (no preemption) and has run fewer than
 * FAIR_RUN steps in a row, otherwise the lowest agent id (CPUs before hardware timers) other than it. A replayed
 * prefix falls back to it.
 */
export function defaultChoice(c: Choosable): number {
  return defaultAgent(c.ex, c.list);
}

function defaultAgent(ex: Execution, choosable: readonly number[]): number {
  if (ex.last < 0 || !choosable.includes(ex.last)) return choosable[0]!;
  if (ex.runLength < FAIR_RUN || choosable.length === 1) return ex.last;
  return choosable[0] === ex.last ? choosable[1]! : choosable[0]!;
}

/**
 * A run cut at the step budget, continued in the default order for up to another FAIR_RUN + budget-sized allowance:
 * its end judged (a violation that a fair schedule reaches past the budget), or null if it does not end. Used where
 * a search stops a run at the budget without another schedule covering how it ends.
 */
export function completeFairly(ex: Execution, allowance: number): RunResult | null {
  const ch: number[] = [];
  for (let i = 0; i < allowance; i++) {
    ex.collectChoosable(ch);
    if (ch.length === 0) return ex.finish();
    try {
      ex.step(defaultAgent(ex, ch), ch, false);
    } catch (err) {
      return ex.result('violation', [modelErrorViolation(err)]);
    }
  }
  return null;
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

  choose(c: Choosable): number {
    const choosable = c.list;
    while (this.i < this.prefix.length) {
      const a = this.prefix[this.i++]!;
      if (choosable.includes(a)) return a;
      if (!this.lenient) {
        throw new ModelError(
          `replay diverged at step ${this.i - 1}: agent ${a} is not choosable (choosable: ${choosable.join(', ')})`,
        );
      }
    }
    return defaultChoice(c);
  }
}
