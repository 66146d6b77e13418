/**
 * The contract between the CLI and the code that executes a scenario on the model (src/scenario/runner.ts). The CLI
 * loads and validates the scenario, expands sweeps, and formats results; the runner builds the machine, runs each
 * requested mode, and reports metrics, invariant violations and (when asked) the trace.
 */
import type { Metrics } from './metrics.js';
import type { Mode, Scenario } from './schema.js';

/** text: /sys/kernel/tracing/trace; report: `trace-cmd report` (no latency-flags column); perfetto: Chrome JSON. */
export type TraceFormat = 'text' | 'report' | 'perfetto';

export interface RunOptions {
  /** The modes to run, in order ('normal' skips the scenario's assign/deassign steps: `stepsForMode`). */
  readonly modes: readonly Mode[];
  /** Collect the trace of each mode run in this format (absent: no tracing). */
  readonly trace?: TraceFormat;
  /**
   * Progress of the whole call in [0, 1] (e.g. simulated time over duration, summed over modes); call it every few
   * thousand events at most. The CLI draws its progress bar from it.
   */
  readonly onProgress?: (fraction: number) => void;
}

/** A named invariant that did not hold (docs: GUIDE §3 — no lost IRQ, nothing left active or masked, ...). */
export interface InvariantViolation {
  /** Stable id: 'no-lost-irq', 'no-active-after-teardown', 'disable-depth-balanced', 'refs-dropped', 'ioctl-expect', ... */
  readonly invariant: string;
  /** What went wrong, for a kernel engineer (names the INTID, device, vCPU, step). */
  readonly message: string;
  /** Simulated time of detection, if known. */
  readonly atCycles?: number;
}

export interface TraceOutput {
  readonly format: TraceFormat;
  /** The whole trace: tracefs text, trace-cmd report text, or Chrome/Perfetto JSON. */
  readonly data: string;
}

/** The result of one mode of a scenario. */
export interface ModeRun {
  readonly mode: Mode;
  readonly metrics: Metrics;
  readonly violations: readonly InvariantViolation[];
  readonly trace?: TraceOutput;
}

export interface RunResult {
  /** One entry per requested mode, in the order of RunOptions.modes. */
  readonly runs: readonly ModeRun[];
  /** Remarks worth showing the user (e.g. cost-profile names the model does not define yet). */
  readonly notes?: readonly string[];
}

/** What src/scenario/runner.ts exports as `runScenario`. */
export type RunScenario = (scenario: Scenario, opts: RunOptions) => RunResult | Promise<RunResult>;

export interface ScenarioRunner {
  readonly run: RunScenario;
  /** The cost names the model defines (to validate `host.costs`); absent: not checked. */
  readonly costNames?: () => readonly string[];
}
