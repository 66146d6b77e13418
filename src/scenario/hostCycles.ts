/**
 * The host-cycle observer of a scenario run: before a CPU agent steps it notes whether the CPU is in guest mode or
 * about to run its idle task, and after the step adds the step's cost (readyAt − now) to the host total unless it was
 * a guest step that stayed in the guest, or an idle step. It also reports progress every PROGRESS_EVERY steps. An
 * engine observer, not a scheduler wrapper, so the engine's timed loop keeps its shortcut.
 */
import type { Engine, StepObserver } from '../sim/engine.js';

/** Engine steps between two progress reports. */
const PROGRESS_EVERY = 1 << 16;

/** What the observer reports progress to (an object, so the engine's observer stays plain data). */
export interface ProgressSink {
  progress(engine: Engine): void;
}

export class HostCycleObserver implements StepObserver {
  /** Host cycles so far, in all and per CPU. */
  total = 0;
  readonly byCpu: Float64Array;
  private readonly preGuest: Uint8Array;
  private readonly preIdle: Uint8Array;
  private nextProgress = PROGRESS_EVERY;

  /** `sink.progress` is called with the engine every PROGRESS_EVERY steps. */
  constructor(
    cpus: number,
    private readonly sink: ProgressSink | null = null,
  ) {
    this.byCpu = new Float64Array(cpus);
    this.preGuest = new Uint8Array(cpus);
    this.preIdle = new Uint8Array(cpus);
  }

  beforeStep(engine: Engine, a: number): void {
    if (a < engine.cpus.length) {
      const cpu = engine.cpus[a]!;
      this.preGuest[a] = cpu.guest !== null ? 1 : 0;
      const takesIrq = cpu.irqLine && !cpu.irqMasked && !cpu.inIrq && cpu.irqTask !== null;
      this.preIdle[a] = cpu.guest === null && !cpu.inIrq && !takesIrq && cpu.current === cpu.idle ? 1 : 0;
    }
  }

  onStep(engine: Engine, agent: number): void {
    if (agent < engine.cpus.length) {
      const cpu = engine.cpus[agent]!;
      const stayedInGuest = this.preGuest[agent] === 1 && cpu.guest !== null;
      if (!stayedInGuest && this.preIdle[agent] === 0) {
        const cost = cpu.readyAt - engine.now;
        this.total += cost;
        this.byCpu[agent]! += cost;
      }
    }
    if (engine.steps >= this.nextProgress) {
      this.nextProgress = engine.steps + PROGRESS_EVERY;
      this.sink?.progress(engine);
    }
  }
}
