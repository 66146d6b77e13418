/**
 * The `irqfwd` command line: argument parsing, scenario loading, running through a ScenarioRunner, output and exit
 * codes. `main` takes the runner and the process I/O as parameters so tests drive it with a fake runner and captured
 * streams; src/cli/main.ts wires the real ones.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ErrnoError } from '../abi/errno.js';
import {
  counterexampleChrome,
  counterexampleText,
  formatChromeTrace,
  traceCounterexample,
} from '../check/counterexampleTrace.js';
import { parseReplayFile, type ReplayFile, scenarioOfReplay } from '../check/replay.js';
import {
  comparePoint,
  DEFAULT_SCENARIO,
  DEFAULT_SCENARIO_FILE,
  expandPaths,
  expandSweep,
  type LoadOptions,
  loadScenario,
  ScenarioError,
} from '../scenario/loader.js';
import {
  checkExpectations,
  EXIT_REASONS,
  type ExpectationResult,
  fmtCell,
  fmtNum,
  formatJson,
  formatMetricsTable,
  type Metrics,
  metricPaths,
  type Row,
  renderTable,
} from '../scenario/metrics.js';
import type { InvariantViolation, ModeRun, RunResult, ScenarioRunner, TraceFormat } from '../scenario/runnerApi.js';
import { type Mode, type Scenario, scenarioJsonSchema, scenarioModes } from '../scenario/schema.js';
import { costDefs } from '../sim/costs.js';
import { ModelError } from '../sim/errors.js';
import { COST_PROFILES, isProfileName, PROFILE_NAMES, type ProfileName } from '../sim/profiles.js';
import { ViewInputError } from '../view/chromeTrace.js';
import { untilSignal, viewCommand } from '../view/viewCommand.js';
import { CHECK_HELP, checkCommand } from './checkCommand.js';
import { estimateWallMs, formatWall, LONG_RUN_MS } from './estimate.js';
import { EXIT_FAIL, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE } from './exitCodes.js';
import { currentUid, OutputFileError, privateOutputBase, writeOwnFile } from './outputFiles.js';
import { ProgressBar } from './progress.js';

export { EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE } from './exitCodes.js';

/** JSON output format version; bumped when a field changes meaning or disappears. */
export const JSON_FORMAT_VERSION = 1;

export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  readonly stderrIsTTY: boolean;
  readonly columns?: number;
  /** Wall-clock ms, for the progress bar only. */
  now(): number;
  readFile(path: string): string;
  writeFile(path: string, data: string): void;
  exists(path: string): boolean;
  /** The base of default output paths, `<base>/irqfwd/…`: a directory only this user can write (outputFiles.ts). */
  tmpdir(): string;
}

export function nodeIo(): CliIo {
  const uid = currentUid();
  let base: string | undefined;
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    stderrIsTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns,
    now: () => Date.now(),
    readFile: (p) => readFileSync(p, 'utf8'),
    writeFile: (p, data) => {
      mkdirSync(dirname(p), { recursive: true });
      writeOwnFile(p, data, uid);
    },
    exists: (p) => existsSync(p),
    tmpdir: () => {
      base ??= privateOutputBase(tmpdir(), uid);
      return base;
    },
  };
}

/** The shipped scenarios folder (scenarios/ at the package root, from src/cli/ or dist/cli/). */
export const SCENARIOS_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

class UsageError extends Error {}
/** The environment refuses (a busy port): one line, exit 2, no usage hint. */
class EnvironmentError extends Error {}

const COMMANDS = ['run', 'compare', 'trace', 'view', 'schema', 'help'] as const;
type Command = (typeof COMMANDS)[number];
/** Every command, `check` included (src/check/cli.ts parses its own options), in the order help lists them. */
const ALL_COMMANDS = ['run', 'compare', 'trace', 'view', 'schema', 'check', 'help'] as const;

