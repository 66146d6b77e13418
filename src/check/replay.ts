/**
 * Replay files: a counterexample as JSON, `{format, scenario, variant, seed, options, invariant, schedule}`, where
 * `schedule` is the choice prefix (agent ids; CPUs first, then hardware timers) that, followed by the default order
 * (execution.ts defaultChoice), reproduces the violation.
 */
import type { ExecutionOptions, RunResult } from './execution.js';
import { replay } from './explore.js';
import { type CheckableScenario, type CheckOptions, checkScenario, VARIANTS, type Variant } from './model.js';
import { scenarioFromYaml } from './scenarioCheck.js';

export const REPLAY_FORMAT = 1;

export interface ReplayFile {
  format: number;
  scenario: string;
  variant: Variant;
  seed: number;
  /** For a scenario file, `file` and `yaml` (its text at the time of the check: the replay does not read the file). */
  options: CheckOptions;
  /** The invariant the schedule violated when it was saved. */
  invariant: string;
  schedule: number[];
}

export function replayFileOf(scenario: CheckableScenario, invariant: string, schedule: readonly number[]): ReplayFile {
  return {
    format: REPLAY_FORMAT,
    scenario: scenario.name,
    variant: scenario.variant,
    seed: scenario.seed,
    options: { ...scenario.options },
    invariant,
    schedule: [...schedule],
  };
}

export function formatReplayFile(f: ReplayFile): string {
  return `${JSON.stringify(f)}\n`;
}

export class ReplayFileError extends Error {}

export function parseReplayFile(text: string): ReplayFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ReplayFileError(`not JSON: ${(e as Error).message}`);
  }
  const o = v as Partial<ReplayFile> | null;
  if (o === null || typeof o !== 'object') throw new ReplayFileError('not an object');
  if (o.format !== REPLAY_FORMAT) throw new ReplayFileError(`format ${String(o.format)} (expected ${REPLAY_FORMAT})`);
  if (typeof o.scenario !== 'string') throw new ReplayFileError('scenario: expected a string');
  if (typeof o.variant !== 'string' || !(VARIANTS as readonly string[]).includes(o.variant))
    throw new ReplayFileError(`variant: expected one of ${VARIANTS.join(', ')}`);
  if (typeof o.seed !== 'number' || !Number.isInteger(o.seed)) throw new ReplayFileError('seed: expected an integer');
  if (!Array.isArray(o.schedule) || !o.schedule.every((a) => Number.isInteger(a) && a >= 0))
    throw new ReplayFileError('schedule: expected an array of agent ids');
  const options = o.options !== null && typeof o.options === 'object' ? o.options : {};
  return {
    format: o.format,
    scenario: o.scenario,
    variant: o.variant,
    seed: o.seed,
    options,
    invariant: typeof o.invariant === 'string' ? o.invariant : '',
    schedule: o.schedule,
  };
}

export function scenarioOfReplay(f: ReplayFile): CheckableScenario {
  const o = f.options;
  if (typeof o.yaml === 'string')
    return scenarioFromYaml(o.yaml, typeof o.file === 'string' ? o.file : f.scenario, {
      ...o,
      variant: f.variant,
      seed: f.seed,
    });
  return checkScenario(f.scenario, { ...f.options, variant: f.variant, seed: f.seed });
}

/** Re-run a replay file's schedule; a divergence (a choice not enabled) throws a ModelError. */
export function replayFile(f: ReplayFile, opts: ExecutionOptions = {}): RunResult {
  return replay(scenarioOfReplay(f), f.schedule, opts);
}
