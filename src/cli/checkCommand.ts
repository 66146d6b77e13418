/**
 * `irqfwd check`: explore (or sample, or replay) the interleavings of a checkable scenario and print a verdict that
 * says whether the result is exhaustive, bounded (and by what) or sampled. Exit 0: no violation; 1: a violation
 * (the counterexample is printed and saved as a replay file); 2: bad arguments.
 */
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { counterexampleText, traceCounterexample } from '../check/counterexampleTrace.js';
import {
  type CheckResult,
  type ExploreStats,
  REDUCTIONS,
  type Reduction,
  SEARCHES,
  type Search,
  unboundedSearch,
} from '../check/explore.js';
import type { Violation } from '../check/invariants.js';
import {
  CHECK_SCENARIOS,
  type CheckableScenario,
  type CheckOptions,
  checkScenario,
  VARIANTS,
  type Variant,
} from '../check/model.js';
import { pct } from '../check/pct.js';
import { formatReplayFile, parseReplayFile, ReplayFileError, replayFileOf, scenarioOfReplay } from '../check/replay.js';
import { ScenarioCheckError, scenarioFromYaml } from '../check/scenarioCheck.js';
import { UncopyableMachineError } from '../check/stateful.js';
import { exploreParallel } from '../check/workers.js';
import { ScenarioError } from '../scenario/loader.js';
import type { CliIo } from './commands.js';
import { EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_USAGE } from './exitCodes.js';

/** scenarios/ at the package root (from src/check/ or dist/check/). */
const SHIPPED_SCENARIOS = fileURLToPath(new URL('../../scenarios/', import.meta.url));

/** Default preemption bound: the protocol passes the canonical race at it in well under a second. */
export const DEFAULT_BOUND = 1;

export const CHECK_HELP = `Usage: irqfwd check [scenario] [options]

Explore the interleavings of a checkable scenario (default: assign-race — a VMM thread issues ASSIGN then DEASSIGN
while the device asserts a level line and the vCPU runs) and check every invariant at the end of each schedule.

Options:
  --variant V         kvm-vfio flavour: ${VARIANTS.join(' | ')} (default protocol; bypass for bypass-race)
  --bound N           preemption bound of the systematic search (default 1; 'none': unbounded — large; on one
                      thread without --reduction dpor it runs the stateful search where the machine can be copied)
  --max-schedules N   stop the exhaustive search after N schedules (the verdict says so; exit code 4 if it stopped)
  --reduction R       dpor (default: source-set DPOR + sleep sets) | sleep (sleep sets only) | none
  --workers N         worker threads sharing the exhaustive search (default 1)
  --search S          stateless (default under a bound: every schedule from the start) | stateful (each state once:
                      sleep sets with state caching unbounded, plain enumeration under a bound; the machine must be
                      copyable; the default of --bound none where it is)
  --pct               randomized PCT instead of the exhaustive search
  --runs N            PCT runs (default 1000)
  --depth D           PCT bug depth (default 2)
  --seed N            PCT seed (default 1)
  --raises N          assertions of each driven line in the concurrent phase (default 1)
  --irq-numbering N   host Linux IRQ numbers: linear (default) | legacy (= INTID for SPIs, the 2014 arm32 domain)
  --replay FILE       re-run a saved counterexample and print it
  -o, --output FILE   where to save the counterexample (default $TMPDIR/irqfwd/check-<scenario>-<variant>.json)
  --json              print the verdict as one JSON object (counts, completeness, the violation) on stdout
  -q, --quiet         no progress line

Scenarios: ${Object.keys(CHECK_SCENARIOS).join(', ')} (built in), or a scenario file — a path or the name of a
shipped one (scenarios/check-assign-race.yaml, teardown-inflight, ...; docs/CLI.md lists which can be checked)
`;

class CheckUsageError extends Error {}

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > 0xffffffff)
    throw new CheckUsageError(`--${name} expects an integer ≥ ${min}, got '${v}'`);
  return Number(v);
}