const OPTIONS = {
  seed: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  profile: { type: 'string' },
  format: { type: 'string' },
  output: { type: 'string', short: 'o' },
  mode: { type: 'string' },
  path: { type: 'string' },
  trace: { type: 'string' },
  'no-trace': { type: 'boolean' },
  replay: { type: 'string' },
  serve: { type: 'boolean' },
  port: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

/** Which options each command accepts (besides --help). */
const ACCEPTS: Readonly<Record<Command, readonly OptionName[]>> = {
  run: ['seed', 'json', 'quiet', 'profile', 'trace', 'no-trace'],
  compare: ['seed', 'json', 'quiet', 'profile', 'trace', 'no-trace'],
  trace: ['seed', 'json', 'quiet', 'profile', 'format', 'output', 'mode', 'path', 'replay'],
  view: ['seed', 'quiet', 'profile', 'output', 'serve', 'port'],
  schema: ['output'],
  help: [],
};

interface Options {
  seed?: number;
  json: boolean;
  quiet: boolean;
  profile?: ProfileName;
  format?: TraceFormat;
  output?: string;
  mode?: Mode;
  /** trace: the compare path of a scenario with `paths` to trace. */
  path?: string;
  trace?: string;
  noTrace: boolean;
  /** trace: a checker replay file to trace instead of a scenario. */
  replay?: string;
  /** view: serve the page on 127.0.0.1 (on `port`; 0 picks a free one) instead of writing it. */
  serve: boolean;
  port?: number;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: readonly string[], runner: ScenarioRunner, io: CliIo = nodeIo()): Promise<number> {
  try {
    return await dispatch(argv, runner, io);
  } catch (e) {
    if (e instanceof ScenarioError) {
      io.stderr(`${e.message}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof OutputFileError || e instanceof EnvironmentError) {
      io.stderr(`irqfwd: ${e.message}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      io.stderr(`irqfwd: ${e.message}\nTry 'irqfwd help'.\n`);
      return EXIT_USAGE;
    }
    if (e instanceof ModelError) {
      io.stderr(`irqfwd: the model detected a broken invariant: ${e.message}\n`);
      return EXIT_FAIL;
    }
    if (e instanceof ErrnoError) {
      io.stderr(`irqfwd: a VMM call failed unexpectedly: ${e.message}\n`);
      return EXIT_FAIL;
    }
    io.stderr(`irqfwd: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT_INTERNAL;
  }
}

function parse(argv: readonly string[]): { command: Command; positionals: string[]; opts: Options; raw: Set<string> } {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const first = positionals[0];
  let command: Command;
  if (first === undefined) command = 'help';
  else if ((COMMANDS as readonly string[]).includes(first)) command = first as Command;
  else throw new UsageError(`unknown command '${first}' (commands: ${ALL_COMMANDS.join(', ')})`);
  if (v.help) return { command: 'help', positionals: first ? [first] : [], opts: defaults(), raw: new Set() };
  const given = new Set(Object.keys(v).filter((k) => v[k as OptionName] !== undefined));
  for (const k of given) {
    if (!(ACCEPTS[command] as readonly string[]).includes(k))
      throw new UsageError(`option --${k} does not apply to '${command}'`);
  }
  const rest = positionals.slice(1);
  const maxPos = command === 'help' ? 1 : command === 'schema' ? 0 : 1;
  if (rest.length > maxPos)
    throw new UsageError(
      `'${command}' takes ${maxPos === 0 ? 'no argument' : 'at most one argument (a scenario)'}, got: ${rest.join(' ')}`,
    );

  const opts = defaults();
  opts.json = v.json === true;
  opts.quiet = v.quiet === true;
  opts.noTrace = v['no-trace'] === true;
  if (v.seed !== undefined) {
    if (!/^\d+$/.test(v.seed) || Number(v.seed) > 0xffffffff)
      throw new UsageError(`--seed expects an integer 0..4294967295, got '${v.seed}'`);
    opts.seed = Number(v.seed);
  }
  if (v.profile !== undefined) {
    if (!isProfileName(v.profile))
      throw new UsageError(`--profile expects one of ${PROFILE_NAMES.join(', ')}, got '${v.profile}'`);
    opts.profile = v.profile;
  }
  if (v.format !== undefined) {
    if (v.format !== 'text' && v.format !== 'report' && v.format !== 'perfetto')
      throw new UsageError(`--format expects text, report or perfetto, got '${v.format}'`);
    opts.format = v.format;
  }
  if (v.mode !== undefined) {
    if (v.mode !== 'normal' && v.mode !== 'forwarded')
      throw new UsageError(`--mode expects normal or forwarded, got '${v.mode}'`);
    opts.mode = v.mode;
  }
  if (v.path !== undefined) opts.path = v.path;
  if (v.output !== undefined) opts.output = v.output;
  if (v.replay !== undefined) opts.replay = v.replay;
  opts.serve = v.serve === true;
  if (v.port !== undefined) {
    if (!/^\d+$/.test(v.port) || Number(v.port) > 65535)
      throw new UsageError(`--port expects an integer 0..65535, got '${v.port}'`);
    opts.port = Number(v.port);
  }
  if (v.trace !== undefined) {
    if (opts.noTrace) throw new UsageError('--trace and --no-trace contradict each other');
    opts.trace = v.trace;
  }
  return { command, positionals: rest, opts, raw: given };
}

function defaults(): Options {
  return { json: false, quiet: false, noTrace: false, serve: false };
}

async function dispatch(argv: readonly string[], runner: ScenarioRunner, io: CliIo): Promise<number> {
  if (argv[0] === 'check') return checkCommand(argv.slice(1), io); // src/check/cli.ts parses its own options
  const { command, positionals, opts } = parse(argv);
  switch (command) {
    case 'help':
      io.stdout(helpText(positionals[0], runner));
      return EXIT_OK;
    case 'schema': {
      const text = formatJson(scenarioJsonSchema());
      if (opts.output !== undefined) io.writeFile(opts.output, text);
      else io.stdout(text);
      return EXIT_OK;
    }
    case 'run':
    case 'compare':
      return runCommand(command, positionals[0], opts, runner, io);
    case 'trace':
      return traceCommand(positionals[0], opts, runner, io);
    case 'view':
      return viewCli(positionals[0], opts, runner, io);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

function load(
  arg: string | undefined,
  opts: Options,
  runner: ScenarioRunner,
  io: CliIo,
): { s: Scenario; file: string } {
  const lo: LoadOptions = {
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
    ...(runner.costNames ? { knownCosts: runner.costNames() } : {}),
  };
  if (arg === undefined)
    return { s: loadScenario(DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE, lo), file: DEFAULT_SCENARIO_FILE };
  let file = arg;
  if (!io.exists(file) && /^[A-Za-z0-9_.-]+$/.test(arg)) {
    const shipped = join(SCENARIOS_DIR, extname(arg) ? arg : `${arg}.yaml`);
    if (io.exists(shipped)) file = shipped;
  }
  let text: string;
  try {
    text = io.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file (nor a shipped scenario of that name: see scenarios/)' : (e as Error).message;
    throw new ScenarioError(arg, [{ path: '', line: 0, col: 0, message: `cannot read: ${why}` }]);
  }
  return { s: loadScenario(text, file, lo), file };
}

// ---------------------------------------------------------------------------------------------------------------
// run / compare

interface RunReport {
  mode: Mode;
  /** The compare path the run is a column of (scenarios with `paths`). */
  path?: string;
  ok: boolean;
  metrics: Metrics;
  violations: InvariantViolation[];
  expectations: ExpectationResult[];
  trace: string | null;
}

/** Turns a runner's ModeRun into a report: its violations plus the checks every run gets (lost, left active/masked). */
function judge(s: Scenario, r: ModeRun, allMetrics: readonly Metrics[], path?: string): Omit<RunReport, 'trace'> {
  const violations: InvariantViolation[] = [...r.violations];
  const m = r.metrics;
  if (m.irqs.lost > 0)
    violations.push({
      invariant: 'no-lost-irq',
      message: `${m.irqs.lost} IRQ(s) raised but never delivered to the guest`,
    });
  if (m.irqs.duplicates > 0)
    violations.push({ invariant: 'no-duplicate-irq', message: `${m.irqs.duplicates} IRQ(s) delivered more than once` });
  if (m.irqs.leftActive > 0)
    violations.push({
      invariant: 'no-active-at-end',
      message: `${m.irqs.leftActive} physical INTID(s) left active (stuck)`,
    });
  if (m.irqs.leftMasked > 0)
    violations.push({
      invariant: 'no-masked-at-end',
      message: `${m.irqs.leftMasked} host IRQ(s) left masked or disabled`,
    });
  const expectations = checkExpectations(
    s.expect,
    allMetrics.filter((x) => x.mode === r.mode),
    COST_PROFILES[s.host.costProfile].anchors,
  );
  const ok = violations.length === 0 && expectations.every((e) => e.ok);
  return { mode: r.mode, ...(path !== undefined ? { path } : {}), ok, metrics: m, violations, expectations };
}

/** A run's name in tables and messages: its compare path, else its mode. */
const runName = (r: RunReport): string => r.path ?? r.mode;

function checkResult(result: RunResult, modes: readonly Mode[]): void {
  if (!result || !Array.isArray(result.runs) || result.runs.length !== modes.length)
    throw new Error(`runner returned ${result?.runs?.length ?? 'no'} run(s) for ${modes.length} mode(s)`);
  result.runs.forEach((r, i) => {
    if (r.mode !== modes[i]) throw new Error(`runner returned mode '${r.mode}' where '${modes[i]}' was asked`);
  });
}

function tracePaths(s: Scenario, modes: readonly Mode[], opts: Options, io: CliIo): Map<Mode, string> {
  const out = new Map<Mode, string>();
  if (opts.noTrace) return out;
  for (const mode of modes) out.set(mode, tracePathFor(s, mode, modes.length, opts, io));
  return out;
}

/** The trace file of one run (a mode or a compare path) among `runs`: --trace FILE, FILE.<run>.ext when several. */
function tracePathFor(s: Scenario, run: string, runs: number, opts: Options, io: CliIo): string {
  if (opts.trace === undefined) return join(io.tmpdir(), 'irqfwd', `${s.name}.${run}.perfetto.json`);
  const ext = extname(opts.trace);
  return runs === 1 ? opts.trace : `${opts.trace.slice(0, opts.trace.length - ext.length)}.${run}${ext}`;
}

function traceFormatOf(path: string): TraceFormat {
  return extname(path) === '.json' ? 'perfetto' : 'text';
}

async function execute(
  s: Scenario,
  modes: readonly Mode[],
  trace: TraceFormat | undefined,
  label: string,
  opts: Options,
  runner: ScenarioRunner,
  io: CliIo,
): Promise<RunResult> {
  const bar = new ProgressBar({ write: io.stderr, isTTY: io.stderrIsTTY, now: io.now, columns: io.columns }, label, {
    quiet: opts.quiet,
  });
  try {
    const result = await runner.run(s, {
      modes,
      ...(trace !== undefined ? { trace } : {}),
      onProgress: (f) => bar.update(f),
    });
    checkResult(result, modes);
    return result;
  } finally {
    bar.done();
  }
}

async function runCommand(
  command: 'run' | 'compare',
  arg: string | undefined,
  opts: Options,
  runner: ScenarioRunner,
  io: CliIo,
): Promise<number> {
  const { s, file } = load(arg, opts, runner, io);
  if (s.paths !== undefined) return runPaths(command, s, file, opts, runner, io);
  const modes: Mode[] = command === 'compare' ? ['normal', 'forwarded'] : scenarioModes(s);
  const points = expandSweep(s);
  const sweeping = s.sweep !== undefined;
  const notes: string[] = [];
  const pointReports: { value: number | string; runs: RunReport[] }[] = [];

  warnIfLong(
    points.map((p) => p.scenario),
    modes,
    !sweeping && !opts.noTrace,
    io,
  );
  for (const [i, point] of points.entries()) {
    const paths = sweeping ? new Map<Mode, string>() : tracePaths(s, modes, opts, io);
    const format = paths.size > 0 ? traceFormatOf([...paths.values()][0]!) : undefined;
    const label = sweeping ? `${s.name} ${s.sweep!.param}=${point.value} (${i + 1}/${points.length})` : s.name;
    const result = await execute(point.scenario, modes, format, label, opts, runner, io);
    for (const n of result.notes ?? []) if (!notes.includes(n)) notes.push(n);
    const metrics = result.runs.map((r) => r.metrics);
    const runs: RunReport[] = result.runs.map((r) => {
      const path = paths.get(r.mode);
      let written: string | null = null;
      if (path !== undefined && r.trace) {
        io.writeFile(path, r.trace.data);
        written = path;
      }
      return { ...judge(point.scenario, r, metrics), trace: written };
    });
    pointReports.push({ value: point.value, runs });
  }

  const allRuns = pointReports.flatMap((p) => p.runs);
  const results = sweeping
    ? { sweep: { param: s.sweep!.param, points: pointReports } }
    : { runs: pointReports[0]?.runs ?? [] };
  const table = sweeping ? sweepTable(s.sweep!.param, pointReports) : formatMetricsTable(allRuns.map((r) => r.metrics));
  return report(command, s, file, scenarioSummary(s, file, modes), results, allRuns, table, notes, opts, io);
}

/** Prints a run/compare's outcome — the JSON object, or header, table and footer — and returns the exit code. */
function report(
  command: 'run' | 'compare',
  s: Scenario,
  file: string,
  scenario: object,
  results: object,
  runs: readonly RunReport[],
  table: string,
  notes: readonly string[],
  opts: Options,
  io: CliIo,
): number {
  const ok = runs.every((r) => r.ok);
  const exitCode = ok ? EXIT_OK : EXIT_FAIL;
  if (opts.json) {
    io.stdout(formatJson({ irqfwd: JSON_FORMAT_VERSION, command, scenario, ...results, notes, ok, exitCode }));
    return exitCode;
  }
  io.stdout(header(command, s, file));
  io.stdout(table);
  io.stdout(footer(runs, opts, notes));
  return exitCode;
}

/**
 * A scenario with compare paths: each path is the scenario with its parameters set, run in its own mode — one column
 * each, `run` and `compare` alike. Traces go to one file per path (FILE.<path>.ext).
 */
async function runPaths(
  command: 'run' | 'compare',
  s: Scenario,
  file: string,
  opts: Options,
  runner: ScenarioRunner,
  io: CliIo,
): Promise<number> {
  const points = expandPaths(s);
  warnIfLong(
    points.map((p) => p.scenario),
    ['normal'],
    !opts.noTrace,
    io,
  );
  const notes: string[] = [];
  const runs: RunReport[] = [];
  for (const [i, p] of points.entries()) {
    const path = opts.noTrace ? undefined : tracePathFor(s, p.name, points.length, opts, io);
    const format = path !== undefined ? traceFormatOf(path) : undefined;
    const label = `${s.name} ${p.name} (${i + 1}/${points.length})`;
    const result = await execute(p.scenario, [p.mode], format, label, opts, runner, io);
    for (const n of result.notes ?? []) if (!notes.includes(n)) notes.push(n);
    const r = result.runs[0]!;
    let written: string | null = null;
    if (path !== undefined && r.trace) {
      io.writeFile(path, r.trace.data);
      written = path;
    }
    runs.push({ ...judge(p.scenario, r, [r.metrics], p.name), trace: written });
  }
  const scenario = {
    ...scenarioSummary(s, file, [...new Set(points.map((p) => p.mode))]),
    paths: points.map((p) => ({ name: p.name, mode: p.mode, set: s.paths!.find((x) => x.name === p.name)!.set })),
  };
  const table = formatMetricsTable(
    runs.map((r) => r.metrics),
    runs.map(runName),
  );
  return report(command, s, file, scenario, { runs }, runs, table, notes, opts, io);
}

/** A run estimated to take long (estimate.ts) says so on stderr before it starts; it still runs. */
function warnIfLong(scenarios: readonly Scenario[], modes: readonly Mode[], traced: boolean, io: CliIo): void {
  const ms = scenarios.reduce((a, s) => a + estimateWallMs(s, modes, traced), 0);
  if (ms < LONG_RUN_MS) return;
  io.stderr(
    `irqfwd: warning: this run will take ${formatWall(ms)} of wall time (estimated from its IRQ count; ` +
      `${modes.length} mode(s)${traced ? ', traced' : ''}); Ctrl-C stops it\n`,
  );
}

function scenarioSummary(s: Scenario, file: string, modes: readonly Mode[]) {
  return {
    name: s.name,
    file,
    seed: s.seed,
    profile: s.host.costProfile,
    hz: s.host.hz,
    durationCycles: s.duration,
    modes,
  };
}

function header(command: string, s: Scenario, file: string): string {
  const ghz = `${fmtNum(s.host.hz / 1e9, 2).replace(/\.?0+$/, '')} GHz`;
  const ms = fmtNum((s.duration * 1e3) / s.host.hz, 3).replace(/\.?0+$/, '');
  return `irqfwd ${command}: ${s.name} (${file}) — profile ${s.host.costProfile}, ${ghz}, seed ${s.seed}, ${ms} ms\n\n`;
}

function footer(runs: readonly RunReport[], opts: Options, notes: readonly string[]): string {
  const lines: string[] = [''];
  for (const r of runs) {
    for (const v of r.violations) lines.push(`✗ ${runName(r)}: ${v.invariant}: ${v.message}`);
    for (const e of r.expectations) {
      const exp = e.expected !== undefined ? fmtNum(e.expected, e.expected % 1 ? 2 : 0) : '?';
      const tol = e.tolerance > 0 ? ` ±${fmtNum(e.tolerance * 100, 0)} %` : '';
      if (e.skipped) lines.push(`- ${runName(r)}: ${e.metric} ≈ ${exp}${tol}: skipped (${e.skipped})`);
      else
        lines.push(
          `${e.ok ? '✓' : '✗'} ${runName(r)}: ${e.metric} = ${fmtNum(e.actual ?? 0, 2)}, expected ${exp}${tol}${e.source ? ` (${e.source})` : ''}`,
        );
    }
  }
  const bad = runs.filter((r) => !r.ok).length;
  lines.push(
    bad === 0
      ? `checks: ok — no IRQ lost, none left active or masked, no invariant violated (${runs.length} run${runs.length > 1 ? 's' : ''})`
      : `checks: FAILED in ${bad} of ${runs.length} run(s)`,
  );
  const traces = runs.map((r) => r.trace).filter((t): t is string => t !== null);
  if (traces.length > 0)
    lines.push(
      `trace: ${traces.join(', ')}${traces.some((t) => t.endsWith('.json')) ? ' (open in ui.perfetto.dev)' : ''}`,
    );
  if (!opts.quiet) for (const n of notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}

function sweepTable(param: string, points: readonly { value: number | string; runs: readonly RunReport[] }[]): string {
  const modes = points[0]?.runs.map((r) => r.mode) ?? [];
  const header = [param];
  for (const m of modes) header.push(`${m}: delivered`, 'exits/IRQ', 'host cyc/IRQ', 'p99 ns', 'lost');
  const rows: Row[] = points.map((p) => {
    const cells: string[] = [];
    for (const r of p.runs) {
      const m = r.metrics;
      cells.push(
        fmtNum(m.irqs.delivered),
        fmtCell(m.exits.perIrq.total, 2),
        fmtCell(m.hostCycles.perIrq),
        fmtCell(m.latency.toGuest.ns?.p99, 1),
        fmtNum(m.irqs.lost),
      );
    }
    return [String(p.value), ...cells];
  });
  return renderTable(header, rows);
}

// ---------------------------------------------------------------------------------------------------------------
// trace

/** The compare path `--path` names, as a scenario of its own (its mode the only one). */
function tracedPath(s: Scenario, file: string, opts: Options): Scenario {
  const names = (s.paths ?? []).map((p) => p.name);
  if (names.length === 0) throw new UsageError(`--path ${opts.path}, but '${file}' has no compare paths`);
  if (opts.path === undefined)
    throw new UsageError(`'${file}' has compare paths (${names.join(', ')}): trace one with --path NAME`);
  const cp = s.paths!.find((p) => p.name === opts.path);
  if (!cp) throw new UsageError(`--path ${opts.path}: '${file}' has no such path (paths: ${names.join(', ')})`);
  return comparePoint(s, cp).scenario;
}

async function traceCommand(
  arg: string | undefined,
  opts: Options,
  runner: ScenarioRunner,
  io: CliIo,
): Promise<number> {
  if (opts.json && opts.output === undefined)
    throw new UsageError('trace --json needs -o FILE (stdout carries the trace otherwise)');
  if (opts.replay !== undefined) return traceReplay(arg, opts, io);
  const loaded = load(arg, opts, runner, io);
  const file = loaded.file;
  let s = loaded.s;
  if (s.sweep) throw new UsageError(`'${file}' is a sweep; trace one point (set ${s.sweep.param} in a copy)`);
  if (s.paths !== undefined || opts.path !== undefined) s = tracedPath(s, file, opts);
  const mode: Mode = opts.mode ?? (s.mode === 'both' ? 'forwarded' : s.mode);
  if (opts.mode !== undefined && s.mode !== 'both' && s.mode !== opts.mode)
    throw new UsageError(`--mode ${opts.mode}, but the scenario runs mode '${s.mode}' only`);
  const format: TraceFormat =
    opts.format ?? (opts.output !== undefined && extname(opts.output) === '.json' ? 'perfetto' : 'text');
  warnIfLong([s], [mode], true, io);
  const result = await execute(s, [mode], format, s.name, opts, runner, io);
  const run = result.runs[0]!;
  const report = judge(s, run, [run.metrics]);
  if (!run.trace) throw new Error('runner returned no trace although one was asked for');
  if (opts.output === undefined) {
    io.stdout(run.trace.data);
    if (!opts.quiet) for (const v of report.violations) io.stderr(`✗ ${mode}: ${v.invariant}: ${v.message}\n`);
  } else {
    io.writeFile(opts.output, run.trace.data);
    if (opts.json) {
      io.stdout(
        formatJson({
          irqfwd: JSON_FORMAT_VERSION,
          command: 'trace',
          scenario: scenarioSummary(s, file, [mode]),
          runs: [{ ...report, trace: opts.output }],
          notes: result.notes ?? [],
          ok: report.ok,
          exitCode: report.ok ? EXIT_OK : EXIT_FAIL,
        }),
      );
    } else {
      io.stdout(
        `irqfwd trace: ${s.name} (${mode}) — ${run.trace.format} trace, ${fmtNum(run.trace.data.length)} bytes, written to ${opts.output}\n`,
      );
      io.stdout(footer([{ ...report, trace: null }], opts, result.notes ?? []));
    }
  }
  return report.ok ? EXIT_OK : EXIT_FAIL;
}

/** `irqfwd trace --replay FILE`: the checker counterexample, replayed exactly as `irqfwd check --replay` does. */
function traceReplay(arg: string | undefined, opts: Options, io: CliIo): number {
  if (arg !== undefined) throw new UsageError('trace --replay takes no scenario (the replay file names it)');
  if (opts.json || opts.mode !== undefined || opts.seed !== undefined || opts.profile !== undefined)
    throw new UsageError('trace --replay takes only --format and -o (the replay file fixes the rest)');
  let f: ReplayFile;
  try {
    f = parseReplayFile(io.readFile(opts.replay!));
  } catch (e) {
    throw new UsageError(`cannot replay ${opts.replay}: ${(e as Error).message}`);
  }
  if (opts.format === 'report')
    throw new UsageError('trace --replay writes text (tracefs, with the step markers) or perfetto, not report');
  const run = traceCounterexample(scenarioOfReplay(f), f.schedule, f.invariant);
  const format: TraceFormat =
    opts.format ?? (opts.output !== undefined && extname(opts.output) === '.json' ? 'perfetto' : 'text');
  const data = format === 'perfetto' ? formatChromeTrace(counterexampleChrome(run)) : counterexampleText(run);
  if (opts.output === undefined) io.stdout(data);
  else {
    io.writeFile(opts.output, data);
    if (!opts.quiet)
      io.stdout(`irqfwd trace: replay of ${f.scenario} [${f.variant}] — ${format} trace written to ${opts.output}\n`);
  }
  return run.result.violations.length > 0 ? EXIT_FAIL : EXIT_OK;
}

// ---------------------------------------------------------------------------------------------------------------
// view (src/view/)

async function viewCli(arg: string | undefined, opts: Options, runner: ScenarioRunner, io: CliIo): Promise<number> {
  const scenarioOnly = [
    ...(opts.seed !== undefined ? ['--seed'] : []),
    ...(opts.profile !== undefined ? ['--profile'] : []),
  ];
  const scenarioTraces = async (a: string | undefined) => {
    const { s, file } = load(a, opts, runner, io);
    if (s.sweep) throw new UsageError(`'${file}' is a sweep; view one point (set ${s.sweep.param} in a copy)`);
    if (s.paths !== undefined) {
      const points = expandPaths(s);
      warnIfLong(
        points.map((p) => p.scenario),
        ['normal'],
        true,
        io,
      );
      const runs: { mode: string; data: string }[] = [];
      for (const p of points) {
        const r = (await execute(p.scenario, [p.mode], 'perfetto', `${s.name} ${p.name}`, opts, runner, io)).runs[0]!;
        if (!r.trace) throw new Error('runner returned no trace although one was asked for');
        runs.push({ mode: p.name, data: r.trace.data });
      }
      return { name: s.name, runs };
    }
    warnIfLong([s], ['normal', 'forwarded'], true, io);
    const result = await execute(s, ['normal', 'forwarded'], 'perfetto', s.name, opts, runner, io);
    return {
      name: s.name,
      runs: result.runs.map((r) => {
        if (!r.trace) throw new Error('runner returned no trace although one was asked for');
        return { mode: r.mode, data: r.trace.data };
      }),
    };
  };
  try {
    return await viewCommand(
      arg,
      {
        ...(opts.output !== undefined ? { output: opts.output } : {}),
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        serve: opts.serve,
        scenarioOnly,
        untilStopped: untilSignal,
      },
      io,
      scenarioTraces,
    );
  } catch (e) {
    if (e instanceof ViewInputError) throw new UsageError(e.message);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new EnvironmentError(
        `--port ${opts.port}: 127.0.0.1:${opts.port} is already in use (--port 0 picks a free one)`,
      );
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// help

export function helpText(topic: string | undefined, runner?: ScenarioRunner): string {
  if (topic === 'costs') return costsHelp(runner);
  if (topic === 'metrics')
    return `Numeric metric paths (for expect: and the JSON output):\n  ${metricPaths().join('\n  ')}\n`;
  if (topic === 'check') return CHECK_HELP;
  if (topic !== undefined && !(COMMANDS as readonly string[]).includes(topic))
    return `irqfwd help: no topic '${topic}' (topics: ${[...ALL_COMMANDS, 'costs', 'metrics'].join(', ')})\n`;
  return `irqfwd — an executable model of ARM KVM IRQ forwarding (GICv2, genirq, VFIO, KVM, vGIC, guest)

Usage:
  irqfwd run [scenario]       run a scenario (default: the embedded level-passthrough scenario) in its mode(s)
  irqfwd compare [scenario]   run it on the normal (irqfd) and the forwarded path, side by side — or on each of
                              its compare paths (\`paths:\`, e.g. compare-paths: irqfd vs HW-bit on GICv2 and GICv3)
  irqfwd trace [scenario]     run one mode and write its trace (tracefs text or Perfetto JSON)
  irqfwd view [scenario | trace.json | replay file]
                              a timeline page (self-contained HTML): the scenario's normal and forwarded runs
                              stacked, a Perfetto JSON trace, or a checker counterexample with its steps marked
  irqfwd schema               print the scenario JSON Schema (draft 2020-12)
  irqfwd check [scenario]     explore interleavings and check the invariants (irqfwd check --help)
  irqfwd help [topic]         this text; topics: costs, metrics

A scenario is a YAML or JSON file, or the name of a shipped one (${listShipped()}).

Options:
  --seed N            override the scenario's seed (0..4294967295)
  --profile P         cost profile: ${PROFILE_NAMES.join(' | ')} (overrides host.costProfile)
  --json              print results as JSON on stdout (field names: docs/CLI.md)
  -q, --quiet         no progress bar, no notes
  --trace FILE        run/compare: write each mode's trace to FILE (.json: Perfetto; else text; the mode — or the
                      compare path — is inserted before the extension when several run);
                      default: $TMPDIR/irqfwd/<name>.<mode>.perfetto.json
  --no-trace          run/compare: do not trace
  --format F          trace: text (default, tracefs) | report (trace-cmd report) | perfetto
  -o, --output FILE   trace, schema: write to FILE instead of stdout; view: the page (default:
                      $TMPDIR/irqfwd/<name>.view.html)
  --serve             view: serve the page on 127.0.0.1 instead of writing it (Ctrl-C stops)
  --port N            view --serve: the port (default 0: a free one, printed)
  --mode M            trace: normal | forwarded (default: forwarded when the scenario runs both)
  --path NAME         trace: the compare path to trace, for a scenario with \`paths:\`
  --replay FILE       trace: replay a checker counterexample (irqfwd check -o FILE) instead of a scenario

Exit codes: 0 ok; 1 an invariant violated, an IRQ lost or left active/masked, or an expectation missed;
            2 bad arguments or scenario, an output that cannot be written safely, a busy port; 3 internal
            error; 4 check: the search stopped early (--max-schedules) — no violation found, nothing proven.
`;
}

/** The names of the shipped scenarios (scenarios/*.yaml), default first. */
export function shippedScenarios(): string[] {
  let names: string[];
  try {
    names = readdirSync(SCENARIOS_DIR)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -'.yaml'.length));
  } catch {
    return ['default'];
  }
  return names.sort((a, b) => (a === 'default' ? -1 : b === 'default' ? 1 : a < b ? -1 : a > b ? 1 : 0));
}

function listShipped(): string {
  return shippedScenarios().join(', ');
}

function costsHelp(runner?: ScenarioRunner): string {
  const names = runner?.costNames?.() ?? [];
  const lines: string[] = ['Cost profiles (host.costProfile, --profile):'];
  for (const n of PROFILE_NAMES) lines.push(`  ${n.padEnd(8)} ${COST_PROFILES[n].description}`);
  lines.push('', "Costs (cycles) by profile (default = the model's own figure; a blank cell keeps it):");
  const all = [...new Set([...names, ...PROFILE_NAMES.flatMap((p) => Object.keys(COST_PROFILES[p].costs))])];
  const defaults = new Map(costDefs().map((d) => [d.name, d.cycles]));
  const cell = (p: ProfileName, c: string): string => {
    const v = COST_PROFILES[p].costs[c] ?? (p === 'default' ? defaults.get(c) : undefined);
    return v === undefined ? '' : fmtNum(v);
  };
  const rows: Row[] = all.map((c) => [
    names.length > 0 && !names.includes(c) ? `${c} (not defined by the model yet)` : c,
    ...PROFILE_NAMES.map((p) => cell(p, c)),
  ]);
  lines.push(renderTable(['cost', ...PROFILE_NAMES], rows));
  lines.push(`Exit reasons counted: ${EXIT_REASONS.join(', ')}`);
  return `${lines.join('\n')}\n`;
}
