/**
 * The plan executor of a scenario run: the VMM steps of the plan at their times and events, each run through the VMM
 * interpreter (`exec`). The leading steps (no `at`/`after`) run before the vCPUs start, as QEMU realizes its devices
 * before its vCPUs run — up to the first that `waitsForBoot` (a guest's action triggers it: its driver enabling
 * MSIs), which with the untimed steps after it runs once the guests have booted (`runBooted`); the rest run once the
 * scenario clock has started, in order: a step with `after` waits for
 * its event (then its `delay`), one with `at` for its time. A step whose event does not happen before the end, or
 * that is due after the duration, is skipped with a note. The executor also keeps the plan's events: `on(ev, l)`
 * calls `l.eventHappened()` once, at the first `notify` that finds `ev` happened. What it keeps is plain data (the
 * line events' source and the listeners are objects, not closures), as the machine's model code calls `notify`; the
 * step runner is an argument of the run methods.
 */
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import type { ScenarioEvent, ScenarioStep } from './schema.js';

type LineEvent = Exclude<ScenarioEvent, { kind: 'step' }>;

/** Whether a line event (a raise, delivery… of a device line) has happened: the run's line ledger. */
export interface LineEvents {
  happened(ev: LineEvent): boolean;
}

/** What waits for a plan event (`PlanExecutor.on`). */
export interface PlanListener {
  eventHappened(): void;
}

/** Runs one step of the plan (the VMM interpreter's `exec`). */
export type StepRunner = (st: ScenarioStep) => void;

export class PlanExecutor {
  /** The next step to run. */
  private i = 0;
  private readonly doneSteps = new Set<string>();
  private readonly listeners: { ev: ScenarioEvent; l: PlanListener; fired: boolean }[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly steps: readonly ScenarioStep[],
    private readonly lineEvents: LineEvents,
    private readonly notes: string[],
  ) {}

  happened(ev: ScenarioEvent): boolean {
    return ev.kind === 'step' ? this.doneSteps.has(ev.id) : this.lineEvents.happened(ev);
  }

  on(ev: ScenarioEvent, l: PlanListener): void {
    this.listeners.push({ ev, l, fired: false });
  }

  /** Something the plan's events count changed: fire the listeners whose event has now happened. */
  notify(): void {
    for (const x of this.listeners) {
      if (!x.fired && this.happened(x.ev)) {
        x.fired = true;
        x.l.eventHappened();
      }
    }
  }

  /** The steps before the first with `at` or `after`, or that waits for the guests' boot. */
  runLeading(exec: StepRunner, waitsForBoot: (st: ScenarioStep) => boolean = () => false): void {
    while (this.untimed() && !waitsForBoot(this.steps[this.i]!)) this.step(exec, this.steps[this.i++]!);
  }

  /** After the guests booted: the untimed steps from the first that waited for it; returns how many ran. */
  runBooted(exec: StepRunner): number {
    const from = this.i;
    while (this.untimed()) this.step(exec, this.steps[this.i++]!);
    return this.i - from;
  }

  private untimed(): boolean {
    const st = this.steps[this.i];
    return st !== undefined && st.at === undefined && st.after === undefined;
  }

  /** The remaining steps, the scenario clock starting at `t0`; returns at the last step (or skipped one). */
  runRest(t0: number, duration: number, exec: StepRunner): void {
    const engine = this.engine;
    const end = t0 + duration;
    for (; this.i < this.steps.length; this.i++) {
      const i = this.i;
      const st = this.steps[i]!;
      if (st.after !== undefined) {
        const ev = st.after;
        try {
          engine.runUntil(() => this.happened(ev) || engine.now >= end, `event for step ${i}`);
        } catch (e) {
          if (!(e instanceof ModelError)) throw e;
        }
        if (!this.happened(ev)) {
          this.notes.push(`vmm[${i}] (${st.step}) waits for an event that did not happen before the end: skipped`);
          continue;
        }
        if (st.delay !== undefined && st.delay > 0) engine.run(st.delay);
      }
      if (st.at !== undefined && t0 + st.at > engine.now) {
        if (st.at > duration) {
          this.notes.push(`vmm[${i}] (${st.step}) is due after the duration: skipped`);
          continue;
        }
        engine.run(t0 + st.at - engine.now);
      }
      this.step(exec, st);
    }
  }

  private step(exec: StepRunner, st: ScenarioStep): void {
    exec(st);
    if (st.id !== undefined) this.doneSteps.add(st.id);
    this.notify();
  }
}