/** Runs `irqfwd check <args>`; returns the exit code. */
export function checkCommand(args: readonly string[], io: CliIo): number {
  try {
    return check(args, io);
  } catch (e) {
    if (e instanceof CheckUsageError || e instanceof ReplayFileError || e instanceof UncopyableMachineError) {
      io.stderr(`irqfwd check: ${e.message}\nTry 'irqfwd check --help'.\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

function check(args: readonly string[], io: CliIo): number {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CheckUsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    io.stdout(CHECK_HELP);
    return EXIT_OK;
  }
  if (positionals.length > 1) throw new CheckUsageError(`at most one scenario, got: ${positionals.join(' ')}`);
  if (v.replay !== undefined) return replayCommand(v.replay, io);
  const name = positionals[0] ?? 'assign-race';
  // unset: the scenario's own default ('protocol'; 'bypass' for bypass-race)
  const variant = v.variant as Variant | undefined;
  if (variant !== undefined && !VARIANTS.includes(variant))
    throw new CheckUsageError(`--variant expects one of ${VARIANTS.join(', ')}, got '${v.variant}'`);
  const bound = v.bound === 'none' ? undefined : (int('bound', v.bound, 0) ?? DEFAULT_BOUND);
  const raises = int('raises', v.raises, 0) ?? 1;
  const numbering = v['irq-numbering'] ?? 'linear';
  if (numbering !== 'linear' && numbering !== 'legacy')
    throw new CheckUsageError(`--irq-numbering expects linear or legacy, got '${numbering}'`);
  if (!v.pct && (v.runs !== undefined || v.depth !== undefined || v.seed !== undefined))
    throw new CheckUsageError('--runs, --depth and --seed apply to --pct');
  if (v.pct && (v.bound !== undefined || v['max-schedules'] !== undefined))
    throw new CheckUsageError('--bound and --max-schedules apply to the exhaustive search, not --pct');
  if (v.pct && (v.reduction !== undefined || v.workers !== undefined))
    throw new CheckUsageError('--reduction and --workers apply to the exhaustive search, not --pct');
  const reduction = (v.reduction ?? 'dpor') as Reduction;
  if (!REDUCTIONS.includes(reduction))
    throw new CheckUsageError(`--reduction expects one of ${REDUCTIONS.join(', ')}, got '${v.reduction}'`);
  const workers = int('workers', v.workers, 1) ?? 1;
  const asked = v.search as Search | undefined;
  if (asked !== undefined && !SEARCHES.includes(asked))
    throw new CheckUsageError(`--search expects one of ${SEARCHES.join(', ')}, got '${v.search}'`);
  if (asked === 'stateful' && (workers > 1 || v.reduction === 'dpor'))
    throw new CheckUsageError('--search stateful runs on one thread with sleep sets or none (not --workers, not dpor)');
  if (v.pct && v.search !== undefined)
    throw new CheckUsageError('--search applies to the exhaustive search, not --pct');
  const scenario = resolveScenario(
    name,
    { ...(variant !== undefined ? { variant } : {}), raises, irqNumbering: numbering },
    io,
  );
  // unbounded on one thread with no DPOR asked for: the search that finishes (stateful where the machine can be copied)
  const chosen = asked === undefined && !v.pct && bound === undefined && workers === 1 && v.reduction !== 'dpor';
  const search: Search = asked ?? (chosen ? unboundedSearch(scenario) : 'stateless');
  const start = io.now();
  let lastShown = -1e9;
  const progress = (s: ExploreStats) => {
    if (v.quiet) return;
    const t = io.now();
    if (!io.stderrIsTTY || t - lastShown < 100) return;
    lastShown = t;
    io.stderr(`\r${progressLine(s, t - start)}`);
  };
  io.stderr(v.quiet ? '' : `check: ${scenario.name} [${scenario.variant}] — ${scenario.description}\n`);
  const exhaustive = (s: Search): CheckResult =>
    exploreParallel(scenario, {
      workers,
      search: s,
      reduction: s === 'stateful' && v.reduction === undefined ? 'sleep' : reduction,
      ...(bound !== undefined ? { bound } : {}),
      ...(v['max-schedules'] !== undefined ? { maxSchedules: int('max-schedules', v['max-schedules'], 1)! } : {}),
      onProgress: progress,
      progressEvery: 10,
    });
  let result: CheckResult;
  if (v.pct)
    result = pct(scenario, {
      runs: int('runs', v.runs, 1) ?? 1000,
      depth: int('depth', v.depth, 1) ?? 2,
      seed: int('seed', v.seed, 0) ?? 1,
      onProgress: progress,
      progressEvery: 10,
    });
  else if (chosen && search === 'stateful') {
    try {
      result = exhaustive(search);
    } catch (e) {
      // a generator met in the concurrent phase: the machine cannot be keyed there, the stateless DPOR needs no copy
      if (!(e instanceof UncopyableMachineError)) throw e;
      result = exhaustive('stateless');
    }
  } else result = exhaustive(search);
  const ms = io.now() - start;
  if (!v.quiet) io.stderr(`${io.stderrIsTTY ? '\r' : ''}${progressLine(result.stats, ms)}\n`);
  const cx = result.counterexample;
  if (cx === null) {
    io.stdout(
      v.json ? `${JSON.stringify(verdictJson(result, verdictPass(result), null))}\n` : `${verdictPass(result)}\n`,
    );
    return result.completeness === 'cut' ? EXIT_INCONCLUSIVE : EXIT_OK;
  }
  const first = cx.violations[0]!;
  const file = v.output ?? join(io.tmpdir(), 'irqfwd', `check-${scenario.name}-${scenario.variant}.json`);
  io.writeFile(file, formatReplayFile(replayFileOf(scenario, first.invariant, cx.schedule)));
  if (v.json) {
    io.stdout(`${JSON.stringify(verdictJson(result, `VIOLATION of ${first.invariant}`, file))}\n`);
    return EXIT_FAIL;
  }
  io.stdout(counterexampleText(traceCounterexample(scenario, cx.schedule, first.invariant)));
  io.stdout(printViolations(cx.violations));
  const how = result.completeness === 'sampled' ? `sampled (${result.limits})` : 'systematic search';
  io.stdout(
    `verdict: VIOLATION of ${first.invariant} — found by ${how} after ${result.stats.schedules} schedule(s); counterexample: ${cx.schedule.length} choice(s) (shrunk from ${cx.found.length} steps); replay: irqfwd check --replay ${file}\n`,
  );
  return EXIT_FAIL;
}

const OPTIONS = {
  variant: { type: 'string' },
  bound: { type: 'string' },
  'max-schedules': { type: 'string' },
  reduction: { type: 'string' },
  workers: { type: 'string' },
  search: { type: 'string' },
  pct: { type: 'boolean' },
  runs: { type: 'string' },
  depth: { type: 'string' },
  seed: { type: 'string' },
  raises: { type: 'string' },
  'irq-numbering': { type: 'string' },
  replay: { type: 'string' },
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function progressLine(s: ExploreStats, ms: number): string {
  const per = (n: number) => (ms > 0 ? Math.round((n * 1000) / ms) : 0);
  const distinct = s.distinct > 0 ? ` (${s.distinct} distinct)` : '';
  return `check: ${s.schedules} schedules, ${s.states} states${distinct}, ${s.steps} steps, ${per(s.schedules)} schedules/s, ${per(s.states)} states/s, max depth ${s.maxDepth}`;
}

export function verdictPass(r: CheckResult): string {
  const what = `${r.scenario} [${r.variant}]`;
  const n = r.stats.schedules;
  const equiv = r.reduction === 'none' ? '' : ` up to ${r.reduction === 'sleep' ? 'sleep-set' : 'DPOR'} equivalence`;
  if (r.search === 'stateful') return verdictStateful(r, what);
  const by = (r.workers ?? 1) > 1 ? `, ${r.workers} workers` : '';
  switch (r.completeness) {
    case 'exhaustive':
      return `verdict: PASS — exhaustive: every interleaving of ${what} (${n} schedules${equiv}${by}) satisfies every invariant`;
    case 'bounded':
      return `verdict: PASS — bounded by ${r.limits} (${r.stats.boundCuts} choice(s) cut): ${n} schedules of ${what} satisfy every invariant; schedules beyond the bound were not explored${r.reduction === 'none' ? '' : ` (with ${r.reduction === 'dpor' ? 'DPOR' : 'sleep sets'} under a bound, not even every schedule within it: a pruned one may have had its only equivalents beyond it)`}${by}`;
    case 'cut':
      return `verdict: PASS so far — bounded by ${r.limits}: ${n} schedules of ${what} satisfy every invariant; the search did not finish`;
    case 'sampled':
      return `verdict: PASS — sampled (${r.limits}): no violation found; sampling proves nothing`;
  }
}

/**
 * `--json`: the verdict as data — what was searched and how completely, the counts (states explored, distinct states
 * for the stateful search, schedules) and, for a violation, its invariants, the counterexample and its replay file.
 */
function verdictJson(r: CheckResult, verdict: string, replayFile: string | null) {
  const s = r.stats;
  const cx = r.counterexample;
  return {
    scenario: r.scenario,
    variant: r.variant,
    verdict,
    completeness: r.completeness,
    limits: r.limits,
    search: r.search,
    reduction: r.reduction,
    states: s.states,
    distinct: s.distinct,
    forced: s.forced,
    schedules: s.schedules,
    endStatesJudged: s.complete,
    stats: s,
    ...(cx !== null
      ? { violations: cx.violations, counterexample: { choices: cx.schedule, foundSteps: cx.found.length }, replayFile }
      : {}),
  };
}

/** A stateful pass: states explored, distinct states (each judged once if it is an end state) and schedules. */
function verdictStateful(r: CheckResult, what: string): string {
  const s = r.stats;
  const counts = `${s.states} states explored, ${s.distinct} distinct, ${s.schedules} schedules`;
  // the forced states are explored but not keyed: `distinct` counts the keyed ones
  const forced = s.forced > 0 ? `${s.forced} with at most one agent to take followed without a key; ` : '';
  switch (r.completeness) {
    case 'exhaustive':
      return `verdict: PASS — exhaustive (stateful${r.reduction === 'sleep' ? ', sleep sets' : ''}): every reachable state of ${what} (${counts}; ${forced}${s.complete} distinct end states judged) satisfies every invariant`;
    case 'bounded':
      return `verdict: PASS — bounded by ${r.limits} (${s.boundCuts} choice(s) cut; stateful, every schedule within the bound): ${counts} of ${what} satisfy every invariant`;
    default:
      return `verdict: PASS so far — bounded by ${r.limits}: ${counts} of ${what} satisfy every invariant; the search did not finish`;
  }
}

function printViolations(vs: readonly Violation[]): string {
  return vs.map((x) => `violated: ${x.invariant}: ${x.message}\n`).join('');
}

/** A built-in checkable scenario by name, else a scenario file (a path, or the name of a shipped one). */
function resolveScenario(name: string, opts: CheckOptions, io: CliIo): CheckableScenario {
  if (CHECK_SCENARIOS[name] !== undefined) return checkScenario(name, opts);
  const shipped = join(SHIPPED_SCENARIOS, extname(name) ? name : `${name}.yaml`);
  const file = io.exists(name) ? name : /^[A-Za-z0-9_.-]+$/.test(name) && io.exists(shipped) ? shipped : null;
  if (file === null)
    throw new CheckUsageError(
      `no checkable scenario '${name}': neither built in (${Object.keys(CHECK_SCENARIOS).join(', ')}) nor a scenario file`,
    );
  let text: string;
  try {
    text = io.readFile(file);
  } catch (e) {
    throw new CheckUsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return scenarioFromYaml(text, name, opts);
  } catch (e) {
    if (e instanceof ScenarioCheckError || e instanceof ScenarioError) throw new CheckUsageError(e.message);
    throw e;
  }
}

function replayCommand(path: string, io: CliIo): number {
  let text: string;
  try {
    text = io.readFile(path);
  } catch (e) {
    throw new CheckUsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const f = parseReplayFile(text);
  const run = traceCounterexample(scenarioOfReplay(f), f.schedule, f.invariant);
  const r = run.result;
  io.stdout(`replay: ${f.scenario} [${f.variant}] seed ${f.seed}, ${f.schedule.length} choices\n`);
  io.stdout(counterexampleText(run));
  if (r.violations.length === 0) {
    io.stdout(
      `verdict: NOT REPRODUCED — the schedule ran to quiescence with every invariant holding (saved: ${f.invariant})\n`,
    );
    return EXIT_OK;
  }
  io.stdout(printViolations(r.violations));
  const same = r.violations.some((x) => x.invariant === f.invariant);
  io.stdout(
    `verdict: VIOLATION of ${r.violations[0]!.invariant} reproduced${same ? '' : ` (the file recorded ${f.invariant})`}\n`,
  );
  return EXIT_FAIL;
}
