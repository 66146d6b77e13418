/**
 * The plan executor of a scenario run: the VMM steps of the plan at their times and events, each run through the VMM
 * interpreter (`exec`). The leading steps (no `at`/`after`) run before the vCPUs start, as QEMU realizes its devices
 * before its vCPUs run — up to the first that `waitsForBoot` (a guest's action triggers it: its driver enabling
 * MSIs), which with the untimed steps after it runs once the guests have booted (`runBooted`); the rest run once the
 * scenario clock has started, in order: a step with `after` waits for
 * its event (then its `delay`), one with `at` for its time. A step whose event does not happen before the end, or
 * that is due after the duration, is skipped with a note. The executor also keeps the plan's events: `on(ev, fn)`
 * calls `fn` once, at the first `notify` that finds `ev` happened.
 */
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import type { ScenarioEvent, ScenarioStep } from './schema.js';

type LineEvent = Exclude<ScenarioEvent, { kind: 'step' }>;

export class PlanExecutor {
  /** The next step to run. */
  private i = 0;
  private readonly doneSteps = new Set<string>();
  private readonly listeners: { ev: ScenarioEvent; fn: () => void; fired: boolean }[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly steps: readonly ScenarioStep[],
    private readonly exec: (st: ScenarioStep) => void,
    private readonly lineEvent: (ev: LineEvent) => boolean,
    private readonly notes: string[],
    private readonly waitsForBoot: (st: ScenarioStep) => boolean = () => false,
  ) {}

  happened(ev: ScenarioEvent): boolean {
    return ev.kind === 'step' ? this.doneSteps.has(ev.id) : this.lineEvent(ev);
  }

  on(ev: ScenarioEvent, fn: () => void): void {
    this.listeners.push({ ev, fn, fired: false });
  }

  /** Something the plan's events count changed: fire the listeners whose event has now happened. */
  notify(): void {
    for (const x of this.listeners) {
      if (!x.fired && this.happened(x.ev)) {
        x.fired = true;
        x.fn();
      }
    }
  }

  /** The steps before the first with `at` or `after`, or that waits for the guests' boot. */
  runLeading(): void {
    while (this.untimed() && !this.waitsForBoot(this.steps[this.i]!)) this.step(this.steps[this.i++]!);
  }

  /** After the guests booted: the untimed steps from the first that waited for it; returns how many ran. */
  runBooted(): number {
    const from = this.i;
    while (this.untimed()) this.step(this.steps[this.i++]!);
    return this.i - from;
  }

  private untimed(): boolean {
    const st = this.steps[this.i];
    return st !== undefined && st.at === undefined && st.after === undefined;
  }

  /** The remaining steps, the scenario clock starting at `t0`; returns at the last step (or skipped one). */
  runRest(t0: number, duration: number): void {
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
      this.step(st);
    }
  }

  private step(st: ScenarioStep): void {
    this.exec(st);
    if (st.id !== undefined) this.doneSteps.add(st.id);
    this.notify();
  }
}
