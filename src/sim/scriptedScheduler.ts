/**
 * Schedulers that do not follow time: they prove the model's correctness does not depend on the timed order, and
 * they are the basis of the checker's replay. A scripted scheduler takes its choices (agent ids) from a list and
 * then falls back to a policy; `latestFirst` is a policy the TimedScheduler would never follow.
 */
import type { EnabledAgents, Engine, Scheduler } from './engine.js';
import { ModelError } from './errors.js';

export type Policy = (enabled: EnabledAgents, engine: Engine) => number;

/** The enabled agent with the largest time key (ties: highest agent id). */
export const latestFirst: Policy = (enabled, engine) => {
  const heap = engine.heap;
  let best = -1;
  for (let i = 0; i < enabled.size; i++) {
    const a = enabled.at(i);
    if (best < 0 || heap.timeOf(a) > heap.timeOf(best) || (heap.timeOf(a) === heap.timeOf(best) && a > best)) best = a;
  }
  return best;
};

/** The enabled agent with the highest id: always prefers hardware timers, then the highest-numbered CPU. */
export const highestAgentFirst: Policy = (enabled) => {
  let best = -1;
  for (let i = 0; i < enabled.size; i++) best = Math.max(best, enabled.at(i));
  return best;
};

export class ScriptedScheduler implements Scheduler {
  private i = 0;
  /** The agents actually run, in order (a replayable schedule). */
  readonly taken: number[] = [];

  constructor(
    private readonly script: readonly number[],
    private readonly fallback: Policy = (enabled) => enabled.earliest(),
  ) {}

  get consumed(): number {
    return this.i;
  }

  choose(enabled: EnabledAgents, engine: Engine): number {
    let a: number;
    if (this.i < this.script.length) {
      a = this.script[this.i]!;
      if (!engine.heap.has(a)) {
        throw new ModelError(
          `scripted choice #${this.i} (agent ${a}) is not enabled; enabled: ${engine.describeEnabled()}`,
        );
      }
      this.i++;
    } else {
      a = this.fallback(enabled, engine);
    }
    if (a >= 0) this.taken.push(a);
    return a;
  }
}
