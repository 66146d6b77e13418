/**
 * The machine a schedule starts from. Building a checkable scenario (host, VMM ioctls, the set-up phase run to
 * quiescence) costs more than the concurrent phase it prepares, and it is deterministic: the checker builds it once
 * per scenario and starts every schedule from a copy (sim/snapshot.ts copyState). A machine that still holds a
 * suspended generator or a capturing function in its state cannot be copied; it is then rebuilt for each schedule.
 */
import { ModelError } from '../sim/errors.js';
import { copyState, findUncopyable } from '../sim/snapshot.js';
import type { CheckableScenario, CheckInstance } from './model.js';

/** Per scenario object: the machine built once, or null when it cannot be copied. */
const built = new WeakMap<CheckableScenario, CheckInstance | null>();

/** A machine at the start of `scenario`'s concurrent phase: a copy of the one built first, or a fresh build. */
export function startingMachine(scenario: CheckableScenario, copy = true): CheckInstance {
  if (!copy) return scenario.build();
  const base = built.get(scenario);
  if (base === null) return scenario.build();
  if (base !== undefined) return copyState(base);
  const first = scenario.build();
  if (findUncopyable(first, 1).length > 0) {
    built.set(scenario, null);
    return first;
  }
  built.set(scenario, first);
  return copyState(first);
}

/** Whether schedules of `scenario` start from a copy (known once a first machine was asked for). */
export function startsFromCopy(scenario: CheckableScenario): boolean {
  const base = built.get(scenario);
  return base !== undefined && base !== null;
}

/** `err` is copyState's refusal of a suspended generator (a task body not yet a frame, reached after the build). */
export function isUncopyableGenerator(err: unknown): boolean {
  return err instanceof ModelError && /suspended generator/.test(err.message);
}
